"""The one personal-data rule (个人信息保护法, DESIGN §8).

Names, phone numbers and ID numbers are personal information. Every read that can carry them —
households, Party members, Party organizations' secretaries, grid chiefs, contacts, the audit
log's before/after, sync pages, due lists, exports — asks this module which of them the caller
sees in clear, masks the rest (``王**``, ``139****5678``, ``110105********002X``) and leaves one
audit entry for every read that showed any of them in clear:

* In clear only for a role with ``pii:read`` **and** only when the request says ``pii=true``
  (``requested``); asking without the permission is 403 ``pii_forbidden``, never a silent mask.
* The grid member's offline rule (``offline_clear``): a grid member's phone works offline with
  the households it is responsible for — those of the grid it is bound to. Its sync pages and
  due lists carry their head's name and phone in clear without ``pii=true``; each such page or
  list is one audit entry with counts. Everything else it reads follows the first rule.
* Addresses and locations are not masked inside the caller's scope (the point is on the map
  anyway); public outputs (Open311, public tiles) never carry household identity at all.

Data is stored in clear (the audit log too); masking happens on the way out, here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from gridgov import trail
from gridgov.errors import Forbidden
from gridgov.permissions import Perm, Role
from gridgov.scoping import Scope

# -- masks ----------------------------------------------------------------------------------------


def mask_name(value: str | None) -> str | None:
    if not value:
        return value
    return value[0] + "*" * (len(value) - 1) if len(value) > 1 else "*"


def mask_phone(value: str | None) -> str | None:
    if not value:
        return value
    return value[:3] + "****" + value[-4:] if len(value) >= 11 else value[:2] + "****"


def mask_id_number(value: str | None) -> str | None:
    if not value:
        return value
    return value[:6] + "********" + value[-4:]


MASKS: dict[str, Callable[[str | None], str | None]] = {
    "name": mask_name,
    "phone": mask_phone,
    "id_number": mask_id_number,
}

# Per resource, the personal fields it may carry and what kind of value each is. The keys are
# the audit log's entity names where there is one (its before/after are column snapshots).
PERSONAL_FIELDS: dict[str, dict[str, str]] = {
    "household": {"head_name": "name", "phone": "phone", "id_number": "id_number"},
    "party_member": {"name": "name", "phone": "phone", "id_number": "id_number"},
    "party_org": {"secretary_name": "name", "secretary_phone": "phone"},
    "grid": {"chief_name": "name"},
    "contact": {"household_head": "name", "member_name": "name"},
}
# Field names that mean personal data whatever the entity (``name`` alone does not: grids and
# units have names too). The audit view masks these at any depth of any entry.
_ANY_ENTITY: dict[str, str] = {
    key: kind
    for fields in PERSONAL_FIELDS.values()
    for key, kind in fields.items()
    if key != "name"
}


# -- who sees what --------------------------------------------------------------------------------


def may_read(scope: Scope) -> bool:
    """Whether the caller's role may ever see personal data in clear."""
    return scope.can(Perm.pii_read)


def clear(scope: Scope, requested: bool, *, detail: str = "您的角色无权查看个人信息") -> bool:
    """In clear only if asked for (``pii=true``) and the role allows it; asking without → 403."""
    if requested and not may_read(scope):
        raise Forbidden(detail, code="pii_forbidden")
    return requested


def offline_clear(scope: Scope) -> bool:
    """The grid member's rule: its own grid's households in clear on the phone (sync, due)."""
    return scope.role == Role.grid_member and scope.grid_bound and may_read(scope)


def mask(resource: str, row: dict[str, Any], *, shown: bool = False) -> dict[str, Any]:
    """``row`` with the resource's personal fields masked (in place), unless ``shown``."""
    if not shown:
        for key, kind in PERSONAL_FIELDS[resource].items():
            if key in row:
                row[key] = MASKS[kind](row[key])
    return row


def has_personal_data(resource: str, row: Mapping[str, Any]) -> bool:
    return any(row.get(key) for key in PERSONAL_FIELDS[resource])


def audit_view(entity: str, data: Any) -> Any:
    """A masked copy of an audit entry's before/after (a column snapshot of ``entity``)."""
    fields = PERSONAL_FIELDS.get(entity, {})
    return _masked_copy(data, {**_ANY_ENTITY, **fields})


def _masked_copy(data: Any, fields: dict[str, str]) -> Any:
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            kind = fields.get(key)
            if kind is not None and (value is None or isinstance(value, str)):
                out[key] = MASKS[kind](value)
            else:
                out[key] = _masked_copy(value, fields)
        return out
    if isinstance(data, list):
        return [_masked_copy(v, fields) for v in data]
    return data


# -- public outputs -------------------------------------------------------------------------------

_M_PER_DEGREE = 111_320.0


def coarse_position(lon: float, lat: float, metres: float) -> tuple[float, float] | None:
    """The centre of the ``metres`` square (on the ground) holding (lon, lat); None: withheld.

    Deterministic, not jittered: asking again, or for other issues nearby, tells nothing more.
    """
    if metres <= 0:
        return None
    step_lat = metres / _M_PER_DEGREE
    centre_lat = (math.floor(lat / step_lat) + 0.5) * step_lat
    step_lon = metres / (_M_PER_DEGREE * math.cos(math.radians(centre_lat)))
    centre_lon = (math.floor(lon / step_lon) + 0.5) * step_lon
    return round(centre_lon, 6), round(centre_lat, 6)


def record_read(
    session: Session,
    scope: Scope,
    entity: str,
    entity_id: Any,
    counts: dict[str, int] | None = None,
) -> None:
    """The audit entry of a read that showed personal data in clear (one per request).

    Through ``gridgov.trail``: this module sits below every domain, the audit log included."""
    trail.record(
        session, scope, action="read_pii", entity=entity, entity_id=entity_id, after=counts
    )
