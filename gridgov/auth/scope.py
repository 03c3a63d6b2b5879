"""The caller's scope: the subtree of the unit or grid a user is bound to (DESIGN §8).

Every read and write starts from ``Scope.where(Model)`` (ORM) or ``Scope.sql(kind, alias)`` (SQL
built reads). Nothing else in the code base decides what a user may see; anything outside the
scope is "not found".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Select, false, select, text
from sqlalchemy.orm import Session

from gridgov.auth.models import User
from gridgov.auth.permissions import Perm, allowed
from gridgov.errors import NotFound
from gridgov.hierarchy.models import AdminUnit, Grid, PartyOrg
from gridgov.households.models import Household
from gridgov.issues.models import Issue
from gridgov.members.models import PartyMember
from gridgov.visits.models import Visit

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


@dataclass(frozen=True)
class Scope:
    user_id: int
    username: str
    role: str
    county_code: str
    unit_id: int | None
    grid_id: int | None
    unit_ids: frozenset[int]  # the bound unit and everything under it (a grid user: its village)
    village_ids: tuple[int, ...]  # villages in the subtree; empty for a grid-bound user

    @property
    def grid_bound(self) -> bool:
        return self.grid_id is not None

    def grown(self, unit_ids: Iterable[int], *, villages: bool = False) -> Scope:
        """This scope with units the caller has just created inside its subtree (a code list
        writes townships, then the villages under them, in one transaction)."""
        new = frozenset(unit_ids) - self.unit_ids
        if self.grid_bound or not new:
            return self
        extra = tuple(sorted(new)) if villages else ()
        return replace(self, unit_ids=self.unit_ids | new, village_ids=self.village_ids + extra)

    def can(self, perm: Perm) -> bool:
        return allowed(self.role, perm)

    def where(self, model: type[Any]) -> ColumnElement[bool]:
        """The filter that keeps ``model`` rows inside this scope."""
        if model is AdminUnit:
            return AdminUnit.id.in_(self.unit_ids) if self.unit_ids else false()
        if model is PartyOrg:
            return PartyOrg.unit_id.in_(self.unit_ids) if self.unit_ids else false()
        if model is User:
            own_grids = select(Grid.id).where(self.where(Grid)).scalar_subquery()
            if self.grid_bound:
                return User.id == self.user_id
            return User.unit_id.in_(self.unit_ids) | User.grid_id.in_(own_grids)
        if model in (Grid,):
            if self.grid_bound:
                return Grid.id == self.grid_id
            return Grid.village_id.in_(self.village_ids) if self.village_ids else false()
        if model in (Household, PartyMember, Issue, Visit):
            if self.grid_bound:
                return model.grid_id == self.grid_id
            return model.village_id.in_(self.village_ids) if self.village_ids else false()
        raise TypeError(f"no scope rule for {model.__name__}")

    def select(self, model: type[Any]) -> Select[Any]:
        return select(model).where(self.where(model))

    def get(
        self, session: Session, model: type[Any], id_: int, what: str, *, lock: bool = False
    ) -> Any:
        """The row with this id if it is in scope (locked FOR UPDATE if asked), else NotFound."""
        query = self.select(model).where(model.id == id_)
        if lock:
            query = query.with_for_update()
        row = session.scalar(query)
        if row is None:
            raise NotFound(what)
        return row

    def sql(self, kind: str, alias: str) -> tuple[str, dict[str, Any]]:
        """A WHERE fragment and its parameters for SQL-built reads (exports, tiles, pages)."""
        # Id lists travel as one array literal (psycopg dumps a list element by element, which
        # for a county's few hundred villages costs more than the query that uses them).
        if kind == "unit":
            return f"{alias}.id = ANY(CAST(:scope_unit_ids AS bigint[]))", {
                "scope_unit_ids": _array_literal(sorted(self.unit_ids))
            }
        if kind in ("grid", "household", "member", "issue", "visit"):
            column = "id" if kind == "grid" else "grid_id"
            if self.grid_bound:
                return f"{alias}.{column} = :scope_grid_id", {"scope_grid_id": self.grid_id}
            return f"{alias}.village_id = ANY(CAST(:scope_village_ids AS bigint[]))", {
                "scope_village_ids": _array_literal(self.village_ids)
            }
        raise ValueError(f"no scope rule for {kind}")

    def check_unit_filter(
        self, session: Session, code: str | None, *, grid_codes: bool = False
    ) -> None:
        """A ``unit_code`` filter names a current unit of this scope (with ``grid_codes``, a
        15-digit code may name one of its grids), else NotFound — as ``/units/{code}`` would:
        a filter outside the subtree or unknown is 404 everywhere, never an empty answer."""
        if code is None:
            return
        if grid_codes and len(code) == 15:
            query = select(Grid.id).where(Grid.code == code, Grid.valid_to.is_(None))
            found = session.scalar(query.where(self.where(Grid)).limit(1))
        else:
            query = select(AdminUnit.id).where(AdminUnit.code == code, AdminUnit.valid_to.is_(None))
            found = session.scalar(query.where(self.where(AdminUnit)).limit(1))
        if found is None:
            raise NotFound(f"行政单位 {code} ")

    def covers_village(self, village_id: int) -> bool:
        return village_id in self.village_ids

    def covers_unit(self, unit_id: int) -> bool:
        return unit_id in self.unit_ids


def _array_literal(ids: Any) -> str:
    return "{" + ",".join(str(i) for i in ids) + "}"


def scope_for(session: Session, user: User) -> Scope:
    if user.grid_id is not None:
        village_id = session.scalar(select(Grid.village_id).where(Grid.id == user.grid_id))
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
    county = session.scalar(
        select(AdminUnit).where(
            AdminUnit.code == county_code, AdminUnit.level == "county", AdminUnit.valid_to.is_(None)
        )
    )
    rows = session.execute(SUBTREE_SQL, {"root": county.id}).all() if county else []
    return Scope(
        user_id=0,
        username="system",
        role="county_admin",
        county_code=county_code,
        unit_id=county.id if county else None,
        grid_id=None,
        unit_ids=frozenset(r.id for r in rows),
        village_ids=tuple(sorted(r.id for r in rows if r.level == "village")),
    )
