"""The audit trail's port for the modules below the audit log (``gridgov.auth``, and the
personal-data rule ``gridgov.privacy``): they record through an ``Audited`` event that the
audit log subscribes to (``gridgov.audit.service``), so that they do not import it. Every domain
above the audit log calls ``gridgov.audit.service.record`` directly; the entry is the same.

``snapshot`` (a JSON-able picture of an ORM row) lives here for the same reason; the audit
service re-exports it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from gridgov import events, wire
from gridgov.events import Event
from gridgov.scoping import Scope

# Never copied into the audit log in clear.
_SECRET_FIELDS = {"password_hash"}
_GEOMETRY_FIELDS = {"geom", "geom_3857"}


@dataclass(frozen=True)
class Audited(Event):
    """One audit log entry to append (``gridgov.audit.service.record``'s arguments)."""

    scope: Scope | None
    action: str
    entity: str
    entity_id: Any = None
    county_code: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


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
    events.publish(session, Audited(scope, action, entity, entity_id, county_code, before, after))


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
