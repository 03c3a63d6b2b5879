"""One app for the whole package (building one costs ~0.1 s); each test binds its own session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from gridgov.app import create_app
from tests.conftest import bind_session


@pytest.fixture(scope="package")
def shared_app() -> FastAPI:
    return create_app()


@pytest.fixture
def app(shared_app: FastAPI, session: Session) -> Iterator[FastAPI]:
    """Overrides the root ``app``: same override of request_session, on the shared app."""

    bind_session(shared_app, session)
    yield shared_app
    shared_app.dependency_overrides.clear()
