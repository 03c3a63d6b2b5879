"""Engine, sessions and the one-transaction-per-request dependency.

ORM work goes through SQLAlchemy's pool. Streamed reads (exports, feature pages) outlive the
request's transaction, so they take their own connection from a psycopg_pool pool instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import psycopg
from psycopg_pool import ConnectionPool
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from gridgov.config import Settings, get_settings
from gridgov.errors import DomainError

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


def make_engine(settings: Settings) -> Engine:
    db = settings.db
    return create_engine(
        db.sqlalchemy_url,
        pool_size=db.pool_size,
        max_overflow=db.max_overflow,
        pool_pre_ping=True,
        # Error messages and logs never carry SQL parameters (phones, ID numbers, names).
        hide_parameters=True,
        connect_args={"options": f"-c statement_timeout={db.statement_timeout_ms} -c TimeZone=UTC"},
    )


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
