"""The reference client: offline queue, batches with retries and backoff, then a pull."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridgov.client import GridgovClient
from gridgov.visits.models import Visit
from tests.conftest import token_for


class LosesFirstAnswer:
    """Delivers every request, but the first answer is lost on the way back (cut signal)."""

    def __init__(self, http: Any) -> None:
        self.http, self.lost = http, 0

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        response = self.http.post(url, **kwargs)
        if self.lost == 0:
            self.lost += 1
            raise httpx.ReadError("connection reset")
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(url, **kwargs)


def visits(world: Any, n: int, household: str = "A1-2") -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "household_id": world.households[household],
            "visited_at": (now - timedelta(days=1, hours=i)).isoformat(),
            "location": {"type": "Point", "coordinates": [111.02, 26.02]},
            "accuracy_m": 6,
        }
        for i in range(n)
    ]


def test_queue_uploads_in_batches_retries_and_pulls(committed):
    w = committed.world
    flaky = LosesFirstAnswer(committed.client)
    waits: list[float] = []
    client = GridgovClient(
        flaky, token_for(w.users["grid_a1"], "grid_member"), batch_size=4, sleep=waits.append
    )
    uuids = [client.record(v) for v in visits(w, 10)]
    out_of_scope = client.record(visits(w, 1, household="B1-1")[0])
    report = client.upload()
    # the first batch was stored, its answer lost, then resent: duplicates, not new rows
    assert (report.created, report.duplicate, report.attempts) == (6, 4, 4)
    assert waits == [0.5]
    assert [r["client_uuid"] for r in report.refused] == [out_of_scope]
    assert report.refused[0]["errors"][0]["code"] == "household_not_found"
    assert client.queue == []
    with Session(committed.engine) as s:
        stored = s.scalar(select(func.count()).where(Visit.client_uuid.in_(uuids)))
    assert stored == 10

    local = client.pull(limit=3)
    mine = {v["client_uuid"] for v in local.records["visits"].values()}
    assert set(uuids) <= mine
    assert w.households["A1-1"] in local.records["households"]
    assert w.households["B1-1"] not in local.records["households"]
    assert w.households["A1-2"] not in [d["household_id"] for d in local.due]
    # Nothing new (the cursor itself may move on: each pull that shows names is audited, and
    # that write moves the read horizon).
    before = {kind: dict(records) for kind, records in local.records.items()}
    assert client.pull().records == before


def test_gives_up_after_max_attempts(committed):
    class Down:
        def post(self, url: str, **kwargs: Any) -> httpx.Response:
            raise httpx.ConnectError("no signal")

        def get(self, url: str, **kwargs: Any) -> httpx.Response:
            raise httpx.ConnectError("no signal")

    waits: list[float] = []
    client = GridgovClient(Down(), "token", max_attempts=3, sleep=waits.append)
    client.record(visits(committed.world, 1)[0])
    with pytest.raises(ConnectionError):
        client.upload()
    assert waits == [0.5, 1.0] and len(client.queue) == 1  # nothing lost from the queue
