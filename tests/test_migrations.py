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
