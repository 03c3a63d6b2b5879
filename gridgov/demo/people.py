"""The demo year's people: 党员联系户 from the exact auto-assign, a year of hand-overs, members
leaving and households removed, and the accounts that log visits and handle issues.

The first assignment is ``planner.auto_assign(…, mode="apply")`` for the whole county,
as the system, dated the first day of the year. Hand-overs go through ``assign_contact`` with
``replace_primary`` (back-dated, as a village secretary may enter one); members leaving and
households removed are written as the members and households services write them (``left_at``
/ ``removed_at`` with a reason, every active assignment ended that day with ``member_left`` /
``household_removed``), and the village's holes are filled some days later by the auto-assign
again. Everything happens in date order, so each step sees the county as it was that day, and
the database's own constraints (one active primary, no overlapping primary periods) accept the
whole history.

Accounts: every Party member who is or was a primary contact gets a ``grid_member`` account
linked to it (``users.member_id``) for each grid its households lie in (a grid member's account
reaches one grid; a member whose households straddle two grids has one account per grid, the
one of most of its households first). Each village gets its secretary's ``village_admin``
account, each township one ``township_admin``, the county two ``county_admin`` (a county-level
issue is verified by someone other than its handler). The demo's six named users take their own
unit's place. All accounts share one argon2 hash of the demo password, computed once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.audit import service as audit
from gridgov.auth import security
from gridgov.auth.scope import Scope
from gridgov.contacts import planner
from gridgov.contacts import queries as contacts_queries
from gridgov.contacts import service as contacts_service
from gridgov.contacts.schemas import ContactCreate
from gridgov.db import raw_connection
from gridgov.demo.timeline import Year, local, rng
from gridgov.errors import DomainError

Progress = Callable[[str, int, int], None]

HANDOVER_SHARE = 0.002  # of households: a contact handed over to another member in the year
LEAVE_SHARE = 0.005  # of members: moved away, transferred, died
REMOVE_SHARE = 0.001  # of households: moved out, merged, the last member died
WEAK_SHARE = 0.02  # of villages: a weak organization (软弱涣散) — visits lapse, issues linger
FAKER_SHARE = 0.006  # of members with households: logs visits that never happened

LEAVE_REASONS = ("外出务工，组织关系转出", "随子女迁居外地", "病故", "调任其他村")
REMOVE_REASONS = ("全家迁出本村", "并入子女户", "户内人员均已去世", "重复登记，予以注销")
HANDOVER_NOTES = (
    "原联系人外出务工，工作交接",
    "按就近原则调整联系户",
    "原联系人年老体弱，调整联系",
)


@dataclass
class Staff:
    """Who acts for each unit: user ids by village, township, and the county's two admins."""

    village: dict[int, int] = field(default_factory=dict)
    township: dict[int, int] = field(default_factory=dict)
    county: list[int] = field(default_factory=list)
    township_of: dict[int, int] = field(default_factory=dict)  # village id → township id
    grid_user: int | None = None  # the named ``grid`` user, if loaded
    grid_user_grid: int | None = None


@dataclass
class People:
    county_code: str
    county_id: int
    villages: list[tuple[int, str]]  # (id, code) of every village with grids
    weak_villages: frozenset[int]
    fakers: tuple[int, ...]  # member ids, sorted
    staff: Staff
    member_users: dict[tuple[int, int], int]  # (member id, grid id) → user id
    contacts: int = 0
    handovers: int = 0
    members_left: int = 0
    households_removed: int = 0
    reassigned: int = 0
    uncovered: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def build(session: Session, scope: Scope, year: Year, *, seed: int, report: Progress) -> People:
    county_code = scope.county_code
    county_id = scope.unit_id
    assert county_id is not None
    villages = [
        (r.id, r.code)
        for r in session.execute(
            text(
                "SELECT v.id, v.code FROM admin_units v WHERE v.county_code = :c "
                "AND v.level = 'village' AND v.valid_to IS NULL "
                "AND EXISTS (SELECT 1 FROM grids g WHERE g.village_id = v.id) ORDER BY v.code"
            ),
            {"c": county_code},
        )
    ]
    pick = rng(seed, "weak")
    # The named demo users' village stays an ordinary one: its screens show a working village.
    candidates = [v for v, _ in villages[1:]]
    weak = frozenset(pick.sample(candidates, max(1, round(len(villages) * WEAK_SHARE))))

    # The county began with the system a year ago: its households and members are on record
    # since then (the due list counts a never-visited household as due from registration).
    timer = time.perf_counter()
    registered = local(year.start, 8.5)
    for table in ("households", "party_members"):
        session.execute(
            text(f"UPDATE {table} SET created_at = :t WHERE county_code = :c"),
            {"t": registered, "c": county_code},
        )

    seconds = {"registered": time.perf_counter() - timer}
    timer = time.perf_counter()
    report("联系户：自动分配", 0, 1)
    plan = planner.auto_assign(session, scope, unit_code=county_code, mode="apply", on=year.start)
    report("联系户：自动分配", 1, 1)
    people = People(
        county_code=county_code,
        county_id=county_id,
        villages=villages,
        weak_villages=weak,
        fakers=(),
        staff=Staff(),
        member_users={},
        contacts=len(plan.pair_household),
        seconds=seconds,
    )
    seconds["auto_assign"] = time.perf_counter() - timer
    timer = time.perf_counter()
    _history(session, scope, year, people, seed=seed, report=report)
    seconds["history"] = time.perf_counter() - timer
    timer = time.perf_counter()
    people.uncovered = session.scalar(
        text(
            "SELECT count(*) FROM households h WHERE h.county_code = :c AND h.removed_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.household_id = h.id "
            "AND c.role = 'primary' AND c.valid_to IS NULL)"
        ),
        {"c": county_code},
    )
    _accounts(session, people, seed=seed)
    seconds["accounts"] = time.perf_counter() - timer
    return people


# -- the year's changes -------------------------------------------------------------------------


def _history(
    session: Session, scope: Scope, year: Year, people: People, *, seed: int, report: Progress
) -> None:
    code = people.county_code
    households = [
        r.id
        for r in session.execute(
            text("SELECT id FROM households WHERE county_code = :c ORDER BY id"), {"c": code}
        )
    ]
    members = [
        r.id
        for r in session.execute(
            text(
                "SELECT DISTINCT member_id AS id FROM contacts WHERE county_code = :c "
                "ORDER BY member_id"
            ),
            {"c": code},
        )
    ]
    pick = rng(seed, "history")
    events: list[tuple[date, int, int]] = []  # (day, kind, id): 0 handover, 1 leave, 2 remove
    last = year.days - 1

    def day() -> date:
        return year.day(pick.randint(20, last))

    for h in pick.sample(households, min(len(households), round(len(households) * HANDOVER_SHARE))):
        events.append((day(), 0, h))
    for m in pick.sample(members, min(len(members), max(1, round(len(members) * LEAVE_SHARE)))):
        events.append((day(), 1, m))
    for h in pick.sample(
        households, min(len(households), max(1, round(len(households) * REMOVE_SHARE)))
    ):
        events.append((day(), 2, h))
    # Villages whose holes the secretary fills again, on which day (after members left).
    refill: dict[date, set[str]] = {}
    events.sort()
    total = len(events)
    report("联系户：一年的变动", 0, total)
    limits = contacts_service.limits_for(code)
    params = contacts_queries.limit_params(limits)
    queue = list(events)
    done = 0
    while queue or refill:
        next_refill = min(refill) if refill else None
        if queue and (next_refill is None or queue[0][0] <= next_refill):
            on, kind, entity = queue.pop(0)
            if kind == 0:
                people.handovers += _handover(session, scope, entity, on, params, pick)
            elif kind == 1:
                village = _leave(session, entity, on, pick)
                if village is not None:
                    people.members_left += 1
                    again = on + timedelta(days=pick.randint(3, 40))
                    if again < year.today:
                        refill.setdefault(again, set()).add(village)
            else:
                people.households_removed += _remove(session, entity, on, pick)
            done += 1
            report("联系户：一年的变动", done, total)
        else:
            assert next_refill is not None
            for village_code in sorted(refill.pop(next_refill)):
                plan = planner.auto_assign(
                    session, scope, unit_code=village_code, mode="apply", on=next_refill
                )
                people.reassigned += len(plan.pair_household)


_CANDIDATE_SQL = f"""
SELECT m.id FROM households h
JOIN party_members m ON m.village_id = h.village_id
WHERE h.id = :h AND m.left_at IS NULL AND m.id <> :current
  AND {contacts_queries.primary_allowed_sql("m")}
  AND (SELECT count(*) FROM contacts c WHERE c.member_id = m.id AND c.valid_to IS NULL)
      < {contacts_queries.normal_sql("m")}
ORDER BY (m.grid_id IS DISTINCT FROM h.grid_id), m.geom <-> h.geom, m.id
LIMIT 3
"""


def _handover(
    session: Session,
    scope: Scope,
    household_id: int,
    on: date,
    params: dict[str, object],
    pick: random.Random,
) -> int:
    """The household's primary contact hands over to a nearby member with room (same grid
    first), through the service a village secretary uses."""
    current = session.execute(
        text(
            "SELECT c.member_id, c.valid_from FROM contacts c WHERE c.household_id = :h "
            "AND c.role = 'primary' AND c.valid_to IS NULL"
        ),
        {"h": household_id},
    ).first()
    if current is None or current.valid_from >= on:
        return 0
    candidates = session.scalars(
        text(_CANDIDATE_SQL), {**params, "h": household_id, "current": current.member_id}
    ).all()
    if not candidates:
        return 0
    try:
        contacts_service.assign_contact(
            session,
            scope,
            ContactCreate(
                member_id=pick.choice(candidates),
                household_id=household_id,
                role="primary",
                valid_from=on,
                replace_primary=True,
                note=pick.choice(HANDOVER_NOTES),
            ),
        )
    except DomainError:  # a rule says no (as it would say to the secretary): no hand-over
        return 0
    return 1


def _leave(session: Session, member_id: int, on: date, pick: random.Random) -> str | None:
    """As ``members_service.leave`` writes it, on ``on``: the member kept on record with date
    and reason, no longer a grid chief, every active assignment ended that day."""
    reason = pick.choice(LEAVE_REASONS)
    village = session.execute(
        text(
            "UPDATE party_members m SET left_at = :at, left_reason = :reason, "
            "version = m.version + 1, updated_at = now() "
            "FROM admin_units v WHERE m.id = :m AND m.left_at IS NULL AND v.id = m.village_id "
            "RETURNING v.code"
        ),
        {"m": member_id, "at": local(on, 9 + pick.random() * 8), "reason": reason},
    ).scalar()
    if village is None:
        return None
    session.execute(
        text("UPDATE grids SET chief_member_id = NULL WHERE chief_member_id = :m"),
        {"m": member_id},
    )
    _end(session, "c.member_id = :id", member_id, on, "member_left", reason)
    return village


def _remove(session: Session, household_id: int, on: date, pick: random.Random) -> int:
    """As ``households_service.remove_household`` writes it, on ``on``."""
    reason = pick.choice(REMOVE_REASONS)
    removed = session.execute(
        text(
            "UPDATE households SET removed_at = :at, removed_reason = :reason, "
            "version = version + 1, updated_at = now() "
            "WHERE id = :h AND removed_at IS NULL RETURNING id"
        ),
        {"h": household_id, "at": local(on, 9 + pick.random() * 8), "reason": reason},
    ).scalar()
    if removed is None:
        return 0
    _end(session, "c.household_id = :id", household_id, on, "household_removed", reason)
    return 1


def _end(session: Session, where: str, entity_id: int, on: date, reason: str, note: str) -> None:
    session.execute(
        text(
            "UPDATE contacts c SET valid_to = GREATEST(:on, c.valid_from), ended_reason = :r, "
            f"ended_note = :note, updated_at = now() WHERE c.valid_to IS NULL AND {where}"
        ),
        {"on": on, "r": reason, "note": note, "id": entity_id},
    )


# -- accounts -----------------------------------------------------------------------------------

NAMED = ("county", "township", "village", "grid")


def _accounts(session: Session, people: People, *, seed: int) -> None:
    code = people.county_code
    named = {
        r.username: r
        for r in session.execute(
            text(
                "SELECT u.username, u.id, u.unit_id, u.grid_id FROM users u "
                "WHERE u.county_code = :c AND u.username = ANY(:n)"
            ),
            {"c": code, "n": list(NAMED)},
        )
    }
    units = session.execute(
        text(
            "SELECT id, code, name, level, parent_id FROM admin_units "
            "WHERE county_code = :c AND valid_to IS NULL ORDER BY code"
        ),
        {"c": code},
    ).all()
    with_grids = {v for v, _ in people.villages}
    # Grid-member accounts: (member, grid) pairs of every primary contact of the year, a
    # member's main grid (most of its households) first.
    pairs = session.execute(
        text(
            """
            SELECT c.member_id, h.grid_id, m.name,
                   row_number() OVER (PARTITION BY c.member_id
                                      ORDER BY count(*) DESC, h.grid_id) AS k,
                   dense_rank() OVER (ORDER BY c.member_id) AS rank
            FROM contacts c JOIN households h ON h.id = c.household_id
            JOIN party_members m ON m.id = c.member_id
            WHERE c.county_code = :c AND c.role = 'primary' AND h.grid_id IS NOT NULL
            GROUP BY c.member_id, h.grid_id, m.name
            ORDER BY c.member_id, k
            """
        ),
        {"c": code},
    ).all()
    password_hash = security.hash_password(_demo_password())
    rows: list[tuple[object, ...]] = []
    for u in units:
        if u.level == "village" and u.id in with_grids and "village" not in _bound(named, u.id):
            rows.append((f"v{u.code}", f"{u.name}党组织书记", "village_admin", u.id, None, None))
        elif u.level == "township" and "township" not in _bound(named, u.id):
            rows.append((f"t{u.code}", f"{u.name}党委组织委员", "township_admin", u.id, None, None))
        elif u.level == "county":
            if "county" not in _bound(named, u.id):
                rows.append((f"c{u.code}", "县委组织部干部", "county_admin", u.id, None, None))
            rows.append((f"c{u.code}-2", "县委政法委干部", "county_admin", u.id, None, None))
    for p in pairs:
        suffix = "" if p.k == 1 else f"-{p.k}"
        rows.append(
            (
                f"m{code}{p.rank:05d}{suffix}",
                f"联户党员{p.rank:05d}",
                "grid_member",
                None,
                p.grid_id,
                p.member_id,
            )
        )
    conn = raw_connection(session)
    with conn.cursor().copy(
        "COPY users (username, display_name, role, unit_id, grid_id, member_id, password_hash, "
        "county_code) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row((*row, password_hash, code))
    audit.record(
        session,
        None,
        action="create",
        entity="user",
        entity_id=f"demo:{len(rows)}",
        county_code=code,
        after={"users": len(rows), "roles": sorted({r[2] for r in rows})},
    )
    staff = people.staff
    for r in session.execute(
        text(
            "SELECT u.id, u.role, u.unit_id, u.grid_id, u.member_id, u.username FROM users u "
            "WHERE u.county_code = :c ORDER BY u.id"
        ),
        {"c": code},
    ):
        if r.role == "village_admin":
            staff.village.setdefault(r.unit_id, r.id)
        elif r.role == "township_admin":
            staff.township.setdefault(r.unit_id, r.id)
        elif r.role == "county_admin" and r.unit_id == people.county_id:
            staff.county.append(r.id)
        elif r.role == "grid_member" and r.member_id is not None:
            people.member_users[(r.member_id, r.grid_id)] = r.id
        elif r.role == "grid_member" and r.username == "grid":
            staff.grid_user, staff.grid_user_grid = r.id, r.grid_id
    staff.township_of = {u.id: u.parent_id for u in units if u.level == "village"}
    # Fakers: members with enough households that faking pays (a sitting fills a burst).
    pick = rng(seed, "fakers")
    busy = session.scalars(
        text(
            "SELECT c.member_id FROM contacts c JOIN party_members m ON m.id = c.member_id "
            "WHERE c.county_code = :c AND c.role = 'primary' AND m.left_at IS NULL "
            "AND NOT (m.village_id = ANY(:weak)) GROUP BY c.member_id HAVING count(*) >= 6 "
            "ORDER BY c.member_id"
        ),
        {"c": code, "weak": sorted(people.weak_villages)},
    ).all()
    with_households = len({p.member_id for p in pairs})
    wanted = min(len(busy), max(3, round(with_households * FAKER_SHARE)))
    people.fakers = tuple(sorted(pick.sample(list(busy), wanted)))


def _bound(named: dict[str, object], unit_id: int) -> set[str]:
    return {name for name, r in named.items() if getattr(r, "unit_id", None) == unit_id}


def _demo_password() -> str:
    from gridgov.demo.load import DEMO_PASSWORD

    return DEMO_PASSWORD
