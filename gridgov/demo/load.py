"""Load a generated demo county through the same write rules as an import.

Units, grids and households go through ``write_units`` / ``write_grids`` / ``write_households``
(staged with COPY, checked set-based in PostGIS, written all or nothing). Party organizations and
members are bulk-copied: they carry no geometry rule beyond their village.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gridgov.auth import service as auth_service
from gridgov.dashboard import rollups
from gridgov.db import raw_connection
from gridgov.demo.activity import ActivitySummary, load_activity
from gridgov.demo.generate import DemoCounty, generate_county
from gridgov.errors import RuleViolation
from gridgov.hierarchy import service as hierarchy_service
from gridgov.hierarchy.models import AdminUnit
from gridgov.hierarchy.rules import AreaRow
from gridgov.households import service as households_service
from gridgov.households.service import HouseholdRow
from gridgov.visits.storage import BlobStore

DEMO_PASSWORD = "gridgov-demo-2026"

Progress = Callable[[str, int, int], None]


@dataclass
class DemoSummary:
    county_code: str
    county_name: str
    townships: int = 0
    villages: int = 0
    villages_without_boundary: int = 0
    grids: int = 0
    households: int = 0
    outside_grid: int = 0
    members: int = 0
    users: list[tuple[str, str, str]] = field(default_factory=list)  # username, role, bound to
    activity: ActivitySummary | None = None  # the year of contacts, visits and issues
    seconds: dict[str, float] = field(default_factory=dict)


def database_is_empty(session: Session) -> bool:
    return not session.scalar(select(func.count()).select_from(AdminUnit))


def demo_users(county: DemoCounty) -> list[tuple[str, str, str | None, str | None, str]]:
    """(username, role, unit code, grid code, display name): one user per role."""
    township = county.townships[0]
    village = next(v for v in county.villages if v.parent_code == township.code)
    grid = next(g for g in county.grids if g.village_code == village.code)
    return [
        ("county", "county_admin", county.county.code, None, "县委组织部管理员"),
        ("township", "township_admin", township.code, None, f"{township.name}管理员"),
        ("village", "village_admin", village.code, None, f"{village.name}党支部书记"),
        ("grid", "grid_member", None, grid.code, f"{grid.name}网格员"),
        ("gis", "gis_editor", county.county.code, None, "地理信息编辑"),
        ("auditor", "auditor", county.county.code, None, "审计员"),
    ]


def load_demo(
    session: Session,
    *,
    households: int = 150_000,
    seed: int = 7,
    progress: Progress | None = None,
    county: DemoCounty | None = None,
    with_users: bool = True,
    activity: bool = True,
    visits: int | None = None,
    issues: int | None = None,
    today: date | None = None,
    store: BlobStore | None = None,
) -> DemoSummary:
    """Generate (unless given) and load a county; raises RuleViolation if any rule fails.

    ``activity``: also the year up to ``today`` (``gridgov.demo.activity``): contacts and
    their changes, accounts, about ``visits`` visits, ``issues`` issues (defaults:
    three per household; one issue per 75 households)."""
    report = progress or (lambda stage, done, total: None)
    timer = time.perf_counter()
    if county is None:
        county = generate_county(households=households, seed=seed, progress=progress)
    summary = DemoSummary(county.county.code, county.county.name)
    summary.seconds["generate"] = time.perf_counter() - timer
    code = county.county.code

    def units(level: str, items: list) -> int:
        report(
            f"写入{ {'county': '县', 'township': '乡镇', 'village': '村'}[level] }", 0, len(items)
        )
        written = hierarchy_service.write_units(
            session,
            None,
            (AreaRow(i, u.code, u.name, u.geom) for i, u in enumerate(items)),
            level=level,
            county_code=code,
        )
        if written.errors:
            raise RuleViolation(written.errors, detail=f"演示数据（{level}）不符合规则")
        report(f"写入{level}", len(items), len(items))
        return len(written.ids)

    timer = time.perf_counter()
    units("county", [county.county])
    summary.townships = units("township", county.townships)
    summary.villages = units("village", county.villages)
    # Two villages registered from the code list before a surveyor has drawn them (the usual
    # state of a county being onboarded): listed everywhere, in the QA layer
    # units_without_boundary, and checked against their grids once a boundary arrives.
    first = county.townships[0].code
    pending = [(f"{first}298", "新设村（待勘界）"), (f"{first}299", "移民新村（待勘界）")]
    written = hierarchy_service.write_units(
        session,
        None,
        [AreaRow(i, c, n, None) for i, (c, n) in enumerate(pending)],
        level="village",
        county_code=code,
    )
    if written.errors:
        raise RuleViolation(written.errors, detail="演示数据（待勘界村）不符合规则")
    summary.villages_without_boundary = len(written.ids)
    report("写入网格", 0, len(county.grids))
    written = hierarchy_service.write_grids(
        session,
        None,
        (AreaRow(i, g.code, g.name, g.geom) for i, g in enumerate(county.grids)),
        county_code=code,
    )
    if written.errors:
        raise RuleViolation(written.errors, detail="演示数据（网格）不符合规则")
    summary.grids = len(written.ids)
    summary.seconds["areas"] = time.perf_counter() - timer

    timer = time.perf_counter()
    hh = county.households
    total = len(hh.head_name)
    report("写入户", 0, total)
    result = households_service.write_households(
        session,
        None,
        (
            HouseholdRow(
                i,
                hh.head_name[i],
                float(hh.lon[i]),
                float(hh.lat[i]),
                external_id=f"D{i + 1:07d}",
                village_code=hh.village_code[i],
                phone=hh.phone[i],
                id_number=hh.id_number[i],
                address=hh.address[i],
                hamlet=hh.hamlet[i],
                size=int(hh.size[i]),
                tags=hh.tags[i],
            )
            for i in range(total)
        ),
        county_code=code,
        progress=lambda done: report("写入户", done, total),
    )
    if result.errors:
        raise RuleViolation(
            result.errors[:100], detail=f"演示数据（户）有 {len(result.errors)} 处不符合规则"
        )
    summary.households = len(result.ids)
    summary.outside_grid = result.outside_grid
    summary.seconds["households"] = time.perf_counter() - timer

    timer = time.perf_counter()
    summary.members = _load_orgs_and_members(session, county, report)
    summary.seconds["members"] = time.perf_counter() - timer

    for username, role, unit, grid, name in demo_users(county) if with_users else []:
        auth_service.create_user(
            session,
            None,
            username=username,
            password=DEMO_PASSWORD,
            role=role,
            display_name=name,
            unit_code=unit,
            grid_code=grid,
        )
        summary.users.append((username, role, unit or grid or ""))
    session.execute(
        text("ANALYZE admin_units; ANALYZE grids; ANALYZE households; ANALYZE party_members")
    )
    if activity:
        summary.activity = load_activity(
            session, code, seed=seed, visits=visits, issues=issues, today=today, store=store,
            progress=progress,
        )  # fmt: skip
        for key in ("contacts", "visits_write", "visits_flags", "visits_review", "issues"):
            summary.seconds[key] = summary.activity.seconds.get(key, 0.0)
        summary.seconds["visits_plan"] = summary.activity.seconds.get("visits_plan", 0.0)
    timer = time.perf_counter()
    rollups.refresh(session)  # the dashboards have figures from the first request on
    summary.seconds["dashboard"] = time.perf_counter() - timer
    return summary


def _load_orgs_and_members(session: Session, county: DemoCounty, report: Progress) -> int:
    conn = raw_connection(session)
    village_ids = dict(
        session.execute(
            text("SELECT code, id FROM admin_units WHERE level = 'village' AND county_code = :c"),
            {"c": county.county.code},
        ).all()
    )
    with conn.cursor().copy(
        "COPY party_orgs (unit_id, county_code, name, kind, secretary_name, secretary_phone) "
        "FROM STDIN"
    ) as copy:
        for org in county.party_orgs:
            copy.write_row(
                (
                    village_ids[org.village_code],
                    county.county.code,
                    org.name,
                    org.kind,
                    org.secretary_name,
                    org.secretary_phone,
                )
            )
    members = county.members
    total = len(members.name)
    report("写入党员", 0, total)
    session.execute(
        text(
            "CREATE TEMP TABLE demo_members (village_code text, grid_code text, name text, "
            "gender text, phone text, id_number text, status text, flowing bool, lon float8, "
            "lat float8, joined_year int) ON COMMIT DROP"
        )
    )
    with conn.cursor().copy("COPY demo_members FROM STDIN") as copy:
        for i in range(total):
            copy.write_row(
                (
                    members.village_code[i],
                    members.grid_code[i],
                    members.name[i],
                    members.gender[i],
                    members.phone[i],
                    members.id_number[i],
                    members.status[i],
                    bool(members.flowing[i]),
                    float(members.lon[i]),
                    float(members.lat[i]),
                    int(members.joined_year[i]),
                )
            )
    inserted = session.execute(
        text(
            """
            INSERT INTO party_members (county_code, party_org_id, village_id, grid_id, name, gender,
                phone, id_number, status, flowing, joined_year, geom)
            SELECT v.county_code,
                   (SELECT o.id FROM party_orgs o WHERE o.unit_id = v.id ORDER BY o.id LIMIT 1),
                   v.id, g.id, d.name, d.gender, d.phone, d.id_number, d.status, d.flowing,
                   d.joined_year, ST_SetSRID(ST_MakePoint(d.lon, d.lat), 4326)
            FROM demo_members d
            JOIN admin_units v ON v.code = d.village_code AND v.valid_to IS NULL
            LEFT JOIN grids g ON g.code = d.grid_code AND g.valid_to IS NULL
            """
        )
    ).rowcount
    session.execute(text("DROP TABLE demo_members"))
    # Each grid's chief (网格长) is one of its full members.
    session.execute(
        text(
            """
            UPDATE grids g SET chief_member_id = m.id
            FROM (SELECT DISTINCT ON (grid_id) grid_id, id FROM party_members
                  WHERE grid_id IS NOT NULL AND status = 'full' AND NOT flowing
                  ORDER BY grid_id, id) m
            WHERE m.grid_id = g.id
            """
        )
    )
    report("写入党员", total, total)
    return inserted or 0
