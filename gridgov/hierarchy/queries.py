"""SQL of the unit, Party organization and grid reads, composed with the keyset kit."""

from __future__ import annotations

from typing import NotRequired, Unpack

from sqlalchemy.orm import Session

from gridgov import listing as kit
from gridgov.auth.scope import Scope
from gridgov.listing import Clause, PageResult

# -- units --------------------------------------------------------------------------------------

UNIT_COLUMNS = """
    u.id, u.code, u.name, u.level, p.code AS parent_code, u.county_code, u.valid_from,
    u.valid_to, u.version, u.updated_at, u.geom IS NOT NULL AS has_boundary, u.code_edition,
    (SELECT s.code FROM admin_units s WHERE s.id = u.successor_id) AS successor_code,
    round((ST_Area(u.geom::geography) / 1e6)::numeric, 3)::float AS area_km2
"""
UNIT_FROM = "FROM admin_units u LEFT JOIN admin_units p ON p.id = u.parent_id"
UNITS = kit.Listing(UNIT_COLUMNS, UNIT_FROM, ("unit", "u"), kit.by_id("u"), geometry="u.geom")


class UnitQuery(kit.MapQuery):
    level: str | None
    parent_code: str | None
    q: str | None
    include_retired: bool
    has_boundary: NotRequired[bool | None]


def name_or_code(name: str, code: str, q: str | None) -> Clause | None:
    """A search box: a name containing ``q`` or a code starting with it."""
    if not q:
        return None
    return Clause(f"({name} ILIKE :q OR {code} LIKE :qc)", {"q": f"%{q}%", "qc": f"{q}%"})


def units_page(session: Session, scope: Scope, **query: Unpack[UnitQuery]) -> PageResult:
    in_scope = None
    if query["include_retired"]:
        # A retired unit has left the subtree (which holds current units only); it is still
        # the caller's history when its parent is in scope.
        retired = kit.and_(Clause("u.valid_to IS NOT NULL"), kit.scope_clause(scope, "unit", "p"))
        in_scope = kit.or_(kit.scope_clause(scope, "unit", "u"), retired)
    has_boundary = query.get("has_boundary")
    return UNITS.page(
        session,
        scope,
        query,
        kit.when(not query["include_retired"], "u.valid_to IS NULL"),
        kit.equal("u.level", "level", query["level"]),
        None if has_boundary is None else Clause(f"u.geom IS {'NOT ' if has_boundary else ''}NULL"),
        kit.equal("p.code", "parent_code", query["parent_code"]),
        name_or_code("u.name", "u.code", query["q"]),
        in_scope=in_scope,
    )


# -- party organizations --------------------------------------------------------------------------

ORG_COLUMNS = """
    o.id, u.code AS unit_code, u.name AS unit_name, o.name, o.kind, o.secretary_name,
    o.secretary_phone, o.version,
    (SELECT count(*) FROM party_members m WHERE m.party_org_id = o.id
      AND m.left_at IS NULL)::int AS member_count
"""
ORG_FROM = "FROM party_orgs o JOIN admin_units u ON u.id = o.unit_id"
PARTY_ORGS = kit.Listing(
    ORG_COLUMNS, ORG_FROM, ("unit", "u"), kit.by_id("o"), unit_code="u.code", personal="party_orgs"
)


class PartyOrgQuery(kit.PageQuery, kit.UnitFilter, kit.PersonalQuery):
    q: str | None


def party_orgs_page(session: Session, scope: Scope, **query: Unpack[PartyOrgQuery]) -> PageResult:
    q = query["q"]
    return PARTY_ORGS.page(
        session,
        scope,
        query,
        Clause("o.name ILIKE :q", {"q": f"%{q}%"}) if q else None,
    )


# -- grids --------------------------------------------------------------------------------------

GRID_COLUMNS = """
    g.id, g.code, g.name, g.kind, v.code AS village_code, v.name AS village_name, g.county_code,
    g.chief_member_id, m.name AS chief_name, g.valid_from, g.valid_to, g.version,
    (SELECT count(*) FROM households h WHERE h.grid_id = g.id AND h.removed_at IS NULL)::int
        AS household_count,
    round((ST_Area(g.geom::geography) / 1e6)::numeric, 4)::float AS area_km2
"""
GRID_FROM = """
    FROM grids g JOIN admin_units v ON v.id = g.village_id
    LEFT JOIN party_members m ON m.id = g.chief_member_id
"""
GRIDS = kit.Listing(
    GRID_COLUMNS,
    GRID_FROM,
    ("grid", "g"),
    kit.by_id("g"),
    geometry="g.geom",
    unit_code="g.code",
    personal="grids",
)


class GridQuery(kit.MapQuery, kit.UnitFilter, kit.PersonalQuery):
    q: str | None
    kind: str | None
    include_retired: bool


def grids_page(session: Session, scope: Scope, **query: Unpack[GridQuery]) -> PageResult:
    return GRIDS.page(
        session,
        scope,
        query,
        kit.when(not query["include_retired"], "g.valid_to IS NULL"),
        kit.equal("g.kind", "kind", query["kind"]),
        name_or_code("g.name", "g.code", query["q"]),
    )
