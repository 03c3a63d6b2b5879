"""The scope is built from each table's own declaration (``__scope__ = scoped_by(…)``,
``gridgov.scoping``): which tables declare one, and that the ORM filter (``Scope.where``), the
SQL fragment (``Scope.sql``) and the audit log's id lists (``Scope.audited_ids``) built from the
same declaration keep exactly the same rows, for every kind and every kind of caller."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

import gridgov.models
from gridgov import scoping
from gridgov.auth.models import User
from gridgov.auth.scope import scope_for
from gridgov.db import Base
from tests.fixtures.world import World

DECLARED = {
    "unit": "admin_units",
    "party_org": "party_orgs",
    "grid": "grids",
    "household": "households",
    "member": "party_members",
    "issue": "issues",
    "visit": "visits",
    "user": "users",
    "api_key": "api_keys",
    "contact": "contacts",
    "sync_change": "sync_changes",
}


def test_the_declared_tables() -> None:
    assert {k: d.table for k, d in scoping.declarations().items()} == DECLARED
    models = {m.class_.__tablename__: m.class_ for m in Base.registry.mappers}
    for kind, table in DECLARED.items():
        assert models[table].__scope__ is scoping.declaration(kind)
    # The dashboard's rollup tables carry village/grid ids too, but are read only through the
    # dashboard's node (an already-scoped unit or grid), never filtered by a caller's scope.
    # The map's derived tables are read through their layer's own scope: the cluster pyramid
    # by the household declaration's fragment (same village_id/grid_id columns), the per-zoom
    # grid geometry joined to its grid (tests/gis/test_cluster_pyramid.py and
    # test_grid_tile_geoms.py check both against the raw query for every kind of caller).
    derived_map_tables = {"household_clusters", "grid_tile_geoms"}
    undeclared = {
        t.name
        for t in Base.metadata.sorted_tables
        if {"village_id", "grid_id", "unit_id"} & {c.name for c in t.columns}
    } - set(DECLARED.values())
    assert all(n.startswith("dash_") or n in derived_map_tables for n in undeclared), undeclared
    assert gridgov.models  # imported for Base.metadata


def test_an_undeclared_model_has_no_scope() -> None:
    from gridgov.audit.models import AuditEntry

    scope = scoping.Scope(1, "x", "county_admin", "431000", 1, None, frozenset({1}), (1,))
    with pytest.raises(TypeError, match="no scope rule for AuditEntry"):
        scope.where(AuditEntry)
    with pytest.raises(ValueError, match="no scope rule for nothing"):
        scope.sql("nothing", "t")


@pytest.mark.parametrize("username", ["county", "town_a", "village_a", "grid_a1", "auditor"])
def test_orm_sql_and_audit_filters_agree(session: Session, world: World, username: str) -> None:
    scope = scope_for(session, session.get(User, world.users[username]))
    models = {m.class_.__tablename__: m.class_ for m in Base.registry.mappers}
    for kind, table in DECLARED.items():
        model = models[table]
        key = scoping.declaration(kind).key
        by_orm = set(session.scalars(select(getattr(model, key)).where(scope.where(model))))
        where, params = scope.sql(kind, "t")
        by_sql = set(session.scalars(text(f"SELECT t.{key} FROM {table} t WHERE {where}"), params))
        assert by_orm == by_sql, (username, kind)
        assert set(session.scalars(scope.ids(kind))) == by_orm, (username, kind)
        declared = scoping.declaration(kind)
        if declared.audit:
            keys = set(session.scalars(scope.audited_ids(kind)))
            expected = {
                str(v)
                for v in session.scalars(
                    select(getattr(model, declared.audit_key)).where(scope.where(model))
                )
            }
            assert keys == expected, (username, kind)
    # and they are not vacuous: every caller sees some of its world
    assert session.scalars(
        select(models["households"].id).where(scope.where(models["households"]))
    ).first()
    if scope.grid_bound:
        users = set(session.scalars(select(User.id).where(scope.where(User))))
        assert users == {world.users[username]}  # a grid member sees only itself
