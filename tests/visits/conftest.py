"""Builders for 走访 tests: visit payloads at a household's door, uploads, a photo store."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from gridgov.auth.models import User
from tests.fixtures.served import serve_world
from tests.fixtures.world import HOUSEHOLDS, World

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
    """The app on a database of its own, served by uvicorn (tests/fixtures/served.py)."""
    with serve_world(template_db) as served:
        yield served
