"""Append to the audit log: who, when, what, before/after. Called by every write."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select, text
from sqlalchemy.orm import Session

from gridgov import events, privacy, scoping, trail
from gridgov.audit.models import AuditEntry
from gridgov.audit.schemas import AuditPage, AuditRead
from gridgov.logging import request_id_var
from gridgov.pagination import decode_cursor, encode_cursor
from gridgov.scoping import Scope
from gridgov.trail import snapshot

__all__ = ["list_", "record", "snapshot"]


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


@events.subscribe(trail.Audited)
def _on_audited(session: Session, event: trail.Audited) -> None:
    """An entry from a module below the audit log (``gridgov.trail``: auth, the privacy rule)."""
    record(
        session,
        event.scope,
        action=event.action,
        entity=event.entity,
        entity_id=event.entity_id,
        county_code=event.county_code,
        before=event.before,
        after=event.after,
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
    shown = privacy.shown(scope, "audit_log", pii)

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


def _in_subtree(scope: Scope) -> ColumnElement[bool]:
    """Entries about an entity in ``scope`` (a unit by code, a user, an API key by its user, a
    household, grid, issue …) or written by one of its users. A retired unit's own entries
    stay with the readers above it (its code is no longer in any current subtree).

    Which entity names belong to which table, and how that table ties to the hierarchy, is each
    model's own declaration (``__scope__``, ``gridgov.scoping``): no domain is named here."""
    users = scope.ids("user")
    rules = [AuditEntry.user_id.in_(users)]
    for kind, declared in scoping.declarations().items():
        if declared.audit:
            ids = scope.audited_ids(kind)
            rules.append(AuditEntry.entity.in_(declared.audit) & AuditEntry.entity_id.in_(ids))
    return or_(*rules)


def _county_wide(session: Session, scope: Scope) -> bool:
    if scope.grid_bound or scope.unit_id is None:
        return False
    level = session.scalar(
        text("SELECT level FROM admin_units WHERE id = :id"), {"id": scope.unit_id}
    )
    return level == "county"
