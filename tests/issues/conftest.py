"""Builders for 事件 tests: report bodies, scopes per world user, an issue in a chosen state,
and a database of the tests' own for races (real commits on several connections)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine, pool
from sqlalchemy.orm import Session

from gridgov.auth.models import User
from gridgov.auth.scope import Scope, scope_for
from gridgov.issues import service as issues_service
from gridgov.issues.models import Issue
from gridgov.issues.schemas import IssueCreate, TransitionCreate
from tests.fixtures import database
from tests.fixtures.world import World, build_world

CST = ZoneInfo("Asia/Shanghai")
# A point inside 东村 grid 001: in scope of every world user but village_b.
IN_A1 = (111.01, 26.01)


def cst(*args: int) -> datetime:
    return datetime(*args, tzinfo=CST)  # type: ignore[misc]


def body(**overrides: Any) -> dict[str, Any]:
    """A valid report body (JSON-able); ``lon``/``lat`` set the point."""
    lon, lat = overrides.pop("lon", IN_A1[0]), overrides.pop("lat", IN_A1[1])
    out: dict[str, Any] = {
        "client_uuid": str(uuid.uuid4()),
        "category_code": "0101",
        "description": "邻里因宅基地边界发生争执",
        "location": {"type": "Point", "coordinates": [lon, lat]},
    }
    out.update(overrides)
    return out


@pytest.fixture
def scope_of(session: Session, world: World) -> Callable[[str], Scope]:
    def get(username: str) -> Scope:
        user = session.get(User, world.users[username])
        assert user is not None
        return scope_for(session, user)

    return get


@pytest.fixture
def make_issue(session: Session, scope_of: Callable[[str], Scope]) -> Callable[..., Issue]:
    """``make_issue(state=…, by=…, now=…, **body)`` → an issue reported through the service, its
    state then set directly (the table test reaches every state without walking to it)."""

    def make(
        *, state: str | None = None, by: str = "grid_a1", now: datetime | None = None, **fields: Any
    ) -> Issue:
        issue, created = issues_service.report_issue(
            session, scope_of(by), IssueCreate.model_validate(body(**fields)), now=now
        )
        assert created
        if state is not None:
            issue.state = state
            session.flush()
        return issue

    return make


def act(
    session: Session,
    scope: Scope,
    issue: Issue,
    action: str,
    *,
    now: datetime | None = None,
    **fields: Any,
) -> Issue:
    """Take ``action`` on ``issue`` through the service at the issue's current version."""
    data = {"action": action, "version": issue.version, **fields}
    return issues_service.transition(
        session, scope, issue.id, TransitionCreate.model_validate(data), now=now
    )


@pytest.fixture(scope="module")
def own_db(template_db: str) -> Iterator[tuple[Engine, World]]:
    """A database of this module's own, with the world committed in it (races need commits)."""
    name = database.create_run_database(template_db)
    engine = create_engine(database.url_for(name), poolclass=pool.NullPool)
    try:
        with Session(engine) as s, s.begin():
            world = build_world(s)
        yield engine, world
    finally:
        engine.dispose()
        database.drop_database(name)
