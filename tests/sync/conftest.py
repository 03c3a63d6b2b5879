"""Sync tests commit for real, on several connections: a database of their own (cloned from the
migrated template, the test world built in it) and an app whose requests use it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from tests.conftest import committing_app, token_for
from tests.fixtures import database
from tests.fixtures.world import USERS, World, build_world


@dataclass
class Committed:
    engine: Engine
    world: World
    client: TestClient

    def headers(self, username: str) -> dict[str, str]:
        role = {u[0]: u[1] for u in USERS}[username]
        return {"Authorization": f"Bearer {token_for(self.world.users[username], role)}"}

    def pull(self, username: str, cursor: str | None = None, **params: Any) -> dict[str, Any]:
        if cursor is not None:
            params["cursor"] = cursor
        r = self.client.get("/api/v1/sync", params=params, headers=self.headers(username))
        assert r.status_code == 200, r.text
        return r.json()

    def drain(self, username: str, cursor: str | None = None) -> str:
        """Pull until nothing is left; the cursor to continue from."""
        while True:
            page = self.pull(username, cursor)
            cursor = page["next"]
            if not page["has_more"]:
                return cursor


@pytest.fixture(scope="module")
def committed(template_db: str) -> Iterator[Committed]:
    name = database.create_run_database(template_db)
    engine = create_engine(database.url_for(name), pool_size=5)
    try:
        with Session(engine) as s, s.begin():
            world = build_world(s)
        app = committing_app(engine)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Committed(engine, world, client)
    finally:
        engine.dispose()
        database.drop_database(name)
