"""Migrations: upgrade from empty, downgrade one step, upgrade again; models and migrations agree.

Runs on a database of its own (empty, owned by the app role, PostGIS created by the admin as
the bootstrap does), never on the shared run database, and drops it afterwards.
"""

from __future__ import annotations

import ast
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from geoalchemy2 import alembic_helpers
from psycopg import sql
from sqlalchemy import create_engine, inspect, pool, text

import gridgov.models  # noqa: F401  (fills Base.metadata)
from gridgov import migrate
from gridgov.db import Base
from tests.fixtures import database


def _env_include_object() -> Any:
    """migrations/env.py's own ``include_object``, taken from its source (importing env.py would
    run the migrations), so the comparison below filters exactly as autogenerate does."""
    source = (migrate.MIGRATIONS_DIR / "env.py").read_text()
    tree = ast.parse(source)
    (func,) = [
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "include_object"
    ]
    namespace: dict[str, Any] = {"alembic_helpers": alembic_helpers}
    exec(compile(ast.Module(body=[func], type_ignores=[]), "migrations/env.py", "exec"), namespace)
    return namespace["include_object"]


@pytest.fixture(scope="module")
def fresh_url() -> Iterator[str]:
    # The run-database naming lets drop_stale() clean it up should this process be killed.
    name = f"gridgov_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with database.admin() as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(database.APP_USER)
            )
        )
    try:
        admin_db = database.ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        with psycopg.connect(admin_db, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        yield database.url_for(name)
    finally:
        database.drop_database(name)


# The project's own functions (triggers) and their bodies: a migration may only change those.
FUNCTIONS_SQL = text(
    """
    SELECT p.proname || ':' || md5(p.prosrc) FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    """
)


def _state(url: str) -> tuple[str | None, set[str], set[str]]:
    """Revision; tables and their columns; the project's functions with their bodies."""
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            revision = MigrationContext.configure(conn).get_current_revision()
            inspector = inspect(conn)
            names = set(inspector.get_table_names()) - {"spatial_ref_sys", "alembic_version"}
            tables = names | {f"{t}.{c['name']}" for t in names for c in inspector.get_columns(t)}
            functions = set(conn.scalars(FUNCTIONS_SQL))
        return revision, tables, functions
    finally:
        engine.dispose()


def test_upgrade_from_empty_downgrade_one_step_and_upgrade_again(fresh_url):
    ours = set(Base.metadata.tables) | {
        f"{t.name}.{c.name}" for t in Base.metadata.tables.values() for c in t.columns
    }
    assert _state(fresh_url) == (None, set(), set())

    migrate.upgrade(fresh_url)
    head = migrate.head_revision()
    revision, tables, functions = _state(fresh_url)
    assert revision == head
    assert tables == ours

    migrate.downgrade(fresh_url, "-1")
    previous = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(head)
    revision, tables_before, functions_before = _state(fresh_url)
    assert revision == previous.down_revision
    if previous.down_revision is None:
        assert tables_before == set(), "downgrading the first revision must leave nothing behind"
    else:
        assert (tables_before, functions_before) != (ours, functions), (
            "the last migration's downgrade changed nothing"
        )

    migrate.upgrade(fresh_url)
    assert _state(fresh_url) == (head, ours, functions)


def test_models_and_migrations_agree(fresh_url):
    migrate.upgrade(fresh_url)
    engine = create_engine(fresh_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "include_object": _env_include_object(),
                    "compare_type": True,
                    "compare_server_default": False,
                    "target_metadata": Base.metadata,
                },
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == [], "models differ from migrations: " + "\n".join(map(repr, differences))


# A county with two grids and households, in plain SQL (valid at revision 0012).
TILE_DATA_SQL = """
INSERT INTO admin_units (code, name, level, parent_id, county_code, geom) VALUES
    ('439903', '迁移县', 'county', NULL, '439903',
     ST_Multi(ST_MakeEnvelope(111.0, 26.0, 111.2, 26.2, 4326)));
INSERT INTO admin_units (code, name, level, parent_id, county_code, geom)
    SELECT '439903100', '迁移镇', 'township', id, '439903', geom FROM admin_units
    WHERE code = '439903';
INSERT INTO admin_units (code, name, level, parent_id, county_code, geom)
    SELECT '439903100201', '迁移村', 'village', id, '439903', geom FROM admin_units
    WHERE code = '439903100';
INSERT INTO grids (code, name, village_id, county_code, kind, geom)
    SELECT '439903100201' || s, '网格' || s, id, '439903', 'general',
           ST_Multi(ST_Buffer(ST_Point(111.05 + 0.1 * (s::int - 1), 26.1, 4326), 0.04, 12))
    FROM admin_units, (VALUES ('001'), ('002')) v(s) WHERE code = '439903100201';
INSERT INTO households (county_code, village_id, grid_id, head_name, geom, removed_at)
    SELECT '439903', v.id, g.id, '户' || i,
           ST_Point(111.0 + 0.2 * (i % 97) / 97.0, 26.0 + 0.2 * (i % 89) / 89.0, 4326),
           CASE WHEN i % 10 = 0 THEN now() END
    FROM admin_units v, generate_series(1, 3000) i
    LEFT JOIN grids g ON g.code = '439903100201' || CASE WHEN i % 3 = 0 THEN '001' END
    WHERE v.code = '439903100201';
"""
TILE_TABLES_SQL = {
    "grid_tile_geoms": "SELECT zoom, grid_id, ST_AsEWKB(geom), ST_AsEWKB(tile_geom)"
    " FROM grid_tile_geoms ORDER BY zoom, grid_id",
    "household_clusters": "SELECT level, cx, cy, village_id, grid_id, n, sx, sy"
    " FROM household_clusters WHERE n > 0 ORDER BY level, cx, cy, village_id, grid_id",
}


def _same_tile_tables(filled: dict[str, list[Any]], kept: dict[str, list[Any]]) -> bool:
    """Equal rows; the clusters' sums within a micrometre per household (the backfill adds the
    households in another order than the triggers did, so the last bits may differ)."""
    if filled["grid_tile_geoms"] != kept["grid_tile_geoms"]:
        return False
    a, b = filled["household_clusters"], kept["household_clusters"]
    return len(a) == len(b) and all(
        x[:6] == y[:6] and abs(x[6] - y[6]) <= 1e-6 * x[5] and abs(x[7] - y[7]) <= 1e-6 * x[5]
        for x, y in zip(a, b, strict=True)
    )


def test_the_tile_tables_are_filled_from_the_data_there_and_dropped_on_downgrade(fresh_url):
    """0013 and 0014 fill their tables from the grids and households already stored, exactly as
    their triggers keep them afterwards; downgrading both leaves the 0012 schema behind."""
    migrate.upgrade(fresh_url)
    migrate.downgrade(fresh_url, "0012")
    before = _state(fresh_url)
    engine = create_engine(fresh_url, poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM households; DELETE FROM grids; DELETE FROM admin_units"))
            conn.execute(text(TILE_DATA_SQL))
        migrate.upgrade(fresh_url)
        with engine.begin() as conn:
            grids = conn.execute(text("SELECT count(*) FROM grid_tile_geoms")).scalar_one()
            levels = conn.execute(
                text("SELECT count(DISTINCT level), min(total), max(total) FROM"
                     " (SELECT level, sum(n) AS total FROM household_clusters GROUP BY level) q")
            ).one()  # fmt: skip
            assert grids == 2 * 13 and tuple(levels) == (14, 2700, 2700)
            # Written after the migration: kept by the triggers.
            conn.execute(
                text(
                    "UPDATE households SET geom = ST_Translate(geom, 0.01, 0.0), removed_at = NULL"
                    " WHERE id % 7 = 0"
                )
            )
            conn.execute(
                text("UPDATE grids SET geom = ST_Translate(geom, 0.001, 0) WHERE code LIKE '%001'")
            )
            kept = {name: conn.execute(text(sql)).all() for name, sql in TILE_TABLES_SQL.items()}
        migrate.downgrade(fresh_url, "0012")
        assert _state(fresh_url) == before
        migrate.upgrade(fresh_url)
        with engine.begin() as conn:
            filled = {name: conn.execute(text(sql)).all() for name, sql in TILE_TABLES_SQL.items()}
        assert _same_tile_tables(filled, kept)
    finally:
        engine.dispose()
