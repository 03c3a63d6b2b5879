"""One app for every map test (building one per test costs more than most tests here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from gridgov.db import get_session
from gridgov.errors import DomainError


@pytest.fixture(scope="module")
def shared_app() -> FastAPI:
    from gridgov.app import create_app

    return create_app()


@pytest.fixture
def app(shared_app: FastAPI, session: Session) -> Iterator[FastAPI]:
    """Overrides conftest's ``app``: the shared app bound to this test's rolled-back session."""

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
