"""联系户: assign households to Party members, keep the history, plan whole units at once.

Rules checked at every write (DESIGN §2, issue 3), each a 422 naming the field when broken:
same village (or the member's organization covers the household's village), the member's
capacity, the county's policy for flowing (流动) and probationary (预备) members, nobody who has
left and no household that was removed. One active primary per household is the database's job
(``uq_contacts_active_primary``); a request losing that race gets a 409.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridgov import privacy, wire
from gridgov.audit import service as audit
from gridgov.auth.scope import Scope
from gridgov.config import ContactLimits, get_settings
from gridgov.contacts import queries, solver
from gridgov.contacts.models import Contact
from gridgov.contacts.schemas import (
    AutoAssign,
    ContactCreate,
    ContactEnd,
    ContactRead,
    CoverageReport,
    CoverageRow,
    EndedContact,
    HouseholdContacts,
    ReleaseResult,
)
from gridgov.errors import Conflict, FieldError, NotFound, RuleViolation
from gridgov.hierarchy.models import AdminUnit
from gridgov.households.models import Household
from gridgov.listing import PageResult
from gridgov.members.models import PartyMember
from gridgov.pagination import decode_id_cursor, encode_cursor

SHANGHAI = ZoneInfo("Asia/Shanghai")
UNCOVERED_MESSAGES = {
    "no_eligible_member": "本村没有可担任主要联系人且尚有余量的在册党员",
    "no_member_within_reach": "最大联系距离内没有可担任主要联系人的党员",
    "capacity_exhausted": "可及范围内的党员联系户数均已满额",
}
ROLE_NAMES = {"primary": "主要联系人", "secondary": "协助联系人"}

Progress = Callable[[str, int, int], None]


def today() -> date:
    """Assignments are dated in China's local time, whatever the server's clock zone."""
    return datetime.now(SHANGHAI).date()


def limits_for(county_code: str) -> ContactLimits:
    return get_settings().contacts.limits_for(county_code)


def member_limits(member: PartyMember, limits: ContactLimits) -> tuple[int, int]:
    """(normal load, hard capacity) of one member under its county's limits."""
    capacity = limits.hard_max
    if member.capacity is not None:
        capacity = min(capacity, member.capacity)
    if member.status == "probationary":
        capacity = min(capacity, limits.probationary_max)
    normal = min(limits.hub_normal_max if member.is_hub else limits.normal_max, capacity)
    return normal, capacity


def allowed_roles(member: PartyMember, limits: ContactLimits) -> set[str]:
    roles = {"primary", "secondary"}
    if member.flowing:
        roles &= set(limits.flowing_roles)
    if member.status == "probationary":
        roles &= set(limits.probationary_roles)
    return roles


# -- reads --------------------------------------------------------------------------------------


def _mask(row: dict[str, Any], pii: bool) -> dict[str, Any]:
    return privacy.mask("contact", row, shown=pii)


def _pii(session: Session, scope: Scope, pii: bool, entity_id: Any) -> None:
    """The personal-data rule: ``pii=true`` only for roles allowed it, and audited."""
    if privacy.clear(scope, pii):
        privacy.record_read(session, scope, "contact", entity_id)


def list_contacts(
    session: Session,
    scope: Scope,
    *,
    unit_code: str | None = None,
    grid_code: str | None = None,
    member_id: int | None = None,
    household_id: int | None = None,
    role: str | None = None,
    status: str = "active",
    on: date | None = None,
    limit: int,
    cursor: str | None = None,
    pii: bool = False,
) -> PageResult:
    """Assignments in the caller's scope (through their households), keyset on id."""
    scope.check_unit_filter(session, unit_code)
    where, params = scope.sql("household", "h")
    sql = f"SELECT {queries.CONTACT_COLUMNS} {queries.CONTACT_FROM} WHERE {where} AND c.id > :after"
    if on is not None:
        sql += f" AND {queries.ACTIVE_ON}"
        params["on"] = on
    elif status == "active":
        sql += " AND c.valid_to IS NULL"
    elif status == "ended":
        sql += " AND c.valid_to IS NOT NULL"
    if unit_code:
        sql += " AND v.code LIKE :unit_prefix"
        params["unit_prefix"] = f"{unit_code}%"
    if grid_code:
        sql += " AND g.code = :grid_code"
        params["grid_code"] = grid_code
    for name, value in (("member_id", member_id), ("household_id", household_id), ("role", role)):
        if value is not None:
            sql += f" AND c.{name} = :{name}"
            params[name] = value
    sql += " ORDER BY c.id LIMIT :limit_plus"
    params.update(after=decode_id_cursor(cursor), limit_plus=limit + 1)
    rows = session.execute(text(sql), params).all()
    more = len(rows) > limit
    rows = rows[:limit]
    _pii(session, scope, pii, f"list:{len(rows)}")
    return PageResult(
        [_mask(dict(r._mapping), pii) for r in rows], encode_cursor(rows[-1].id) if more else None
    )


def _contact_row(session: Session, scope: Scope, contact_id: int, *, lock: bool = False) -> Contact:
    query = (
        select(Contact)
        .join(Household, Household.id == Contact.household_id)
        .where(Contact.id == contact_id, scope.where(Household))
    )
    if lock:
        query = query.with_for_update(of=Contact)
    contact = session.scalar(query)
    if contact is None:
        raise NotFound("联系记录")
    return contact


def get_contact(
    session: Session, scope: Scope, contact_id: int, *, pii: bool = False
) -> ContactRead:
    _contact_row(session, scope, contact_id)
    _pii(session, scope, pii, contact_id)
    return _read(session, contact_id, pii=pii)


def _read(session: Session, contact_id: int, *, pii: bool = False) -> ContactRead:
    row = session.execute(
        text(f"SELECT {queries.CONTACT_COLUMNS} {queries.CONTACT_FROM} WHERE c.id = :id"),
        {"id": contact_id},
    ).one()
    return ContactRead(**_mask(dict(row._mapping), pii))


def _household_row(
    session: Session, scope: Scope, household_id: int, *, lock: bool = False
) -> Household:
    return scope.get(session, Household, household_id, "户", lock=lock)


def household_contacts(
    session: Session, scope: Scope, household_id: int, *, on: date | None = None, pii: bool = False
) -> HouseholdContacts:
    """Who looked after household H on day D (or now), and its whole contact history."""
    _household_row(session, scope, household_id)
    rows = session.execute(
        text(
            f"SELECT {queries.CONTACT_COLUMNS} {queries.CONTACT_FROM} "
            "WHERE c.household_id = :id ORDER BY c.valid_from, c.id"
        ),
        {"id": household_id},
    ).all()
    _pii(session, scope, pii, f"household:{household_id}")
    history = [ContactRead(**_mask(dict(r._mapping), pii)) for r in rows]

    def holds(c: ContactRead) -> bool:
        if on is None:
            return c.valid_to is None
        return c.valid_from <= on and (c.valid_to is None or c.valid_to > on)

    current = [c for c in history if holds(c)]
    return HouseholdContacts(
        household_id=household_id,
        on=on,
        primary=next((c for c in current if c.role == "primary"), None),
        secondary=[c for c in current if c.role == "secondary"],
        history=history,
    )


def _unit(session: Session, scope: Scope, unit_code: str | None) -> AdminUnit:
    """The unit a coverage view or a plan is about; the caller's own unit by default."""
    query = scope.select(AdminUnit).where(AdminUnit.valid_to.is_(None))
    if unit_code is None:
        unit_ids = [scope.unit_id] if scope.unit_id else sorted(scope.unit_ids)
        query = query.where(AdminUnit.id.in_(unit_ids))
    else:
        query = query.where(AdminUnit.code == unit_code)
    unit = session.scalar(query)
    if unit is None:
        raise NotFound(f"行政单位 {unit_code or ''} ")
    return unit


LEVEL_RANK = {"county": 0, "township": 1, "village": 2, "grid": 3}


def coverage(
    session: Session, scope: Scope, *, unit_code: str | None = None, by: str = "village"
) -> CoverageReport:
    """Per grid / village / township: households with and without a primary contact, members
    over their limits, average distance of primary contacts."""
    unit = _unit(session, scope, unit_code)
    if LEVEL_RANK[by] < LEVEL_RANK[unit.level]:
        raise RuleViolation(
            [
                FieldError(
                    ["query", "by"],
                    f"{unit.name}不能按{ {'township': '乡镇', 'village': '村'}[by] }汇总",
                    "invalid_grouping",
                )
            ]
        )
    h_where, params = scope.sql("household", "h")
    m_where, m_params = scope.sql("member", "m")
    params.update(m_params)
    params.update(queries.limit_params(limits_for(unit.county_code)))
    params.update(prefix=f"{unit.code}%", villages=list(_villages(session, scope, unit)))
    rows = session.execute(text(queries.coverage_sql(by, h_where, m_where)), params).mappings()
    items = []
    for r in rows:
        data = {k: v for k, v in r.items() if k not in ("sort1", "sort2", "?column?")}
        households = data["households"]
        data["uncovered"] = households - data["covered"]
        data["coverage"] = round(data["covered"] / households, 4) if households else 1.0
        items.append(CoverageRow(**data))
    return CoverageReport(unit_code=unit.code, by=by, items=items)


def _villages(session: Session, scope: Scope, unit: AdminUnit) -> Sequence[int]:
    return session.scalars(
        select(AdminUnit.id)
        .where(
            AdminUnit.level == "village",
            AdminUnit.valid_to.is_(None),
            AdminUnit.code.startswith(unit.code),
            AdminUnit.id.in_(scope.village_ids or sorted(scope.unit_ids)),
        )
        .order_by(AdminUnit.id)
    ).all()


def list_uncovered(
    session: Session,
    scope: Scope,
    *,
    unit_code: str | None = None,
    grid_code: str | None = None,
    limit: int,
    cursor: str | None = None,
    pii: bool = False,
) -> PageResult:
    """Households on record without an active primary contact."""
    scope.check_unit_filter(session, unit_code)
    where, params = scope.sql("household", "h")
    sql = (
        "SELECT h.id, h.head_name, v.code AS village_code, g.code AS grid_code, h.hamlet, "
        "h.address FROM households h JOIN admin_units v ON v.id = h.village_id "
        "LEFT JOIN grids g ON g.id = h.grid_id "
        f"WHERE {where} AND h.removed_at IS NULL AND h.id > :after AND NOT EXISTS ("
        "SELECT 1 FROM contacts c WHERE c.household_id = h.id AND c.role = 'primary' "
        "AND c.valid_to IS NULL)"
    )
    if unit_code:
        sql += " AND v.code LIKE :unit_prefix"
        params["unit_prefix"] = f"{unit_code}%"
    if grid_code:
        sql += " AND g.code = :grid_code"
        params["grid_code"] = grid_code
    sql += " ORDER BY h.id LIMIT :limit_plus"
    params.update(after=decode_id_cursor(cursor), limit_plus=limit + 1)
    rows = session.execute(text(sql), params).all()
    more = len(rows) > limit
    rows = rows[:limit]
    shown = privacy.clear(scope, pii)
    items = [privacy.mask("household", dict(r._mapping), shown=shown) for r in rows]
    if shown:
        privacy.record_read(session, scope, "household", f"list:{len(items)}")
    return PageResult(items, encode_cursor(rows[-1].id) if more else None)


# -- writes -------------------------------------------------------------------------------------


def _member_row(
    session: Session, scope: Scope, member_id: int, *, lock: bool = False
) -> PartyMember:
    # lock=True serialises capacity checks: every write adding to a member's load locks it.
    return scope.get(session, PartyMember, member_id, "党员", lock=lock)


def _covers(session: Session, member: PartyMember, household: Household) -> bool:
    if member.village_id == household.village_id:
        return True
    return bool(
        session.scalar(
            text(
                "SELECT 1 FROM party_orgs o JOIN admin_units hv ON hv.id = :village "
                "LEFT JOIN admin_units ht ON ht.id = hv.parent_id "
                "WHERE o.id = :org AND o.unit_id IN (hv.id, hv.parent_id, ht.parent_id)"
            ),
            {"village": household.village_id, "org": member.party_org_id},
        )
    )


def _load(session: Session, member_id: int) -> int:
    return int(
        session.scalar(
            text(
                "SELECT count(*) FROM contacts c JOIN households h ON h.id = c.household_id "
                "WHERE c.member_id = :m AND c.valid_to IS NULL AND h.removed_at IS NULL"
            ),
            {"m": member_id},
        )
        or 0
    )


def _constraint(exc: IntegrityError) -> str | None:
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None)


def _active_primary(session: Session, household_id: int) -> Contact | None:
    return session.scalar(
        select(Contact).where(
            Contact.household_id == household_id,
            Contact.role == "primary",
            Contact.valid_to.is_(None),
        )
    )


def _insert(session: Session, contact: Contact) -> None:
    """Insert in a savepoint so the database's verdict becomes a 409, not a 500."""
    try:
        with session.begin_nested():
            session.add(contact)
            session.flush()
    except IntegrityError as exc:
        name = _constraint(exc)
        if name == "uq_contacts_active_primary":
            raise Conflict("该户已有主要联系人（可能刚被他人指定）", code="primary_exists") from exc
        if name == "ex_contacts_primary_overlap":
            # Both constraints catch a racing second primary; whichever PostgreSQL checks
            # first, the answer names what the caller ran into.
            if contact.valid_to is None and _active_primary(session, contact.household_id):
                raise Conflict(
                    "该户已有主要联系人（可能刚被他人指定）", code="primary_exists"
                ) from exc
            raise Conflict(
                "该户在这段时间已有主要联系人，时间段不能重叠", code="primary_overlap"
            ) from exc
        if name == "uq_contacts_active_member_household":
            raise Conflict("该党员已在联系此户", code="already_assigned") from exc
        raise


def assign_contact(session: Session, scope: Scope, data: ContactCreate) -> ContactRead:
    """Make a member the primary or secondary contact of a household (DESIGN §2 rules)."""
    household = _household_row(session, scope, data.household_id)
    member = _member_row(session, scope, data.member_id, lock=True)
    limits = limits_for(household.county_code)
    start = data.valid_from or today()
    errors: list[FieldError] = []

    def err(field_: str, msg: str, code: str) -> None:
        errors.append(FieldError(["body", field_], msg, code))

    if start > today():
        err("valid_from", "开始日期不能晚于今天", "valid_from_in_future")
    if member.left_at is not None:
        err(
            "member_id",
            f"党员已离开（{member.left_reason or '已离开'}），不能联系户",
            "member_left",
        )
    if household.removed_at is not None:
        err("household_id", "该户已注销，不能安排联系人", "household_removed")
    if not _covers(session, member, household):
        err(
            "household_id",
            "党员与户不在同一村，党员所在党组织也不管辖该户所在村",
            "not_same_village",
        )
    if data.role not in allowed_roles(member, limits):
        kind = "流动党员" if member.flowing else "预备党员"
        err("role", f"按本县规定，{kind}不能担任{ROLE_NAMES[data.role]}", "role_not_allowed")
    normal, capacity = member_limits(member, limits)
    load = _load(session, member.id)
    if load + 1 > capacity:
        err(
            "member_id",
            f"该党员已联系 {load} 户，达到上限 {capacity} 户"
            f"（常规 {limits.normal_min}–{normal} 户）",
            "capacity_exceeded",
        )
    if data.role == "secondary":
        secondaries = session.scalar(
            select(func.count())
            .select_from(Contact)
            .where(
                Contact.household_id == household.id,
                Contact.role == "secondary",
                Contact.valid_to.is_(None),
            )
        )
        if (secondaries or 0) >= limits.max_secondary_per_household:
            err(
                "role",
                f"每户最多 {limits.max_secondary_per_household} 名协助联系人",
                "too_many_secondary",
            )
    if errors:
        raise RuleViolation(errors)

    current = _active_primary(session, household.id)
    if data.role == "primary" and current is not None:
        if current.member_id == member.id:
            raise Conflict("该党员已是此户的主要联系人", code="already_assigned")
        if not data.replace_primary:
            raise Conflict(
                "该户已有主要联系人；如需更换，请设置 replace_primary",
                code="primary_exists",
                contact_id=current.id,
            )
        if start < current.valid_from:
            raise RuleViolation(
                [
                    FieldError(
                        ["body", "valid_from"],
                        "交接日期早于原联系人的开始日期",
                        "handover_before_start",
                    )
                ]
            )
        _end(session, scope, current, on=start, reason="replaced", note=data.note)
    contact = Contact(
        county_code=household.county_code,
        village_id=household.village_id,
        member_id=member.id,
        household_id=household.id,
        role=data.role,
        valid_from=start,
        source="manual",
        created_by=scope.user_id or None,
    )
    _insert(session, contact)
    audit.record(
        session,
        scope,
        action="create",
        entity="contact",
        entity_id=contact.id,
        county_code=contact.county_code,
        after=audit.snapshot(contact),
    )
    return _read(session, contact.id)


def _end(
    session: Session, scope: Scope, contact: Contact, *, on: date, reason: str, note: str | None
) -> None:
    before = audit.snapshot(contact)
    contact.valid_to = on
    contact.ended_reason = reason
    contact.ended_note = note
    contact.ended_by = scope.user_id or None
    session.flush()
    audit.record(
        session,
        scope,
        action="end",
        entity="contact",
        entity_id=contact.id,
        county_code=contact.county_code,
        before=before,
        after=audit.snapshot(contact),
    )


def end_contact(session: Session, scope: Scope, contact_id: int, data: ContactEnd) -> ContactRead:
    """Close an assignment (never delete it): ``on`` is the first day no longer in charge."""
    contact = _contact_row(session, scope, contact_id, lock=True)
    if contact.valid_to is not None:
        raise Conflict("该联系记录已结束", code="already_ended")
    on = data.on or today()
    if on > today():
        raise RuleViolation([FieldError(["body", "on"], "结束日期不能晚于今天", "end_in_future")])
    if on < contact.valid_from:
        raise RuleViolation(
            [FieldError(["body", "on"], "结束日期不能早于开始日期", "end_before_start")]
        )
    _end(session, scope, contact, on=on, reason=data.reason, note=data.note)
    return _read(session, contact.id)


# -- people change --------------------------------------------------------------------------------


def _end_where(
    session: Session,
    scope: Scope | None,
    where: str,
    params: dict[str, Any],
    *,
    reason: str | None,
    note: str | None,
    entity: str,
    entity_id: Any,
) -> ReleaseResult:
    """End every active assignment matching ``where`` in one statement; ``reason=None`` ends
    only those that no longer hold, each with the reason why."""
    end_reason = ":reason" if reason is not None else queries.STALE_REASON
    rows = session.execute(
        text(
            f"""
            WITH hit AS (
                SELECT c.id, {end_reason} AS reason
                FROM contacts c JOIN households h ON h.id = c.household_id
                JOIN party_members m ON m.id = c.member_id
                WHERE c.valid_to IS NULL AND {where}
                FOR UPDATE OF c
            )
            UPDATE contacts c SET valid_to = GREATEST(:on, c.valid_from),
                ended_reason = hit.reason, ended_note = :note, ended_by = :user,
                updated_at = now()
            FROM hit WHERE hit.id = c.id AND hit.reason IS NOT NULL
            RETURNING c.id, c.member_id, c.household_id, c.role, c.ended_reason, c.county_code
            """
        ),
        {
            **params,
            **queries.limit_params(limits_for(scope.county_code if scope else "")),
            "reason": reason,
            "note": note,
            "on": today(),
            "user": (scope.user_id or None) if scope else None,
        },
    ).all()
    ended = [
        EndedContact(
            id=r.id,
            member_id=r.member_id,
            household_id=r.household_id,
            role=r.role,
            reason=r.ended_reason,
        )
        for r in sorted(rows, key=lambda r: r.id)
    ]
    households = sorted({e.household_id for e in ended if e.role == "primary"})
    uncovered = _without_primary(session, households)
    if ended:
        audit.record(
            session,
            scope,
            action="end_contacts",
            entity=entity,
            entity_id=entity_id,
            county_code=rows[0].county_code,
            after={"ended": [e.id for e in ended], "reason": reason, "note": note},
        )
    return ReleaseResult(ended=ended, uncovered_household_ids=uncovered)


def _without_primary(session: Session, household_ids: Sequence[int]) -> list[int]:
    """Of these households, those on record that have no active primary contact."""
    if not household_ids:
        return []
    return list(
        session.scalars(
            text(
                "SELECT h.id FROM households h WHERE h.id = ANY(:ids) AND h.removed_at IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.household_id = h.id "
                "AND c.role = 'primary' AND c.valid_to IS NULL) ORDER BY h.id"
            ),
            {"ids": list(household_ids)},
        )
    )


def end_for_member(
    session: Session, scope: Scope | None, member_id: int, *, reason: str, note: str | None = None
) -> ReleaseResult:
    """End all of a member's assignments (the caller has checked the member is in scope)."""
    return _end_where(
        session,
        scope,
        "c.member_id = :member",
        {"member": member_id},
        reason=reason,
        note=note,
        entity="party_member",
        entity_id=member_id,
    )


def end_for_household(
    session: Session,
    scope: Scope | None,
    household_id: int,
    *,
    reason: str | None,
    note: str | None = None,
) -> ReleaseResult:
    """End a household's assignments (``reason=None``: only those that no longer hold)."""
    return _end_where(
        session,
        scope,
        "c.household_id = :household",
        {"household": household_id},
        reason=reason,
        note=note,
        entity="household",
        entity_id=household_id,
    )


def release_member(
    session: Session, scope: Scope, member_id: int, *, reason: str, note: str | None = None
) -> ReleaseResult:
    """A member leaves, moves or dies: end its assignments, list the households left without."""
    _member_row(session, scope, member_id, lock=True)
    return end_for_member(session, scope, member_id, reason=reason, note=note)


def release_household(
    session: Session,
    scope: Scope,
    household_id: int,
    *,
    reason: str,
    note: str | None = None,
    related_household_ids: Sequence[int] = (),
) -> ReleaseResult:
    """A household splits, moves or is removed: end its assignments; list it (if still on
    record) and the related new households if they have no primary contact."""
    _household_row(session, scope, household_id, lock=True)
    related = [_household_row(session, scope, h).id for h in related_household_ids]
    result = end_for_household(session, scope, household_id, reason=reason, note=note)
    result.uncovered_household_ids = _without_primary(session, sorted({household_id, *related}))
    return result


def reconcile(session: Session, scope: Scope, *, unit_code: str) -> ReleaseResult:
    """End every active assignment in a unit that no longer holds (member left, household
    removed or moved to another village, member no longer allowed as primary)."""
    unit = _unit(session, scope, unit_code)
    villages = list(_villages(session, scope, unit))
    where, params = scope.sql("household", "h")
    return _end_where(
        session,
        scope,
        f"(c.village_id = ANY(:villages) OR h.village_id = ANY(:villages)) AND {where}",
        {**params, "villages": villages},
        reason=None,
        note="自动清理失效的联系关系",
        entity="admin_unit",
        entity_id=unit.code,
    )


# -- automatic assignment -----------------------------------------------------------------------


@dataclass(eq=False)
class UnitProblem:
    """Everything the solver needs for a unit, as numpy arrays (read in two COPY statements)."""

    unit_code: str
    county_code: str
    limits: ContactLimits
    model: solver.CostModel
    rebalance: bool
    village_ids: NDArray[np.int64]
    households: dict[str, NDArray[Any]]  # queries.HOUSEHOLD_FIELDS, sorted by village
    members: dict[str, NDArray[Any]]  # queries.MEMBER_FIELDS, sorted by village
    problems: list[solver.VillageProblem]
    # Per village: the households in its problem and the members they index.
    problem_households: list[NDArray[np.int64]]  # row numbers into ``households``
    problem_members: list[NDArray[np.int64]]  # row numbers into ``members``
    kept: NDArray[np.int64]  # rows of households keeping their primary contact
    stale: NDArray[np.int64]  # rows of households whose primary contact no longer holds


@dataclass(eq=False)
class Plan:
    unit_code: str
    mode: str
    rebalance: bool
    applied: bool = False
    batch_id: uuid.UUID | None = None
    villages: int = 0
    households: int = 0
    kept: int = 0
    # proposed pairs
    pair_household: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    pair_member: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    pair_village: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    pair_distance: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    pair_previous: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    # households that stay without a primary contact, and why
    uncovered_household: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    uncovered_reason: list[str] = field(default_factory=list)
    # assignments to end: (contact id, household id, member id, reason)
    ended: list[tuple[int, int, int, str]] = field(default_factory=list)
    # loads of every member considered
    load_member: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    load_kept: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    load_proposed: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    load_normal: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    load_capacity: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    objective_m: float = 0.0
    solutions: list[solver.VillageSolution] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_distance_m(self) -> float:
        return float(self.pair_distance.sum())


def cost_model(
    limits: ContactLimits, *, same_grid: bool, same_hamlet: bool, balance: bool, rebalance: bool
) -> solver.CostModel:
    return solver.CostModel(
        grid_penalty_m=limits.grid_penalty_m if same_grid else 0.0,
        hamlet_penalty_m=limits.hamlet_penalty_m if same_hamlet else 0.0,
        overload_penalty_m=limits.overload_penalty_m if balance else 0.0,
        max_distance_m=limits.max_distance_m,
        keep_bonus_m=limits.keep_bonus_m if rebalance else 0.0,
    )


MEMBER_HOME_HAMLET_M = 50.0  # a member living this close to a household belongs to its hamlet


def read_unit(
    session: Session,
    scope: Scope,
    *,
    unit_code: str,
    rebalance: bool = False,
    same_grid: bool = True,
    same_hamlet: bool = True,
    balance: bool = True,
    lock: bool = False,
) -> UnitProblem:
    """Read a unit's households and eligible members from PostGIS and build one solver problem
    per village. ``lock``: hold the members' rows until the transaction ends (apply)."""
    from scipy.spatial import cKDTree

    unit = _unit(session, scope, unit_code)
    if scope.grid_bound:
        raise NotFound(f"行政单位 {unit_code} ")
    limits = limits_for(unit.county_code)
    model = cost_model(
        limits, same_grid=same_grid, same_hamlet=same_hamlet, balance=balance, rebalance=rebalance
    )
    villages = np.asarray(_villages(session, scope, unit), dtype=np.int64)
    params = {"villages": villages.tolist(), **queries.limit_params(limits)}
    # The planner's estimate for these reads is huge (correlated sub-plans it never runs), so it
    # would spend a second JIT-compiling a query that runs in a quarter of that.
    session.execute(text("SET LOCAL jit = off"))
    if lock:
        session.execute(
            text(
                "SELECT id FROM party_members WHERE village_id = ANY(:villages) "
                "ORDER BY id FOR UPDATE"
            ),
            params,
        )
    hh = queries.copy_columns(session, queries.HOUSEHOLD_INPUT, params, queries.HOUSEHOLD_FIELDS)
    mm = queries.copy_columns(session, queries.MEMBER_INPUT, params, queries.MEMBER_FIELDS)

    has_contact = hh["contact_id"] > 0
    valid = has_contact & hh["contact_valid"]
    stale = np.flatnonzero(has_contact & ~hh["contact_valid"])
    kept = np.zeros(0, dtype=np.int64) if rebalance else np.flatnonzero(valid)
    todo = np.ones(len(hh["id"]), dtype=bool)
    todo[kept] = False

    # Members' loads: what they keep. Re-planned households (rebalance) free their slot.
    load = mm["load"].copy()
    member_row = {int(m): i for i, m in enumerate(mm["id"].tolist())}
    if rebalance:
        held = hh["member_id"][valid]
        rows = np.asarray([member_row.get(int(m), -1) for m in held.tolist()], dtype=np.int64)
        np.subtract.at(load, rows[rows >= 0], 1)
    h_start = np.searchsorted(hh["village_id"], villages)
    h_end = np.searchsorted(hh["village_id"], villages, side="right")
    m_start = np.searchsorted(mm["village_id"], villages)
    m_end = np.searchsorted(mm["village_id"], villages, side="right")

    problems: list[solver.VillageProblem] = []
    problem_hh: list[NDArray[np.int64]] = []
    problem_mm: list[NDArray[np.int64]] = []
    for v in range(len(villages)):
        rows_h = np.arange(h_start[v], h_end[v])
        rows_h = rows_h[todo[rows_h]]
        rows_m = np.arange(m_start[v], m_end[v])
        all_h = np.arange(h_start[v], h_end[v])
        if len(all_h):
            lon0, lat0 = float(hh["lon"][all_h].mean()), float(hh["lat"][all_h].mean())
        elif len(rows_m):
            lon0, lat0 = float(mm["lon"][rows_m].mean()), float(mm["lat"][rows_m].mean())
        else:
            lon0 = lat0 = 0.0
        h_xy = solver.project(hh["lon"][rows_h], hh["lat"][rows_h], lon0, lat0)
        m_xy = solver.project(mm["lon"][rows_m], mm["lat"][rows_m], lon0, lat0)
        # A member's hamlet: the one of the household it lives in (or right next to).
        m_hamlet = np.full(len(rows_m), -1, dtype=np.int64)
        if len(rows_m) and len(all_h):
            all_xy = solver.project(hh["lon"][all_h], hh["lat"][all_h], lon0, lat0)
            dist, idx = cKDTree(all_xy).query(m_xy, k=1)
            near = dist <= MEMBER_HOME_HAMLET_M
            m_hamlet[near] = hh["hamlet"][all_h][idx[near]]
            m_hamlet[m_hamlet == 0] = -1
        current = np.full(len(rows_h), -1, dtype=np.int64)
        if rebalance and len(rows_h):
            local = {int(mm["id"][r]): j for j, r in enumerate(rows_m.tolist())}
            holder = hh["member_id"][rows_h]
            ok = valid[rows_h]
            current = np.asarray(
                [local.get(int(m), -1) if o else -1 for m, o in zip(holder, ok, strict=True)],
                dtype=np.int64,
            )
        problems.append(
            solver.VillageProblem(
                hh_xy=h_xy,
                hh_grid=np.where(hh["grid_id"][rows_h] > 0, hh["grid_id"][rows_h], -2),
                hh_hamlet=np.where(hh["hamlet"][rows_h] > 0, hh["hamlet"][rows_h], -2),
                m_xy=m_xy,
                m_grid=np.where(mm["grid_id"][rows_m] > 0, mm["grid_id"][rows_m], -1),
                m_hamlet=m_hamlet,
                m_load=load[rows_m].astype(np.int64),
                m_normal=mm["normal"][rows_m].astype(np.int64),
                m_capacity=mm["capacity"][rows_m].astype(np.int64),
                hh_current=current,
            )
        )
        problem_hh.append(rows_h)
        problem_mm.append(rows_m)
    return UnitProblem(
        unit_code=unit.code,
        county_code=unit.county_code,
        limits=limits,
        model=model,
        rebalance=rebalance,
        village_ids=villages,
        households=hh,
        members=mm,
        problems=problems,
        problem_households=problem_hh,
        problem_members=problem_mm,
        kept=kept,
        stale=stale,
    )


def build_plan(
    unit: UnitProblem, solutions: Sequence[solver.VillageSolution], *, mode: str
) -> Plan:
    """Turn per-village solutions into the plan: pairs, loads, holes and what must end."""
    hh, mm = unit.households, unit.members
    plan = Plan(unit_code=unit.unit_code, mode=mode, rebalance=unit.rebalance)
    plan.villages = len(unit.village_ids)
    plan.households = len(hh["id"])
    plan.solutions = list(solutions)
    rows_h = unit.problem_households
    # solver member indices → row numbers of ``members``
    chosen = [
        np.where(s.member >= 0, rm[np.maximum(s.member, 0)], -1)
        if len(rm)
        else np.full(len(s.member), -1, dtype=np.int64)
        for s, rm in zip(solutions, unit.problem_members, strict=True)
    ]
    h_rows = np.concatenate(rows_h) if rows_h else np.zeros(0, np.int64)
    m_rows = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    dist = np.concatenate([s.distance_m for s in solutions]) if solutions else np.zeros(0)
    reasons = np.concatenate([s.reason for s in solutions]) if solutions else np.zeros(0, np.int8)
    plan.objective_m = float(sum(s.objective_m for s in solutions))

    covered = m_rows >= 0
    new_member = np.where(covered, mm["id"][np.maximum(m_rows, 0)], 0)
    previous = np.where(hh["contact_valid"][h_rows], hh["member_id"][h_rows], 0)
    changed = covered & (new_member != previous)
    plan.pair_household = hh["id"][h_rows[changed]]
    plan.pair_member = new_member[changed]
    plan.pair_village = hh["village_id"][h_rows[changed]]
    plan.pair_distance = dist[changed]
    plan.pair_previous = previous[changed]
    plan.kept = len(unit.kept) + int((covered & ~changed).sum())
    plan.uncovered_household = hh["id"][h_rows[~covered]]
    plan.uncovered_reason = [solver.REASON_CODES[int(r)] for r in reasons[~covered]]

    ended: list[tuple[int, int, int, str]] = []
    for r in unit.stale.tolist():
        ended.append(
            (int(hh["contact_id"][r]), int(hh["id"][r]), int(hh["member_id"][r]), "invalid")
        )
    moved = h_rows[(previous != 0) & (new_member != previous)]
    for r in moved.tolist():
        ended.append(
            (int(hh["contact_id"][r]), int(hh["id"][r]), int(hh["member_id"][r]), "rebalance")
        )
    plan.ended = sorted(ended)

    proposed = np.zeros(len(mm["id"]), dtype=np.int64)
    np.add.at(proposed, m_rows[changed], 1)
    kept_load = np.concatenate([p.m_load for p in unit.problems]) if unit.problems else proposed
    kept_rows = np.concatenate(unit.problem_members) if unit.problem_members else np.zeros(0, int)
    load_kept = np.zeros(len(mm["id"]), dtype=np.int64)
    load_kept[kept_rows] = kept_load
    # unchanged pairs of a rebalance stay with their member: count them as kept
    np.add.at(load_kept, m_rows[covered & ~changed], 1)
    plan.load_member = mm["id"]
    plan.load_kept = load_kept
    plan.load_proposed = proposed
    plan.load_normal = mm["normal"].astype(np.int64)
    plan.load_capacity = mm["capacity"].astype(np.int64)
    return plan


def auto_assign(
    session: Session,
    scope: Scope,
    *,
    unit_code: str,
    mode: str = "dry_run",
    rebalance: bool = False,
    same_grid: bool = True,
    same_hamlet: bool = True,
    balance: bool = True,
    progress: Progress | None = None,
    on: date | None = None,
) -> Plan:
    """Plan (and with ``mode="apply"`` write, all or nothing) the primary contacts of every
    household of a village, township or county that has none, or of all of them (rebalance).

    ``on``: the day the applied plan takes effect (default today; a back-dated plan, as a
    single assignment's ``valid_from`` may be, never one in the future)."""
    report = progress or (lambda stage, done, total: None)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    report("read", 0, 1)
    unit = read_unit(
        session,
        scope,
        unit_code=unit_code,
        rebalance=rebalance,
        same_grid=same_grid,
        same_hamlet=same_hamlet,
        balance=balance,
        lock=mode == "apply",
    )
    report("read", 1, 1)
    seconds["read"] = time.perf_counter() - start
    start = time.perf_counter()
    solutions = solver.solve_villages(
        unit.problems, unit.model, lambda done, total: report("solve", done, total)
    )
    seconds["solve"] = time.perf_counter() - start
    start = time.perf_counter()
    plan = build_plan(unit, solutions, mode=mode)
    seconds["plan"] = time.perf_counter() - start
    if mode == "apply":
        start = time.perf_counter()
        report("write", 0, 1)
        apply_plan(session, scope, plan, county_code=unit.county_code, on=on)
        report("write", 1, 1)
        seconds["write"] = time.perf_counter() - start
    plan.seconds = {k: round(v, 3) for k, v in seconds.items()}
    return plan


def apply_plan(
    session: Session, scope: Scope, plan: Plan, *, county_code: str, on: date | None = None
) -> None:
    """End what the plan ends and insert its pairs: two statements in one transaction, dated
    ``on`` (default today)."""
    batch = uuid.uuid4()
    if on is None:
        on = today()
    elif on > today():
        raise RuleViolation([FieldError(["on"], "生效日期不能晚于今天", "valid_from_in_future")])
    try:
        with session.begin_nested():
            if plan.ended:
                ids, _, _, reasons = zip(*plan.ended, strict=True)
                result = session.execute(
                    text(
                        "UPDATE contacts c SET valid_to = GREATEST(:on, c.valid_from), "
                        "ended_reason = u.reason, ended_by = :user, updated_at = now(), "
                        "ended_note = :note "
                        "FROM unnest(CAST(:ids AS bigint[]), CAST(:reasons AS text[])) "
                        "AS u(id, reason) WHERE c.id = u.id AND c.valid_to IS NULL"
                    ),
                    {
                        "ids": list(ids),
                        "reasons": list(reasons),
                        "on": on,
                        "user": scope.user_id or None,
                        "note": f"自动分配 {batch}",
                    },
                )
                if result.rowcount != len(ids):
                    raise Conflict(
                        "方案生成后联系关系已被他人修改，请重新生成方案", code="plan_stale"
                    )
            if len(plan.pair_household):
                session.execute(
                    text(
                        "INSERT INTO contacts (county_code, village_id, member_id, household_id, "
                        "role, valid_from, source, batch_id, created_by) "
                        "SELECT :county, u.village_id, u.member_id, u.household_id, 'primary', "
                        ":on, 'auto', :batch, :user "
                        "FROM unnest(CAST(:villages AS bigint[]), CAST(:members AS bigint[]), "
                        "CAST(:households AS bigint[])) AS u(village_id, member_id, household_id)"
                    ),
                    {
                        "county": county_code,
                        "villages": plan.pair_village.tolist(),
                        "members": plan.pair_member.tolist(),
                        "households": plan.pair_household.tolist(),
                        "on": on,
                        "batch": batch,
                        "user": scope.user_id or None,
                    },
                )
    except IntegrityError as exc:
        raise Conflict(
            "方案写入时与他人刚做的修改冲突，未写入任何内容；请重新生成方案",
            code="plan_stale",
            constraint=_constraint(exc),
        ) from exc
    if len(plan.pair_household) > 10_000:
        # Fresh statistics for the next read: the planner must not keep believing it is empty.
        session.execute(text("ANALYZE contacts"))
    plan.applied = True
    plan.batch_id = batch
    audit.record(
        session,
        scope,
        action="auto_assign",
        entity="contact_batch",
        entity_id=batch,
        county_code=county_code,
        after={
            "unit_code": plan.unit_code,
            "rebalance": plan.rebalance,
            "proposed": len(plan.pair_household),
            "ended": len(plan.ended),
            "uncovered": len(plan.uncovered_household),
        },
    )


def plan_body(plan: Plan, *, include_pairs: bool = True) -> dict[str, Any]:
    """The plan as the JSON document of ``AutoAssignPlan`` (built from arrays, no models)."""
    used = plan.load_proposed + plan.load_kept
    considered = (plan.load_proposed > 0) | (plan.load_kept > 0)
    proposed = len(plan.pair_household)
    body: dict[str, Any] = {
        "unit_code": plan.unit_code,
        "mode": plan.mode,
        "applied": plan.applied,
        "batch_id": str(plan.batch_id) if plan.batch_id else None,
        "summary": {
            "villages": plan.villages,
            "households": plan.households,
            "kept": plan.kept,
            "proposed": proposed,
            "uncovered": len(plan.uncovered_household),
            "ended": len(plan.ended),
            "total_distance_m": round(plan.total_distance_m, 1),
            "avg_distance_m": round(plan.total_distance_m / proposed, 1) if proposed else None,
            "members_used": int(considered.sum()),
            "members_over_normal": int((used > plan.load_normal).sum()),
            "max_load": int(used.max()) if len(used) else 0,
        },
        "pairs": None,
        "loads": None,
        "uncovered": [
            {"household_id": h, "reason": r, "message": UNCOVERED_MESSAGES[r]}
            for h, r in zip(plan.uncovered_household.tolist(), plan.uncovered_reason, strict=True)
        ],
        "ended": [
            {"contact_id": c, "household_id": h, "member_id": m, "reason": r}
            for c, h, m, r in plan.ended
        ],
        "seconds": plan.seconds,
    }
    if include_pairs:
        body["pairs"] = [
            {
                "household_id": h,
                "member_id": m,
                "distance_m": round(d, 1),
                "previous_member_id": p or None,
            }
            for h, m, d, p in zip(
                plan.pair_household.tolist(),
                plan.pair_member.tolist(),
                plan.pair_distance.tolist(),
                plan.pair_previous.tolist(),
                strict=True,
            )
        ]
        sel = np.flatnonzero(considered)
        body["loads"] = [
            {
                "member_id": m,
                "kept": k,
                "proposed": p,
                "total": k + p,
                "normal_max": n,
                "capacity": c,
            }
            for m, k, p, n, c in zip(
                plan.load_member[sel].tolist(),
                plan.load_kept[sel].tolist(),
                plan.load_proposed[sel].tolist(),
                plan.load_normal[sel].tolist(),
                plan.load_capacity[sel].tolist(),
                strict=True,
            )
        ]
    return body


def auto_assign_json(session: Session, scope: Scope, data: AutoAssign) -> bytes:
    """``auto_assign`` for the API: the plan rendered straight from its arrays."""
    plan = auto_assign(
        session,
        scope,
        unit_code=data.unit_code,
        mode=data.mode,
        rebalance=data.rebalance,
        same_grid=data.preferences.same_grid,
        same_hamlet=data.preferences.same_hamlet,
        balance=data.preferences.balance,
    )
    return wire.dumps(plan_body(plan, include_pairs=data.include_pairs))
