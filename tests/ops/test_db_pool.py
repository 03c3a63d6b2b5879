"""The pool's disconnect handling (gridgov.db.make_engine): a connection the server dropped
while it sat idle in the pool is pinged and replaced, never handed to a request; one dropped
while in steady use fails one statement, then the pool starts afresh."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gridgov import db
from gridgov.config import get_settings


def _engine():
    settings = get_settings().model_copy(deep=True)
    settings.db.pool_size, settings.db.max_overflow = 1, 0
    return db.make_engine(settings)


def _terminate(engine, pid: int) -> None:
    # Another engine: the one under test has a single connection, the victim.
    killer = _engine()
    try:
        with killer.connect() as conn:
            assert conn.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    finally:
        killer.dispose()


@pytest.fixture
def killed(db_url):
    """A one-connection engine whose pooled connection the server has just terminated, and
    that connection's backend pid."""
    engine = _engine()
    with engine.connect() as conn:
        pid = conn.scalar(text("SELECT pg_backend_pid()"))
    _terminate(engine, pid)
    yield engine, pid
    engine.dispose()


def test_idle_connection_killed_by_the_server_is_replaced(killed, monkeypatch):
    engine, first = killed
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has been idle "long"
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT pg_backend_pid()")) != first


def test_connection_in_steady_use_is_not_pinged(killed, monkeypatch):
    engine, first = killed
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    # Not pinged: the statement meets the dead connection once...
    with pytest.raises(DBAPIError) as failed, engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert failed.value.connection_invalidated
    # ...and the pool has replaced it for the next one.
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT pg_backend_pid()")) != first
