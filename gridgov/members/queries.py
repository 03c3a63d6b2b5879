"""SQL of the Party member reads, composed with the keyset kit."""

from __future__ import annotations

from typing import Unpack

from sqlalchemy.orm import Session

from gridgov import listing as kit
from gridgov import privacy
from gridgov.auth.scope import Scope
from gridgov.listing import Clause, PageResult

MEMBER_COLUMNS = """
    m.id, m.county_code, m.party_org_id, o.name AS party_org_name, v.code AS village_code,
    v.name AS village_name, g.code AS grid_code, m.name, m.gender, m.phone, m.id_number, m.status,
    m.flowing, m.is_hub, m.capacity, m.joined_year, m.left_at, m.left_reason, m.version
"""
MEMBER_FROM = """
    FROM party_members m JOIN party_orgs o ON o.id = m.party_org_id
    JOIN admin_units v ON v.id = m.village_id LEFT JOIN grids g ON g.id = m.grid_id
"""
MEMBERS = kit.Listing(
    MEMBER_COLUMNS,
    MEMBER_FROM,
    scope=("member", "m"),
    keyset=kit.by_id("m"),
    geometry="m.geom",
    unit_code="v.code",
    grid_code="g.code",
    personal="members",
)


class MemberQuery(kit.MapQuery, kit.PlaceFilter, kit.PersonalQuery):
    status: str | None
    flowing: bool | None
    q: str | None
    include_left: bool


def members_page(session: Session, scope: Scope, **query: Unpack[MemberQuery]) -> PageResult:
    q = query["q"]
    names = privacy.may_read(scope)
    return MEMBERS.page(
        session,
        scope,
        query,
        kit.when(not query["include_left"], "m.left_at IS NULL"),
        kit.equal("m.status", "status", query["status"]),
        kit.equal("m.flowing", "flowing", query["flowing"]),
        # Names are personal information: without pii:read a name search finds nothing.
        Clause("m.name LIKE :q" if names else "false", {"q": f"%{q}%"}) if q else None,
    )
