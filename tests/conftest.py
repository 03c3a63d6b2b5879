"""Fixtures: one database per run (cloned from a migrated template), a hand-made county in it,
and per test a session inside an outer transaction that is rolled back at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.fixtures import database
from tests.fixtures.world import World, build_world

os.environ["GRIDGOV_ENV"] = "test"
os.environ.setdefault("GRIDGOV_LOG_JSON", "false")
os.environ.setdefault("GRIDGOV_LOG_LEVEL", "WARNING")
# Tests rebind users and rebuild worlds between requests (and several databases reuse the same
# user ids): no scope memory, except in the tests of the memory itself.
os.environ["GRIDGOV_AUTH__SCOPE_CACHE_SECONDS"] = "0"
# Most tests write inside a transaction that is rolled back (no NOTIFY ever arrives): tiles ask
# the database for layer versions, except in the tests of the listener.
os.environ["GRIDGOV_MAPS__LISTEN_FOR_CHANGES"] = "false"
# Dashboard rollups are refreshed by the tests themselves (gridgov.dashboard.rollups.refresh),
# not by a background thread racing the rolled-back test transactions.
os.environ["GRIDGOV_DASHBOARD__REFRESH_SECONDS"] = "0"

# Every subscriber of domain events (gridgov.events), as the app and the CLI load them; after
# the settings above, in case a module reads them at import.
import gridgov.wiring  # noqa: E402, F401


@pytest.fixture(scope="session")
def template_db() -> str:
    database.drop_stale()
    return database.ensure_template()


@pytest.fixture(scope="session")
def db_url(template_db: str) -> Iterator[str]:
    name = database.create_run_database(template_db)
    url = database.url_for(name)
    os.environ["GRIDGOV_DB__URL"] = url
    from gridgov.config import get_settings
    from gridgov.db import get_engine, get_sessionmaker, get_stream_pool

    for cached in (get_settings, get_engine, get_sessionmaker, get_stream_pool):
        cached.cache_clear()
    yield url
    if get_stream_pool.cache_info().currsize:
        get_stream_pool().close()
    get_engine().dispose()
    database.drop_database(name)


@pytest.fixture(scope="session")
def engine(db_url: str) -> Engine:
    from gridgov.db import get_engine

    return get_engine()


@pytest.fixture(scope="session")
def world(engine: Engine) -> World:
    with Session(engine) as session, session.begin():
        return build_world(session)


@pytest.fixture
def session(engine: Engine, world: World) -> Iterator[Session]:
    """A session whose commits are savepoints inside one transaction rolled back afterwards."""
    connection = engine.connect()
    outer = connection.begin()
    s = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield s
    finally:
        s.close()
        outer.rollback()
        connection.close()


def bind_session(application: Any, session: Session) -> None:
    """Make ``application`` run every request in the test's ``session`` (whose commits are
    savepoints, all rolled back after the test), committing or rolling back as request_session
    does."""
    from gridgov.db import request_session
    from gridgov.errors import DomainError

    def override() -> Iterator[Session]:
        try:
            yield session
            session.commit()
        except DomainError as exc:
            session.commit() if exc.commit else session.rollback()
            raise
        except BaseException:
            session.rollback()
            raise

    application.dependency_overrides[request_session] = override


def committing_app(engine: Engine) -> Any:
    """The app with every request in a session of its own on ``engine``, committed for real
    (for tests that need real commits on several connections: sync, cut connections)."""
    from sqlalchemy.orm import sessionmaker

    from gridgov.app import create_app
    from gridgov.db import request_session
    from gridgov.errors import DomainError

    application = create_app()
    makers = sessionmaker(engine, expire_on_commit=False)

    def own_session() -> Iterator[Session]:
        session = makers()
        try:
            yield session
            session.commit()
        except DomainError as exc:  # as request_session: a failed login's attempt is kept
            session.commit() if exc.commit else session.rollback()
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    application.dependency_overrides[request_session] = own_session
    return application


@pytest.fixture
def cli_session(session: Session, monkeypatch: pytest.MonkeyPatch) -> Session:
    """The CLI's session_scope() hands out the test's session. Its commit is a savepoint (all
    rolled back after the test), so a later failed request does not undo the CLI's work."""
    from contextlib import contextmanager

    @contextmanager
    def scope() -> Iterator[Session]:
        yield session
        session.commit()

    monkeypatch.setattr("gridgov.db.session_scope", scope)
    return session


@pytest.fixture
def app(session: Session):
    from gridgov.app import create_app

    application = create_app()
    bind_session(application, session)
    return application


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def token_for(user_id: int, role: str, minutes: int = 15) -> str:
    from gridgov.auth import security

    token, _ = security.encode(
        {"sub": str(user_id), "typ": "access", "role": role}, timedelta(minutes=minutes)
    )
    return token


@pytest.fixture
def as_user(client: TestClient, world: World):
    """``as_user("village_a")`` → headers carrying that world user's access token."""
    from tests.fixtures.world import USERS

    roles = {u[0]: u[1] for u in USERS}

    def headers(username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(world.users[username], roles[username])}"}

    return headers
