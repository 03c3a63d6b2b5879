"""联系户: assign households to Party members and keep the history (the planner that assigns
whole units at once is ``gridgov.contacts.planner``).

Rules checked at every write (DESIGN §2, issue 3), each a 422 naming the field when broken:
same village (or the member's organization covers the household's village), the member's
capacity, the county's policy for flowing (流动) and probationary (预备) members, nobody who has
left and no household that was removed. One active primary per household is the database's job
(``uq_contacts_active_primary``); a request losing that race gets a 409.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Unpack
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridgov import events, privacy
from gridgov.audit import service as audit
from gridgov.auth.scope import Scope
from gridgov.config import ContactLimits, get_settings
from gridgov.contacts import queries
from gridgov.contacts.models import Contact
from gridgov.contacts.schemas import (
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
from gridgov.households.events import HouseholdMoved, HouseholdRemoved
from gridgov.households.models import Household
from gridgov.listing import PageResult
from gridgov.members.events import MemberLeft
from gridgov.members.models import PartyMember

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROLE_NAMES = {"primary": "主要联系人", "secondary": "协助联系人"}


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
    if privacy.shown(scope, "contacts", pii):
        privacy.record_read(session, scope, "contact", entity_id)


def list_contacts(
    session: Session, scope: Scope, **query: Unpack[queries.ContactQuery]
) -> PageResult:
    """Assignments in the caller's scope (through their households), keyset on id."""
    return queries.contacts_page(session, scope, **query)


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
    return ContactRead(**_mask(queries.CONTACTS.one(session, contact_id), pii))


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
    session: Session, scope: Scope, **query: Unpack[queries.UncoveredQuery]
) -> PageResult:
    """Households on record without an active primary contact."""
    return queries.uncovered_page(session, scope, **query)


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


# Writes below that end contacts (gridgov.events): households and members publish, contacts end.
@events.subscribe(HouseholdMoved)
def _on_household_moved(session: Session, event: HouseholdMoved) -> ReleaseResult:
    # Moved to another village: its contacts there no longer hold.
    return end_for_household(session, event.scope, event.household_id, reason=None)


@events.subscribe(HouseholdRemoved)
def _on_household_removed(session: Session, event: HouseholdRemoved) -> ReleaseResult:
    return end_for_household(
        session, event.scope, event.household_id, reason="household_removed", note=event.reason
    )


@events.subscribe(MemberLeft)
def _on_member_left(session: Session, event: MemberLeft) -> ReleaseResult:
    return end_for_member(
        session, event.scope, event.member_id, reason="member_left", note=event.reason
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
