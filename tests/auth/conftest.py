"""One app for the whole package (building one costs ~0.1 s); each test binds its own session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from gridgov.app import create_app
from gridgov.db import get_session
from gridgov.errors import DomainError


@pytest.fixture(scope="package")
def shared_app() -> FastAPI:
    return create_app()


@pytest.fixture
def app(shared_app: FastAPI, session: Session) -> Iterator[FastAPI]:
    """Overrides the root ``app``: same override of get_session, on the shared app."""

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

    shared_app.dependency_overrides[get_session] = override
    yield shared_app
    shared_app.dependency_overrides.clear()
