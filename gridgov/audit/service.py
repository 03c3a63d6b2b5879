"""Append to the audit log: who, when, what, before/after. Called by every write."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, String, cast, false, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from gridgov import wire
from gridgov.audit.models import AuditEntry
from gridgov.audit.schemas import AuditPage, AuditRead
from gridgov.auth.scope import Scope
from gridgov.logging import request_id_var

# Never copied into the audit log in clear.
_SECRET_FIELDS = {"password_hash"}
_GEOMETRY_FIELDS = {"geom", "geom_3857"}


def snapshot(obj: Any) -> dict[str, Any]:
    """A JSON-able picture of an ORM row's columns (geometry as EWKB hex, secrets left out)."""
    out: dict[str, Any] = {}
    for attr in sa_inspect(obj).mapper.column_attrs:
        key = attr.key
        if key in _SECRET_FIELDS or key == "geom_3857":
            continue
        out[key] = _jsonable(getattr(obj, key), geometry=key in _GEOMETRY_FIELDS)
    return out


def _jsonable(value: Any, *, geometry: bool = False) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return wire.time_text(value)  # as every time on the wire (RFC 3339 UTC Z)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if geometry or hasattr(value, "desc"):
        desc = getattr(value, "desc", None)
        return str(desc) if desc is not None else str(value)
    return str(value)


def record(
    session: Session,
    scope: Scope | None,
    *,
    action: str,
    entity: str,
    entity_id: Any = None,
    county_code: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            user_id=scope.user_id if scope and scope.user_id else None,
            username=scope.username if scope else "system",
            role=scope.role if scope else None,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            county_code=county_code or (scope.county_code if scope else None),
            before=before,
            after=after,
            request_id=request_id_var.get(),
        )
    )


def list_(
    session: Session,
    scope: Scope,
    *,
    entity: str | None,
    entity_id: str | None,
    since: datetime | None,
    limit: int,
    cursor: str | None,
    pii: bool = False,
) -> AuditPage:
    """Newest first, keyset on id; a reader sees the entries of its own subtree: the whole
    county's log when bound to the county, else the entries about entities in its subtree and
    those written by its subtree's users (``_in_subtree``).

    The log stores before/after in clear; what a reader sees of the personal data in them
    follows the one rule (``gridgov.privacy``): masked unless ``pii=true`` for a role allowed
    it, and such a read is itself recorded.
    """
    from gridgov import privacy
    from gridgov.pagination import decode_cursor, encode_cursor

    shown = privacy.clear(scope, pii)

    query = select(AuditEntry).where(AuditEntry.county_code == scope.county_code)
    if not _county_wide(session, scope):
        query = query.where(_in_subtree(scope))
    if entity:
        query = query.where(AuditEntry.entity == entity)
    if entity_id:
        query = query.where(AuditEntry.entity_id == entity_id)
    if since:
        query = query.where(AuditEntry.at >= since)
    if cursor:
        (last_id,) = decode_cursor(cursor, 1)
        query = query.where(AuditEntry.id < last_id)
    rows = list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    items = [AuditRead.model_validate(r) for r in rows]
    if shown:
        privacy.record_read(session, scope, "audit_log", f"list:{len(items)}")
    else:
        for item in items:
            item.before = privacy.audit_view(item.entity, item.before)
            item.after = privacy.audit_view(item.entity, item.after)
    return AuditPage(items=items, next_cursor=encode_cursor(rows[-1].id) if more else None)


def _entity_ids(scope: Scope) -> dict[str, Any]:
    """Entity names of the log → the ids (as text, as stored) of those in ``scope``, by the
    model's own scope rule (``Scope.where``). Read entries use the same names
    (``household_file`` is a household's)."""
    from gridgov.contacts.models import Contact
    from gridgov.hierarchy.models import Grid, PartyOrg
    from gridgov.households.models import Household
    from gridgov.issues.models import Issue
    from gridgov.members.models import PartyMember
    from gridgov.visits.models import Visit

    def ids(model: Any) -> Any:
        return select(cast(model.id, String)).where(scope.where(model))

    households = ids(Household)
    return {
        "household": households,
        "household_file": households,
        "party_member": ids(PartyMember),
        "party_org": ids(PartyOrg),
        "grid": ids(Grid),
        "issue": ids(Issue),
        "visit": ids(Visit),
        "contact": select(cast(Contact.id, String)).where(
            Contact.village_id.in_(scope.village_ids) if scope.village_ids else false()
        ),
    }


def _in_subtree(scope: Scope) -> ColumnElement[bool]:
    """Entries about an entity in ``scope`` (a unit by code, a user, an API key by its user, a
    household, grid, issue …) or written by one of its users. A retired unit's own entries
    stay with the readers above it (its code is no longer in any current subtree)."""
    from gridgov.auth.models import ApiKey, User
    from gridgov.hierarchy.models import AdminUnit

    users = select(User.id).where(scope.where(User))
    rules = [
        AuditEntry.user_id.in_(users),
        (AuditEntry.entity == "admin_unit")
        & AuditEntry.entity_id.in_(select(AdminUnit.code).where(scope.where(AdminUnit))),
        (AuditEntry.entity == "user")
        & AuditEntry.entity_id.in_(select(cast(User.id, String)).where(scope.where(User))),
        (AuditEntry.entity == "api_key")
        & AuditEntry.entity_id.in_(
            select(cast(ApiKey.id, String)).where(ApiKey.user_id.in_(users))
        ),
    ]
    for entity, ids in _entity_ids(scope).items():
        rules.append((AuditEntry.entity == entity) & AuditEntry.entity_id.in_(ids))
    return or_(*rules)


def _county_wide(session: Session, scope: Scope) -> bool:
    from gridgov.hierarchy.models import AdminUnit

    if scope.grid_bound or scope.unit_id is None:
        return False
    level = session.scalar(select(AdminUnit.level).where(AdminUnit.id == scope.unit_id))
    return level == "county"
