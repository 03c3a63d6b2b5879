"""Households: located by a point; grid derived by ST_Covers; PII masked unless allowed."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Unpack

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov import events
from gridgov.audit import service as audit
from gridgov.auth.scope import Scope
from gridgov.db import raw_connection
from gridgov.errors import Conflict, FieldError, NotFound, RuleViolation
from gridgov.geo import CoordSys, check_coordinates
from gridgov.geojson import parse_geometry
from gridgov.hierarchy.events import GridsChanged, VillageBoundariesChanged
from gridgov.households import queries
from gridgov.households.events import HouseholdMoved, HouseholdRemoved
from gridgov.households.models import Household
from gridgov.households.schemas import HouseholdCreate, HouseholdRead, HouseholdUpdate
from gridgov.households.validation import id_number_problem, parse_tags, phone_problem
from gridgov.listing import PageResult, personal_row

OUTSIDE_GRID = "outside_grid"

# -- grid derivation: the one statement every write path and the benchmark use -----------------

# Driven from the grids, like a hand-written spatial join: one GiST probe of households per grid,
# so each grid polygon is read and prepared once and tested against its ~300 points. (A scalar
# subquery per household re-reads a polygon per point, and PostgreSQL inlines it once per
# reference to its result: 5x slower, see bench/household_grid.py.) Every target household also
# enters once with no grid; its code NULL sorts last, so DISTINCT ON keeps one row per household:
# the lowest-coded grid of its own village covering the point (a shared edge is covered by both
# grids), or none (outside_grid). Rows whose grid and flag already agree are dropped before the
# join back to households, so a re-derive that changes little looks up little. A sort keeps its
# order when it spills to disk, so the UPDATE walks the table in id order whatever work_mem is
# (a spilled hash join would scatter the writes). The final WHERE re-checks on the row itself.
DERIVE_SQL = """
UPDATE households h
SET grid_id = d.grid_id,
    flags = CASE WHEN d.grid_id IS NULL
                 THEN array_append(array_remove(h.flags, 'outside_grid'), 'outside_grid')
                 ELSE array_remove(h.flags, 'outside_grid') END,
    updated_at = now()
FROM (
    SELECT w.id, w.grid_id
    FROM (
        SELECT DISTINCT ON (c.id) c.id, c.grid_id, c.old_grid_id, c.flagged
        FROM (
            SELECT hg.id, g.id AS grid_id, g.code, hg.grid_id AS old_grid_id,
                   'outside_grid' = ANY(hg.flags) AS flagged
            FROM grids g
            JOIN households hg ON hg.village_id = g.village_id AND ST_Covers(g.geom, hg.geom)
            WHERE g.village_id = ANY(:village_ids) AND g.valid_to IS NULL
              AND hg.removed_at IS NULL
            UNION ALL
            SELECT t.id, NULL, NULL, t.grid_id, 'outside_grid' = ANY(t.flags)
            FROM households t
            WHERE t.village_id = ANY(:village_ids) AND t.removed_at IS NULL
        ) c
        ORDER BY c.id, c.code
    ) w
    WHERE w.old_grid_id IS DISTINCT FROM w.grid_id OR (w.grid_id IS NULL) <> w.flagged
) d
WHERE d.id = h.id
  AND (h.grid_id IS DISTINCT FROM d.grid_id
       OR (d.grid_id IS NULL) <> ('outside_grid' = ANY(h.flags)))
"""


def refresh_boundary_flags(session: Session, *, village_ids: Sequence[int]) -> int:
    """Set or clear ``village_without_boundary`` on the households of these villages after their
    boundaries were drawn or cleared. Touches only the households whose flag is wrong."""
    if not village_ids:
        return 0
    result = session.execute(
        text(
            "UPDATE households h SET flags = CASE WHEN v.geom IS NULL"
            " THEN array_append(h.flags, 'village_without_boundary')"
            " ELSE array_remove(h.flags, 'village_without_boundary') END, updated_at = now()"
            " FROM admin_units v WHERE v.id = h.village_id AND v.id = ANY(:village_ids)"
            " AND (v.geom IS NULL) <> ('village_without_boundary' = ANY(h.flags))"
        ),
        {"village_ids": list(village_ids)},
    )
    return result.rowcount


def derive_grids(session: Session, *, village_ids: Sequence[int]) -> int:
    """Recompute the grid of every household in these villages (after a grid edit)."""
    if not village_ids:
        return 0
    result = session.execute(text(DERIVE_SQL), {"village_ids": list(village_ids)})
    return result.rowcount or 0


# The hierarchy's writes that change what households derive from it (gridgov.events).
@events.subscribe(GridsChanged)
def _on_grids_changed(session: Session, event: GridsChanged) -> int:
    return derive_grids(session, village_ids=event.village_ids)


@events.subscribe(VillageBoundariesChanged)
def _on_village_boundaries_changed(session: Session, event: VillageBoundariesChanged) -> int:
    return refresh_boundary_flags(session, village_ids=event.village_ids)


# -- staged writes (API, import, demo) ------------------------------------------------------------


@dataclass
class HouseholdRow:
    idx: int
    head_name: str | None
    lon: float | None
    lat: float | None
    external_id: str | None = None
    village_code: str | None = None
    phone: str | None = None
    id_number: str | None = None
    address: str | None = None
    hamlet: str | None = None
    size: int | None = 1
    tags: list[str] | str | None = None
    target_id: int | None = None
    ref: str | None = None
    # Problems found while reading the file (bad number, unknown column value …).
    read_errors: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class HouseholdWriteResult:
    ids: list[int]
    errors: list[FieldError]
    outside_grid: int = 0


# Widths of the households columns (models.py) that a row's text must fit.
TEXT_WIDTHS = {
    "head_name": 50,
    "external_id": 64,
    "phone": 20,
    "id_number": 18,
    "address": 200,
    "hamlet": 50,
}


def _text(value: str | None) -> str | None:
    """A value COPY can carry (the row is already reported if it held a NUL)."""
    return value.replace("\x00", "") if isinstance(value, str) else value


def _row_errors(row: HouseholdRow, loc: list[str | int]) -> tuple[list[FieldError], list[str]]:
    """Field checks in Python; returns (errors, canonical tags)."""
    ref = row.ref or row.external_id
    errors = [FieldError([*loc, f], m, c, index=row.idx, id=ref) for f, m, c in row.read_errors]

    def err(field_: str, msg: str, code: str) -> None:
        errors.append(FieldError([*loc, field_], msg, code, index=row.idx, id=ref))

    if not row.head_name or not str(row.head_name).strip():
        err("head_name", "户主姓名不能为空", "missing_head_name")
    elif len(row.head_name) > 50:
        err("head_name", "户主姓名过长", "head_name_too_long")
    # Column widths and PostgreSQL's ban on NUL: an import row breaking them is reported, not
    # left to fail the whole COPY as a server error.
    for name, width in TEXT_WIDTHS.items():
        value = getattr(row, name)
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            err(name, "文本中不能包含空字符（\\0）", "nul_character")
        elif name != "head_name" and len(value.strip()) > width:
            err(name, f"内容过长（最多 {width} 个字符）", "too_long")
    if isinstance(row.tags, str | list) and "\x00" in str(row.tags):
        err("tags", "文本中不能包含空字符（\\0）", "nul_character")
    if row.phone and (problem := phone_problem(row.phone)):
        err("phone", problem, "invalid_phone")
    if row.id_number and (problem := id_number_problem(row.id_number)):
        err("id_number", problem, "invalid_id_number")
    if row.size is None or not 1 <= row.size <= 30:
        err("size", "人口数应为 1–30 的整数", "invalid_size")
    tags, unknown = parse_tags(row.tags)
    if unknown:
        err("tags", f"未知的重点人群标签：{'、'.join(unknown)}", "unknown_tag")
    if row.lon is None or row.lat is None:
        if not any(e.loc[-1] in ("lon", "lat", "location") for e in errors):
            err("location", "缺少经纬度", "missing_location")
    else:
        import shapely

        for problem in check_coordinates(shapely.Point(row.lon, row.lat)):
            err("location", problem.message, problem.code)
    if row.village_code is not None and not (
        row.village_code.isdigit() and len(row.village_code) == 12
    ):
        err("village_code", f"村代码“{row.village_code}”应为 12 位数字", "invalid_code")
    return errors, tags


def write_households(
    session: Session,
    scope: Scope | None,
    rows: Iterable[HouseholdRow],
    *,
    county_code: str,
    loc_prefix: Sequence[str | int] = (),
    dry_run: bool = False,
    single: bool = False,
    progress: Any = None,
) -> HouseholdWriteResult:
    """Validate every row, then insert/update all of them or none. ``scope=None``: the system."""
    stage = f"stage_household_{uuid.uuid4().hex[:12]}"
    session.execute(
        text(
            f"CREATE TEMP TABLE {stage} (idx int PRIMARY KEY, target_id bigint, external_id text,"
            " village_code text, head_name text, phone text, id_number text, address text,"
            " hamlet text, size int, tags text[], lon float8, lat float8, ref text,"
            " village_id bigint, grid_id bigint, no_boundary boolean NOT NULL DEFAULT false)"
            " ON COMMIT DROP"
        )
    )
    errors: list[FieldError] = []
    count = 0
    with (
        raw_connection(session)
        .cursor()
        .copy(
            f"COPY {stage} (idx, target_id, external_id, village_code, head_name, phone, id_number,"
            " address, hamlet, size, tags, lon, lat, ref) FROM STDIN"
        ) as copy
    ):
        for row in rows:
            loc = [*loc_prefix] if single else [*loc_prefix, row.idx]
            row_errors, tags = _row_errors(row, loc)
            errors += row_errors
            phone = row.phone and row.phone.strip()
            copy.write_row(
                (
                    row.idx,
                    row.target_id,
                    _text(row.external_id),
                    _text(row.village_code),
                    _text(row.head_name),
                    _text(phone) or None,
                    _text(row.id_number.strip().upper()) if row.id_number else None,
                    _text(row.address),
                    _text(row.hamlet),
                    row.size if isinstance(row.size, int) and 1 <= row.size <= 30 else None,
                    tags,
                    row.lon,
                    row.lat,
                    _text(row.ref or row.external_id),
                )
            )
            count += 1
            if progress and count % 5000 == 0:
                progress(count)
    if count > 1000:
        session.execute(text(f"ANALYZE {stage}"))
    errors += _spatial_errors(session, scope, stage, county_code, loc_prefix, single)
    errors.sort(key=lambda e: (e.index or 0, str(e.loc)))
    if errors or dry_run or count == 0:
        outside = (
            0 if errors else _count(session, f"SELECT count(*) FROM {stage} WHERE grid_id IS NULL")
        )
        session.execute(text(f"DROP TABLE {stage}"))
        return HouseholdWriteResult([], errors, outside)
    outside = _count(session, f"SELECT count(*) FROM {stage} WHERE grid_id IS NULL")
    ids = [
        r.id
        for r in session.execute(
            text(
                f"""
                WITH upd AS (
                    UPDATE households h SET head_name = s.head_name, phone = s.phone,
                        id_number = s.id_number, address = s.address, hamlet = s.hamlet,
                        size = s.size, tags = s.tags, village_id = s.village_id,
                        grid_id = s.grid_id, external_id = COALESCE(s.external_id, h.external_id),
                        geom = ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326),
                        flags = array_remove(array_remove(h.flags, 'outside_grid'),
                                             'village_without_boundary')
                            || CASE WHEN s.grid_id IS NULL THEN ARRAY['outside_grid']::varchar[]
                                    ELSE '{{}}' END
                            || CASE WHEN s.no_boundary
                                    THEN ARRAY['village_without_boundary']::varchar[]
                                    ELSE '{{}}' END,
                        version = h.version + 1, updated_at = now()
                    FROM {stage} s WHERE s.target_id = h.id RETURNING h.id
                ), ins AS (
                    INSERT INTO households (county_code, village_id, grid_id, external_id,
                        head_name, phone, id_number, address, hamlet, size, tags, flags, geom)
                    SELECT :county, village_id, grid_id, external_id, head_name, phone, id_number,
                        address, hamlet, size, tags,
                        CASE WHEN grid_id IS NULL THEN ARRAY['outside_grid']::varchar[]
                             ELSE '{{}}' END
                        || CASE WHEN no_boundary THEN ARRAY['village_without_boundary']::varchar[]
                                ELSE '{{}}' END,
                        ST_SetSRID(ST_MakePoint(lon, lat), 4326)
                    FROM {stage} WHERE target_id IS NULL ORDER BY idx RETURNING id
                )
                SELECT id FROM upd UNION ALL SELECT id FROM ins
                """
            ),
            {"county": county_code},
        )
    ]
    session.execute(text(f"DROP TABLE {stage}"))
    return HouseholdWriteResult(ids, [], outside)


def _count(session: Session, sql: str) -> int:
    return int(session.scalar(text(sql)) or 0)


def _spatial_errors(
    session: Session,
    scope: Scope | None,
    stage: str,
    county_code: str,
    loc_prefix: Sequence[str | int],
    single: bool,
) -> list[FieldError]:
    """Resolve village and grid of every staged row (set-based); report rows that cannot be."""
    villages = None if scope is None else list(scope.village_ids)
    if scope is not None and scope.grid_bound:
        villages = sorted(scope.unit_ids)
    params = {"villages": villages, "county": county_code}
    in_scope = "(CAST(:villages AS bigint[]) IS NULL OR v.id = ANY(CAST(:villages AS bigint[])))"
    point = "ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)"
    ok_point = "s.lon BETWEEN 73 AND 136 AND s.lat BETWEEN 3 AND 54"
    # Existing households by ledger id are updated, not duplicated.
    session.execute(
        text(
            f"UPDATE {stage} s SET target_id = h.id FROM households h "
            "WHERE s.target_id IS NULL AND s.external_id IS NOT NULL "
            "AND h.county_code = :county AND h.external_id = s.external_id"
        ),
        params,
    )
    session.execute(
        text(
            f"UPDATE {stage} s SET village_id = v.id FROM admin_units v "
            f"WHERE s.village_code IS NOT NULL AND v.code = s.village_code "
            f"AND v.level = 'village' AND v.valid_to IS NULL AND {in_scope}"
        ),
        params,
    )
    session.execute(
        text(
            f"UPDATE {stage} s SET village_id = (SELECT v.id FROM admin_units v "
            f"  WHERE v.level = 'village' AND v.valid_to IS NULL AND v.county_code = :county "
            f"  AND {in_scope} AND ST_Covers(v.geom, {point}) ORDER BY v.code LIMIT 1) "
            f"WHERE s.village_code IS NULL AND {ok_point}"
        ),
        params,
    )
    # A village registered from the code list before its boundary: the household is kept
    # under the village its ledger names and flagged until the boundary arrives.
    session.execute(
        text(
            f"UPDATE {stage} s SET no_boundary = true FROM admin_units v "
            "WHERE v.id = s.village_id AND v.geom IS NULL"
        )
    )
    session.execute(
        text(
            f"UPDATE {stage} s SET grid_id = (SELECT g.id FROM grids g "
            f"  WHERE g.village_id = s.village_id AND g.valid_to IS NULL "
            f"  AND ST_Covers(g.geom, {point}) ORDER BY g.code LIMIT 1) "
            f"WHERE s.village_id IS NOT NULL AND {ok_point}"
        )
    )
    errors: list[FieldError] = []

    def loc(idx: int, name: str) -> list[str | int]:
        return [*loc_prefix, name] if single else [*loc_prefix, idx, name]

    for r in session.execute(
        text(
            f"SELECT idx, ref, village_code, {ok_point} AS ok FROM {stage} s "
            "WHERE village_id IS NULL AND lon IS NOT NULL AND lat IS NOT NULL ORDER BY idx"
        )
    ):
        if r.village_code is not None:
            errors.append(
                FieldError(
                    loc(r.idx, "village_code"),
                    f"村 {r.village_code} 不存在或不在您的权限范围内",
                    "village_not_found",
                    index=r.idx,
                    id=r.ref,
                )
            )
        elif r.ok:
            errors.append(
                FieldError(
                    loc(r.idx, "location"),
                    "位置不在您权限范围内的任何村界内",
                    "outside_scope",
                    index=r.idx,
                    id=r.ref,
                )
            )
    if scope is not None and scope.grid_bound:
        for r in session.execute(
            text(
                f"SELECT idx, ref FROM {stage} WHERE village_id IS NOT NULL "
                "AND grid_id IS DISTINCT FROM :grid ORDER BY idx"
            ),
            {"grid": scope.grid_id},
        ):
            errors.append(
                FieldError(
                    loc(r.idx, "location"),
                    "位置不在您负责的网格内",
                    "outside_own_grid",
                    index=r.idx,
                    id=r.ref,
                )
            )
    for r in session.execute(
        text(
            f"SELECT idx, ref, external_id, min(idx) OVER (PARTITION BY external_id) AS first "
            f"FROM {stage} WHERE external_id IS NOT NULL"
        )
    ):
        if r.idx != r.first:
            errors.append(
                FieldError(
                    loc(r.idx, "external_id"),
                    f"台账编号 {r.external_id} 与第 {r.first} 条重复",
                    "duplicate_external_id",
                    index=r.idx,
                    id=r.ref,
                )
            )
    return errors


# -- reads --------------------------------------------------------------------------------------


def list_households(
    session: Session, scope: Scope, **query: Unpack[queries.HouseholdQuery]
) -> PageResult:
    return queries.households_page(session, scope, **query)


def _household_row(
    session: Session, scope: Scope, household_id: int, *, lock: bool = False
) -> Household:
    return scope.get(session, Household, household_id, "户", lock=lock)


def get_household(
    session: Session, scope: Scope, household_id: int, *, coord_sys: CoordSys, pii: bool
) -> HouseholdRead:
    _household_row(session, scope, household_id)
    data = queries.HOUSEHOLDS.one(
        session, household_id, coord_sys=coord_sys, geometry_key="location"
    )
    return HouseholdRead(**personal_row(session, scope, "households", data, household_id, pii=pii))


def create_household(
    session: Session, scope: Scope, data: HouseholdCreate, *, coord_sys: CoordSys
) -> HouseholdRead:
    point = parse_geometry(
        data.location, loc=["body", "location"], kind="point", coord_sys=coord_sys
    )
    if data.external_id and session.scalar(
        text("SELECT 1 FROM households WHERE county_code = :c AND external_id = :e"),
        {"c": scope.county_code, "e": data.external_id},
    ):
        raise Conflict(f"台账编号 {data.external_id} 已存在", code="external_id_taken")
    result = write_households(
        session,
        scope,
        [
            HouseholdRow(
                0,
                data.head_name,
                point.x,
                point.y,
                external_id=data.external_id,
                village_code=data.village_code,
                phone=data.phone,
                id_number=data.id_number,
                address=data.address,
                hamlet=data.hamlet,
                size=data.size,
                tags=data.tags,
            )
        ],
        county_code=scope.county_code,
        loc_prefix=["body"],
        single=True,
    )
    if result.errors:
        if any(e.code == "village_not_found" for e in result.errors):
            raise NotFound(f"村 {data.village_code} ")
        raise RuleViolation(result.errors)
    household = session.get(Household, result.ids[0])
    assert household is not None
    session.refresh(household)
    audit.record(
        session,
        scope,
        action="create",
        entity="household",
        entity_id=household.id,
        county_code=household.county_code,
        after=audit.snapshot(household),
    )
    return get_household(session, scope, household.id, coord_sys=coord_sys, pii=False)


def update_household(
    session: Session, scope: Scope, household_id: int, data: HouseholdUpdate, *, coord_sys: CoordSys
) -> HouseholdRead:
    household = _household_row(session, scope, household_id, lock=True)
    if household.removed_at is not None:
        raise Conflict("该户已注销，不能修改", code="household_removed")
    if data.version is not None and data.version != household.version:
        raise Conflict(
            f"该户已被他人修改（当前版本 {household.version}），请刷新后重试",
            code="version_conflict",
            current_version=household.version,
        )
    before = audit.snapshot(household)
    changes = data.model_dump(exclude_unset=True, exclude={"version", "location"})
    if data.location is not None:
        point = parse_geometry(
            data.location, loc=["body", "location"], kind="point", coord_sys=coord_sys
        )
        lon, lat = point.x, point.y
    else:
        lon, lat = session.execute(
            text("SELECT ST_X(geom), ST_Y(geom) FROM households WHERE id = :id"),
            {"id": household.id},
        ).one()
    merged = {
        "head_name": household.head_name,
        "phone": household.phone,
        "id_number": household.id_number,
        "address": household.address,
        "hamlet": household.hamlet,
        "size": household.size,
        "tags": list(household.tags),
    } | changes
    village_code = (
        session.scalar(
            text("SELECT code FROM admin_units WHERE id = :id"), {"id": household.village_id}
        )
        if data.location is None
        else None
    )
    result = write_households(
        session,
        scope,
        [
            HouseholdRow(
                0,
                lon=lon,
                lat=lat,
                target_id=household.id,
                village_code=village_code,
                external_id=household.external_id,
                **merged,
            )
        ],
        county_code=household.county_code,
        loc_prefix=["body"],
        single=True,
    )
    if result.errors:
        raise RuleViolation(result.errors)
    if data.location is not None:
        # Moved (maybe to another village): contacts that no longer hold end (gridgov.contacts).
        events.publish(session, HouseholdMoved(scope, household.id))
    session.refresh(household)
    audit.record(
        session,
        scope,
        action="update",
        entity="household",
        entity_id=household.id,
        county_code=household.county_code,
        before=before,
        after=audit.snapshot(household),
    )
    return get_household(session, scope, household.id, coord_sys=coord_sys, pii=False)


def remove_household(session: Session, scope: Scope, household_id: int, *, reason: str) -> None:
    """Households are never deleted: removal keeps the record (history, visits) with a reason."""
    household = _household_row(session, scope, household_id, lock=True)
    if household.removed_at is not None:
        raise Conflict("该户已注销", code="household_removed")
    before = audit.snapshot(household)
    household.removed_at = datetime.now(UTC)
    household.removed_reason = reason
    session.flush()
    events.publish(session, HouseholdRemoved(scope, household.id, reason))  # contacts end
    audit.record(
        session,
        scope,
        action="remove",
        entity="household",
        entity_id=household.id,
        county_code=household.county_code,
        before=before,
        after=audit.snapshot(household),
    )
