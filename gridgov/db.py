"""Engine, sessions and the one-transaction-per-request dependency.

ORM work goes through SQLAlchemy's pool. Streamed reads (exports, feature pages) outlive the
request's transaction, so they take their own connection from a psycopg_pool pool instead.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar

import psycopg
from anyio import to_thread
from psycopg_pool import ConnectionPool
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from gridgov.config import Settings, get_settings
from gridgov.errors import DomainError

log = logging.getLogger("gridgov.db")
T = TypeVar("T")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    pass


Base.metadata.naming_convention = NAMING


# A pooled connection idle for longer than this is pinged before use (and replaced if the
# server is gone); one in steady use is not. SQLAlchemy's pool_pre_ping pings on every
# checkout: one round trip more for every read (BEGIN, ";", the statement, COMMIT). A
# connection that dies while in steady use fails its statement once; SQLAlchemy then sees the
# disconnect and replaces every connection of the pool.
PING_AFTER_IDLE_SECONDS = 5.0


def make_engine(settings: Settings) -> Engine:
    db = settings.db
    engine = create_engine(
        db.sqlalchemy_url,
        pool_size=db.pool_size,
        max_overflow=db.max_overflow,
        # Error messages and logs never carry SQL parameters (phones, ID numbers, names).
        hide_parameters=True,
        connect_args={"options": f"-c statement_timeout={db.statement_timeout_ms} -c TimeZone=UTC"},
    )
    event.listen(engine.pool, "checkin", _note_idle)
    event.listen(engine.pool, "checkout", _ping_if_idle)
    return engine


def _note_idle(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: psycopg.Connection, record: Any, _proxy: Any) -> None:
    if time.monotonic() - record.info.get("idle_since", 0.0) < PING_AFTER_IDLE_SECONDS:
        return
    try:
        dbapi_connection.execute(";")
        dbapi_connection.rollback()  # the ping began a transaction; checkout hands none out
    except psycopg.Error as exc:
        # The pool discards this connection and checks out another (SQLAlchemy's documented
        # way for a checkout handler to refuse a dead connection).
        raise DisconnectionError() from exc


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings())


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(get_engine(), expire_on_commit=False)


def get_session() -> Iterator[Session]:
    """One transaction per request: committed before the response is sent, rolled back on error."""
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except DomainError as exc:
        session.commit() if exc.commit else session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def request_session() -> AsyncIterator[Session]:
    """``get_session`` for a request (``SessionDep``): the same transaction, committed before
    the response is sent, rolled back on error. A request that never touched the database (a
    cached tile, a remembered scope) ends in place; only a commit or rollback that talks to
    the database goes to a worker thread, so such a request costs no thread-pool hop for it."""
    session = get_sessionmaker()()
    try:
        yield session
        await _end(session, session.commit)
    except DomainError as exc:
        await _end(session, session.commit if exc.commit else session.rollback)
        raise
    except Exception:
        await _end(session, session.rollback)
        raise
    except BaseException:  # cancelled: no await here, the connection must go back at once
        session.rollback()
        raise
    finally:
        session.close()  # after the commit or rollback: nothing left to send


async def _end(session: Session, finish: Callable[[], None]) -> None:
    if session.in_transaction():
        await to_thread.run_sync(finish)
    else:
        finish()  # nothing began: no statement to send


async def read_in_thread(session: Session, work: Callable[[], T]) -> T:
    """A read handler's work and the end of its transaction in one trip to a worker thread:
    ``request_session`` then finds nothing begun and ends in place, so a read costs one
    thread-pool hop instead of two. A domain error leaves the transaction to
    ``request_session``, as for any handler."""

    def run() -> T:
        result = work()
        session.commit()
        return result

    return await to_thread.run_sync(run)


@contextmanager
def session_scope() -> Iterator[Session]:
    """The same transaction discipline for the CLI and jobs."""
    gen = get_session()
    session = next(gen)
    try:
        yield session
    except BaseException as exc:
        try:
            gen.throw(exc)
        except type(exc):
            pass
        raise
    else:
        next(gen, None)


@lru_cache
def get_stream_pool() -> ConnectionPool:
    settings = get_settings()
    pool = ConnectionPool(
        settings.db.libpq_url,
        min_size=1,
        max_size=settings.db.stream_pool_size,
        kwargs={"options": "-c TimeZone=UTC"},
        open=True,
        name="stream",
    )
    return pool


def raw_connection(session: Session) -> psycopg.Connection:
    """The psycopg connection under a session, inside the session's transaction (for COPY)."""
    return session.connection().connection.driver_connection  # type: ignore[return-value]


_DIALECT = pg_psycopg.dialect()


@lru_cache(maxsize=1024)
def to_psycopg(sql: str) -> str:
    """``:name`` parameters (as ``text()`` and Scope.sql write them) → psycopg's ``%(name)s``
    (and a literal ``%`` doubled), compiled once per statement text."""
    return str(text(sql).compile(dialect=_DIALECT))


def fetch(session: Session, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of one read, run on the session's own connection and transaction but past
    SQLAlchemy's statement and result machinery, which for a small read costs several times
    what the driver does (≈ 250 µs against 50 µs of CPU, measured on a 5-row select). For the
    hot reads (dashboard figures, tiles); everything else goes through ``session.execute``."""
    return raw_connection(session).execute(to_psycopg(sql), params).fetchall()


# deadlock_detected, serialization_failure: the transaction lost a race, not a bad request.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def retryable(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and (
        getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
    )


def retrying(session: Session, work: Callable[[], T], *, attempts: int = 5) -> T:
    """Run ``work`` in a savepoint of the request's transaction; when PostgreSQL aborts it as a
    deadlock victim (or a serialization failure), roll back to the savepoint — which releases
    the locks it took, so the other transaction goes on — wait a moment and run it again.

    For multi-row writes that may meet a concurrent one (a visit batch, a photo flagging other
    visits). ``work`` must start from its inputs each time (it may run more than once). Lock
    rows in one deterministic order as well: that makes deadlocks rare, this makes them
    harmless. Under READ COMMITTED (the default here) a savepoint is enough to retry."""
    for attempt in range(1, attempts + 1):
        try:
            with session.begin_nested():
                return work()
        except DBAPIError as exc:
            if not retryable(exc) or attempt == attempts:
                raise
            log.warning(
                "retrying after %s (attempt %d of %d)",
                type(exc.orig).__name__,
                attempt,
                attempts,
            )
            time.sleep(random.uniform(0.005, 0.02 * 2**attempt))
    raise AssertionError("unreachable")
