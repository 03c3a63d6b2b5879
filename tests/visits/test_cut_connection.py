"""A batch whose connection is cut after the request was sent, then retried: stored once.

Real commits on real connections (``served`` in conftest: a database of its own, the app
served by uvicorn on a free port in a thread), and a raw socket client that sends the whole
request and closes the socket without reading the answer.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from gridgov.visits.models import Visit
from tests.conftest import token_for
from tests.fixtures.world import HOUSEHOLDS, World


def _batch(world: World, n: int) -> bytes:
    lon, lat = HOUSEHOLDS[0][2], HOUSEHOLDS[0][3]
    now = datetime.now(UTC)
    visits = [
        {
            "client_uuid": str(uuid.uuid4()),
            "household_id": world.households["A1-1"],
            "visited_at": (now - timedelta(hours=i + 1)).isoformat(),
            "location": {"type": "Point", "coordinates": [lon, lat]},
            "accuracy_m": 8,
            "method": "door",
        }
        for i in range(n)
    ]
    return json.dumps({"visits": visits}).encode()


def _count(makers: sessionmaker[Session], uuids: list[str]) -> int:
    with makers() as s:
        return s.scalar(
            select(func.count()).where(Visit.client_uuid.in_([uuid.UUID(u) for u in uuids]))
        )


def test_cut_connection_then_retry_stores_nothing_twice(served):
    address, world, makers = served
    host, port = address.split(":")
    token = token_for(world.users["grid_a1"], "grid_member")
    body = _batch(world, 50)
    uuids = [v["client_uuid"] for v in json.loads(body)["visits"]]
    request = (
        f"POST /api/v1/visits/batch HTTP/1.1\r\nHost: {address}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(request)
        # Gone before the answer: the phone lost signal.
    # The server goes on and commits; wait for it (bounded, so a hang fails rather than blocks).
    deadline = time.monotonic() + 30
    while _count(makers, uuids) < len(uuids):
        assert time.monotonic() < deadline, "the first upload never committed"
        time.sleep(0.05)

    retry = httpx.post(
        f"http://{address}/api/v1/visits/batch",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert retry.status_code == 200, retry.text
    result = retry.json()
    assert result["duplicate"] == 50 and result["created"] == 0
    assert _count(makers, uuids) == 50
    with makers() as s:
        dupes = s.execute(
            text("SELECT client_uuid FROM visits GROUP BY client_uuid HAVING count(*) > 1")
        ).all()
    assert dupes == []


def test_concurrent_identical_uploads_store_once(served):
    """The retry may overtake the original: both race; the unique index decides, once."""
    address, world, makers = served
    token = token_for(world.users["grid_a1"], "grid_member")
    body = _batch(world, 100)
    uuids = [v["client_uuid"] for v in json.loads(body)["visits"]]
    results: list[dict] = []

    def send() -> None:
        r = httpx.post(
            f"http://{address}/api/v1/visits/batch",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        results.append(r.json())

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    assert sum(r["created"] for r in results) == 100
    assert sum(r["duplicate"] for r in results) == 300
    assert _count(makers, uuids) == 100
