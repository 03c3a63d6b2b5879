"""SQL of the household reads, composed with the keyset kit."""

from __future__ import annotations

from typing import Unpack

from sqlalchemy.orm import Session

from gridgov import listing as kit
from gridgov import privacy
from gridgov.auth.scope import Scope
from gridgov.listing import Clause, PageResult

HOUSEHOLD_COLUMNS = """
    h.id, h.external_id, h.county_code, v.code AS village_code, v.name AS village_name,
    g.code AS grid_code, g.name AS grid_name, h.head_name, h.phone, h.id_number, h.address,
    h.hamlet, h.size, h.tags, h.flags, h.removed_at, h.version, h.updated_at
"""
HOUSEHOLD_FROM = """
    FROM households h JOIN admin_units v ON v.id = h.village_id
    LEFT JOIN grids g ON g.id = h.grid_id
"""
HOUSEHOLDS = kit.Listing(
    HOUSEHOLD_COLUMNS,
    HOUSEHOLD_FROM,
    scope=("household", "h"),
    keyset=kit.by_id("h"),
    geometry="h.geom",
    unit_code="v.code",
    grid_code="g.code",
    personal="households",
)


class HouseholdQuery(kit.MapQuery, kit.PlaceFilter, kit.PersonalQuery):
    tag: str | None
    flag: str | None
    q: str | None
    include_removed: bool


def households_page(session: Session, scope: Scope, **query: Unpack[HouseholdQuery]) -> PageResult:
    q = query["q"]
    # Names are personal information: a role that may not read them may not search by them.
    name = "h.head_name LIKE :q OR " if privacy.may_read(scope) else ""
    search = f"({name}h.address LIKE :q OR h.external_id = :qe)"
    return HOUSEHOLDS.page(
        session,
        scope,
        query,
        kit.when(not query["include_removed"], "h.removed_at IS NULL"),
        kit.has_label("h.tags", "tag", query["tag"]),
        kit.has_label("h.flags", "flag", query["flag"]),
        Clause(search, {"q": f"%{q}%", "qe": q}) if q else None,
    )
