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

Which paths carry what, and which follow the offline rule, is one table here (``PATHS``);
services ask ``shown(scope, path, pii)``. Phone and ID number formats are checked on the way in
here too (``PhoneIn``, ``IdNumberIn``). Data is stored in clear (the audit log too); masking
happens on the way out, here. A kernel module: it imports no domain (its audit entries go
through ``gridgov.trail``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError
from sqlalchemy.orm import Session

from gridgov import trail
from gridgov.errors import Forbidden
from gridgov.permissions import Perm, Role
from gridgov.scoping import Scope

# -- formats (checked on the way in) -------------------------------------------------------------

_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_LANDLINE = re.compile(r"^0[0-9]{2,3}-?[0-9]{7,8}$")
_ID18 = re.compile(r"^[0-9]{17}[0-9X]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_number_ok(value: str) -> bool:
    """18-character 居民身份证号 with a correct ISO 7064 MOD 11-2 check character."""
    if not _ID18.match(value):
        return False
    total = sum(int(c) * w for c, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17]


def normalise_phone(value: str) -> str:
    return re.sub(r"[\s()（）]", "", value).removeprefix("+86").removeprefix("86-")


def phone_problem(value: str) -> str | None:
    phone = normalise_phone(value)
    if _MOBILE.match(phone) or _LANDLINE.match(phone):
        return None
    return f"联系电话“{value}”格式不正确（应为 11 位手机号或带区号的固定电话）"


def id_number_problem(value: str) -> str | None:
    value = value.strip().upper()
    if not _ID18.match(value):
        return f"身份证号“{value}”应为 18 位（末位可为 X）"
    if not id_number_ok(value):
        return f"身份证号“{value}”校验位不正确"
    return None


def _checked_phone(value: str) -> str:
    if problem := phone_problem(value):
        raise PydanticCustomError("invalid_phone", "{detail}", {"detail": problem})
    return value


def _checked_id_number(value: str) -> str:
    value = value.strip().upper()
    if problem := id_number_problem(value):
        raise PydanticCustomError("invalid_id_number", "{detail}", {"detail": problem})
    return value


# The input types of every schema that takes a phone or an ID number (households, Party
# members): one check, one error code each (``invalid_phone``, ``invalid_id_number``), the same
# messages as the importers'.
PhoneIn = Annotated[str, Field(max_length=20), AfterValidator(_checked_phone)]
IdNumberIn = Annotated[str, Field(max_length=18), AfterValidator(_checked_id_number)]


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


# -- who sees what, per path ----------------------------------------------------------------------


@dataclass(frozen=True)
class Path:
    """What one read path carries of personal data and how it is shown.

    ``resource``: the ``PERSONAL_FIELDS`` key of the rows it carries (``audit_log``: entries of
    any entity, masked by ``audit_view``; None: it never carries any, for anyone);
    ``offline``: the grid member's offline rule applies (``offline_clear``); ``audit``: the
    (action, entity) of the audit entry a read in clear leaves."""

    reads: str  # the routes, as the README's table names them
    resource: str | None
    offline: bool = False
    audit: tuple[str, str] | None = None


def _read_pii(entity: str) -> tuple[str, str]:
    return ("read_pii", entity)


# Every read path that can carry personal data, and those that never do. Services ask
# ``shown(scope, path, pii)``; tests/auth/test_privacy_paths.py checks each of them; README's
# "Personal data" section is this table in words.
PATHS: dict[str, Path] = {
    "households": Path(
        "GET /households, /households/{id}", "household", audit=_read_pii("household")
    ),
    "members": Path("GET /members, /members/{id}", "party_member", audit=_read_pii("party_member")),
    "contacts": Path(
        "GET /contacts, /contacts/{id}, /contacts/households/{id}",
        "contact",
        audit=_read_pii("contact"),
    ),
    "uncovered": Path("GET /contacts/uncovered", "household", audit=_read_pii("household")),
    "party_orgs": Path(
        "GET /party-orgs, /party-orgs/{id}", "party_org", audit=_read_pii("party_org")
    ),
    "grids": Path("GET /grids, /grids/{id}", "grid", audit=_read_pii("grid")),
    "audit_log": Path("GET /audit", "audit_log", audit=_read_pii("audit_log")),
    "sync": Path("GET /sync", "household", offline=True, audit=_read_pii("sync")),
    "due_list": Path("GET /me/due", "household", offline=True, audit=_read_pii("due_list")),
    "exports": Path("GET /exports/households.*", "household", audit=("export", "households")),
    "household_file": Path(
        "GET /households/{id}/file", "household", audit=_read_pii("household_file")
    ),
    "scores": Path(
        "GET /dashboard/{code}/scores?of=member",
        "party_member",
        audit=_read_pii("dashboard_scores"),
    ),
    "ledgers": Path("GET /dashboard/{code}/ledger.xlsx", None),
    "tiles": Path("GET /tiles/…", None),
    "ogc": Path("GET /ogc/…", None),
    "open311": Path("GET /open311/…", None),
}


def shown(scope: Scope, path: str, requested: bool, *, detail: str | None = None) -> bool:
    """Whether this read of ``path`` shows personal data in clear: asked for (``pii=true``) by a
    role allowed it (asking without the permission is 403), or the grid member's offline rule
    where the path follows it. A path that never carries personal data shows none."""
    rule = PATHS[path]
    if rule.resource is None:
        return False
    if clear(scope, requested, **({"detail": detail} if detail else {})):
        return True
    return rule.offline and offline_clear(scope)


def resource_of(path: str) -> str:
    """The ``PERSONAL_FIELDS`` key of the rows a personal read path carries."""
    resource = PATHS[path].resource
    if resource is None:
        raise ValueError(f"read path {path!r} carries no personal data")
    return resource


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
