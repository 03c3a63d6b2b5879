"""The caller's scope (DESIGN §8) and how each table declares the way it ties to the hierarchy.

A kernel module: it imports no domain. Every model whose rows belong somewhere in the hierarchy
declares it once, next to its columns::

    class Household(Base):
        __tablename__ = "households"
        __scope__ = scoped_by(__tablename__, "household", village="village_id", grid="grid_id")

and ``Scope.where(Model)`` (ORM) or ``Scope.sql(kind, alias)`` (SQL-built reads) build the filter
from that declaration alone — there is no list of domains here. The rule for a declaration:

* a caller bound to a grid keeps the rows whose ``grid`` column is its grid; a table without a
  grid column falls back to ``unit`` (the grid's village), ``own`` (only the caller's own row:
  users) or ``through`` (rows whose parent is in scope);
* any other caller keeps the rows whose ``unit`` column is in its subtree **or** whose
  ``village`` column is one of its villages **or** whose ``through`` parent is in scope.

The audit log's reader finds, from the same declarations, which entries are about rows in scope
(``audit`` names the log's entity names, ``audit_key`` the column its entity id holds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Select, String, cast, column, false, select, table, text
from sqlalchemy.orm import Session

from gridgov.errors import NotFound
from gridgov.permissions import Perm, allowed


@dataclass(frozen=True)
class ScopedBy:
    """How one table ties to the hierarchy (see the module's docstring for the rule)."""

    table: str
    kind: str  # the name ``Scope.sql`` and the map layers know it by
    unit: str | None = None  # column holding an admin unit id (any level)
    village: str | None = None  # column holding its village's id
    grid: str | None = None  # column holding its grid's id
    own: str | None = None  # column holding a user id: a grid-bound caller sees only its own
    through: tuple[str, str] | None = None  # (column, kind): in scope when that parent row is
    audit: tuple[str, ...] = ()  # the audit log's entity names for rows of this table
    audit_key: str = "id"  # the column the audit log's entity_id holds
    key: str = "id"  # the table's primary key (``Scope.ids``, a ``through`` parent's id)

    def table_clause(self) -> Any:
        names = {self.audit_key, self.key, *(self.unit, self.village, self.grid, self.own)}
        if self.through:
            names.add(self.through[0])
        return table(self.table, *(column(n) for n in sorted(n for n in names if n)))


_DECLARED: dict[str, ScopedBy] = {}


def scoped_by(table_name: str, kind: str, **rule: Any) -> ScopedBy:
    """Declare (and register under ``kind``) how ``table_name`` ties to the hierarchy."""
    declared = ScopedBy(table_name, kind, **rule)
    known = _DECLARED.get(kind)
    if known is not None and known != declared:
        raise ValueError(f"scope kind {kind!r} declared twice ({known.table}, {table_name})")
    _DECLARED[kind] = declared
    return declared


def declaration(kind: str) -> ScopedBy:
    try:
        return _DECLARED[kind]
    except KeyError:
        raise ValueError(f"no scope rule for {kind}") from None


def declarations() -> Mapping[str, ScopedBy]:
    return dict(_DECLARED)


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

    # -- ORM -------------------------------------------------------------------------------------

    def where(self, model: type[Any]) -> ColumnElement[bool]:
        """The filter that keeps ``model`` rows inside this scope (by ``model.__scope__``)."""
        rule = getattr(model, "__scope__", None)
        if not isinstance(rule, ScopedBy):
            raise TypeError(f"no scope rule for {model.__name__}")
        return self._clause(rule, model)

    def _clause(self, rule: ScopedBy, cols: Any) -> ColumnElement[bool]:
        def col(name: str) -> Any:
            return getattr(cols, name)

        if self.grid_bound:
            if rule.own:
                return col(rule.own) == self.user_id
            if rule.grid:
                return col(rule.grid) == self.grid_id
            if rule.unit:
                return col(rule.unit).in_(self.unit_ids) if self.unit_ids else false()
            if rule.through:
                return col(rule.through[0]).in_(self._parents(rule.through[1]))
            return false()
        parts: list[ColumnElement[bool]] = []
        if rule.unit and self.unit_ids:
            parts.append(col(rule.unit).in_(self.unit_ids))
        if rule.village and self.village_ids:
            parts.append(col(rule.village).in_(self.village_ids))
        if rule.through:
            parts.append(col(rule.through[0]).in_(self._parents(rule.through[1])))
        if not parts:
            return false()
        clause = parts[0]
        for part in parts[1:]:
            clause = clause | part
        return clause

    def _parents(self, kind: str) -> Any:
        return self.ids(kind).scalar_subquery()

    def ids(self, kind: str) -> Select[Any]:
        """The ids of the rows of a declared ``kind`` in scope (a subquery, no model class)."""
        rule = declaration(kind)
        t = rule.table_clause()
        return select(t.c[rule.key]).where(self._clause(rule, t.c))

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

    def audited_ids(self, kind: str) -> Select[Any]:
        """The audit log's entity ids (as text, as stored) of the rows of ``kind`` in scope."""
        rule = declaration(kind)
        t = rule.table_clause()
        return select(cast(t.c[rule.audit_key], String)).where(self._clause(rule, t.c))

    # -- SQL-built reads -------------------------------------------------------------------------

    def sql(self, kind: str, alias: str) -> tuple[str, dict[str, Any]]:
        """A WHERE fragment and its parameters for SQL-built reads (exports, tiles, pages), by
        the declaration of ``kind``."""
        rule = declaration(kind)
        # Id lists travel as one array literal (psycopg dumps a list element by element, which
        # for a county's few hundred villages costs more than the query that uses them).
        units = (
            f"{alias}.{rule.unit} = ANY(CAST(:scope_unit_ids AS bigint[]))",
            {"scope_unit_ids": _array_literal(sorted(self.unit_ids))},
        )
        if self.grid_bound:
            if rule.own:
                return f"{alias}.{rule.own} = :scope_user_id", {"scope_user_id": self.user_id}
            if rule.grid:
                return f"{alias}.{rule.grid} = :scope_grid_id", {"scope_grid_id": self.grid_id}
            if rule.unit:
                return units
            if rule.through:
                return self._through_sql(rule, alias)
            return "false", {}
        parts: list[str] = []
        params: dict[str, Any] = {}
        if rule.unit:
            parts.append(units[0])
            params.update(units[1])
        if rule.village:
            parts.append(f"{alias}.{rule.village} = ANY(CAST(:scope_village_ids AS bigint[]))")
            params["scope_village_ids"] = _array_literal(self.village_ids)
        if rule.through:
            fragment, extra = self._through_sql(rule, alias)
            parts.append(fragment)
            params.update(extra)
        if not parts:
            return "false", {}
        return (parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"), params

    def _through_sql(self, rule: ScopedBy, alias: str) -> tuple[str, dict[str, Any]]:
        assert rule.through is not None
        parent = declaration(rule.through[1])
        inner = f"{alias}_{parent.kind}"
        fragment, params = self.sql(parent.kind, inner)
        return (
            f"{alias}.{rule.through[0]} IN (SELECT {inner}.{parent.key} "
            f"FROM {parent.table} {inner} WHERE {fragment})"
        ), params

    def check_unit_filter(
        self, session: Session, code: str | None, *, grid_codes: bool = False
    ) -> None:
        """A ``unit_code`` filter names a current unit of this scope (with ``grid_codes``, a
        15-digit code may name one of its grids), else NotFound — as ``/units/{code}`` would:
        a filter outside the subtree or unknown is 404 everywhere, never an empty answer."""
        if code is None:
            return
        kind = "grid" if grid_codes and len(code) == 15 else "unit"
        rule = declaration(kind)
        where, params = self.sql(kind, "t")
        found = session.scalar(
            text(
                f"SELECT 1 FROM {rule.table} t WHERE t.code = :code AND t.valid_to IS NULL "
                f"AND {where} LIMIT 1"
            ),
            {**params, "code": code},
        )
        if found is None:
            raise NotFound(f"行政单位 {code} ")

    def covers_village(self, village_id: int) -> bool:
        return village_id in self.village_ids

    def covers_unit(self, unit_id: int) -> bool:
        return unit_id in self.unit_ids


def _array_literal(ids: Any) -> str:
    return "{" + ",".join(str(i) for i in ids) + "}"
