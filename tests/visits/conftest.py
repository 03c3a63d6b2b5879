"""Builders for 走访 tests: visit payloads at a household's door, uploads, a photo store."""

from __future__ import annotations

import itertools
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from gridgov.auth.models import User
from tests.conftest import committing_app
from tests.fixtures import database
from tests.fixtures.world import HOUSEHOLDS, World, build_world

POSITION = {h[0]: (h[2], h[3]) for h in HOUSEHOLDS}
# Tiny but real image headers: only the magic number is checked.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 64


@pytest.fixture
def visit(world: World) -> Callable[..., dict[str, Any]]:
    """``visit("A1-1", **fields)`` → a visit payload at that household's door.

    Successive visits are an hour apart (in the past), so that tests do not trip the speed or
    burst checks by accident.
    """
    hours = itertools.count(1)

    def make(household: str = "A1-1", **fields: Any) -> dict[str, Any]:
        lon, lat = POSITION[household]
        payload: dict[str, Any] = {
            "client_uuid": str(uuid.uuid4()),
            "household_id": world.households[household],
            "visited_at": (datetime.now(UTC) - timedelta(hours=next(hours))).isoformat(),
            "location": {"type": "Point", "coordinates": [lon, lat]},
            "accuracy_m": 10,
            "method": "door",
            "notes": "入户走访，了解近况",
            "needs": [],
            "attachment_ids": [],
        }
        payload.update(fields)
        return payload

    return make


@pytest.fixture
def upload(client: Any, as_user: Callable[[str], dict[str, str]]) -> Callable[..., Any]:
    """``upload(items, user="grid_a1")`` → the batch response (status 200 asserted)."""

    def run(items: list[Any], user: str = "grid_a1", **params: Any) -> dict[str, Any]:
        r = client.post(
            "/api/v1/visits/batch", json={"visits": items}, headers=as_user(user), params=params
        )
        assert r.status_code == 200, r.text
        return r.json()

    return run


@pytest.fixture
def linked_member(session: Session, world: World) -> Iterator[int]:
    """Links the grid member user ``grid_a1`` to Party member 党员甲 (for this test only)."""
    user = session.get(User, world.users["grid_a1"])
    assert user is not None
    user.member_id = world.members["党员甲"]
    session.commit()
    yield user.member_id


@pytest.fixture
def blob_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from gridgov.config import get_settings

    monkeypatch.setattr(get_settings(), "data_dir", str(tmp_path))
    return tmp_path / "attachments"


@pytest.fixture(scope="module")
def served(template_db: str) -> Iterator[tuple[str, World, sessionmaker[Session]]]:
    """Real commits on real connections: a database of its own (cloned from the migrated
    template, the test world built in it) and the app served by uvicorn on a free port in a
    thread; (address, world, sessions on that database)."""
    name = database.create_run_database(template_db)
    engine = create_engine(database.url_for(name), pool_size=8)
    try:
        with Session(engine) as s, s.begin():
            world = build_world(s)
        app = committing_app(engine)
        makers = sessionmaker(engine, expire_on_commit=False)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        try:
            yield f"127.0.0.1:{port}", world, makers
        finally:
            server.should_exit = True
            thread.join(10)
            sock.close()
    finally:
        engine.dispose()
        database.drop_database(name)
