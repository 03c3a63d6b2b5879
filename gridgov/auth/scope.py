"""The caller's scope: the subtree of the unit or grid a user is bound to (DESIGN §8).

Every read and write starts from ``Scope.where(Model)`` (ORM) or ``Scope.sql(kind, alias)`` (SQL
built reads). ``Scope`` itself, and the rule that turns a table's own declaration
(``__scope__ = scoped_by(…)``) into a filter, live in the kernel module ``gridgov.scoping`` —
below every domain, so that a domain's models declare their tie to the hierarchy without this
module importing them. Here: building a user's scope from the hierarchy's tables.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.auth.models import User
from gridgov.scoping import Scope

__all__ = ["SUBTREE_SQL", "Scope", "scope_for", "system_scope"]

SUBTREE_SQL = text(
    """
    WITH RECURSIVE sub AS (
        SELECT id, level FROM admin_units WHERE id = :root AND valid_to IS NULL
        UNION ALL
        SELECT u.id, u.level FROM admin_units u JOIN sub ON u.parent_id = sub.id
        WHERE u.valid_to IS NULL
    )
    SELECT id, level FROM sub
    """
)


def scope_for(session: Session, user: User) -> Scope:
    if user.grid_id is not None:
        village_id = session.scalar(
            text("SELECT village_id FROM grids WHERE id = :id"), {"id": user.grid_id}
        )
        unit_ids = frozenset({village_id}) if village_id is not None else frozenset()
        villages: tuple[int, ...] = ()
    else:
        rows = session.execute(SUBTREE_SQL, {"root": user.unit_id}).all()
        unit_ids = frozenset(r.id for r in rows)
        villages = tuple(sorted(r.id for r in rows if r.level == "village"))
    return Scope(
        user_id=user.id,
        username=user.username,
        role=user.role,
        county_code=user.county_code,
        unit_id=user.unit_id,
        grid_id=user.grid_id,
        unit_ids=unit_ids,
        village_ids=villages,
    )


def system_scope(session: Session, county_code: str) -> Scope:
    """Full county scope for the CLI, demo loader and jobs (acting as the system)."""
    county_id = session.scalar(
        text(
            "SELECT id FROM admin_units WHERE code = :code AND level = 'county' "
            "AND valid_to IS NULL"
        ),
        {"code": county_code},
    )
    rows = session.execute(SUBTREE_SQL, {"root": county_id}).all() if county_id else []
    return Scope(
        user_id=0,
        username="system",
        role="county_admin",
        county_code=county_code,
        unit_id=county_id,
        grid_id=None,
        unit_ids=frozenset(r.id for r in rows),
        village_ids=tuple(sorted(r.id for r in rows if r.level == "village")),
    )
