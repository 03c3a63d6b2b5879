"""A first pull (no cursor) is a snapshot of the scope: each object once, no tombstones —
whatever history the change log holds (updates, moves, removals) — then deltas from there."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from tests.fixtures.world import GRID_A1, GRID_A2

KINDS = ("grids", "households", "contacts", "visits")


def first_pull(committed, username: str, limit: int) -> tuple[list[dict[str, Any]], str]:
    pages, cursor = [], None
    while True:
        page = committed.pull(username, cursor, limit=limit)
        assert page["reset"] is False
        pages.append(page)
        cursor = page["next"]
        if not page["has_more"]:
            return pages, cursor
        assert len(pages) < 200, "the first pull never ends"


def counted(pages: list[dict[str, Any]], kind: str) -> Counter[int]:
    return Counter(item["id"] for page in pages for item in page["upserts"][kind])


def current_ids(committed, sql: str, **params: Any) -> set[int]:
    with committed.engine.connect() as c:
        return set(c.scalars(text(sql), params))


def test_first_pull_sends_each_object_once_and_no_tombstones(committed):
    w = committed.world
    a1, a2 = w.grids[GRID_A1], w.grids[GRID_A2]
    headers = committed.headers("grid_a1")
    # History the change log keeps: the grid edited after its households were written (a later
    # change row of grid A1), a household edited twice, one moved out of A1, one removed, and a
    # visit uploaded.
    with committed.engine.begin() as c:
        c.execute(text("UPDATE grids SET name = name || '（改）' WHERE id = :id"), {"id": a1})
    for address in ("一改", "二改"):
        with committed.engine.begin() as c:
            c.execute(
                text("UPDATE households SET address = :a WHERE id = :id"),
                {"a": address, "id": w.households["A1-1"]},
            )
    with committed.engine.begin() as c:
        c.execute(
            text(
                "UPDATE households SET grid_id = :g,"
                " geom = ST_SetSRID(ST_MakePoint(111.07, 26.08), 4326) WHERE id = :id"
            ),
            {"g": a2, "id": w.households["A1-4"]},
        )
        c.execute(
            text("UPDATE households SET removed_at = now() WHERE id = :id"),
            {"id": w.households["A1-3"]},
        )
    item = {
        "client_uuid": str(uuid.uuid4()),
        "household_id": w.households["A1-1"],
        "visited_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "location": {"type": "Point", "coordinates": [111.01, 26.01]},
        "accuracy_m": 5,
    }
    r = committed.client.post("/api/v1/visits/batch", json={"visits": [item]}, headers=headers)
    assert r.json()["created"] == 1, r.text
    with committed.engine.begin() as c:
        c.execute(text("UPDATE grids SET name = name || '再改' WHERE id = :id"), {"id": a1})
    with committed.engine.connect() as c:
        history = c.scalar(
            text("SELECT count(*) FROM sync_changes WHERE entity = 'grid' AND entity_id = :id"),
            {"id": a1},
        )
    assert history >= 3  # the grid is logged several times: the log alone would repeat it

    want = {
        "grids": {a1},
        "households": current_ids(
            committed, "SELECT id FROM households WHERE grid_id = :g AND removed_at IS NULL", g=a1
        ),
        "contacts": current_ids(
            committed,
            "SELECT c.id FROM contacts c JOIN households h ON h.id = c.household_id"
            " WHERE h.grid_id = :g AND h.removed_at IS NULL AND c.valid_to IS NULL",
            g=a1,
        ),
        "visits": current_ids(committed, "SELECT id FROM visits WHERE grid_id = :g", g=a1),
    }
    assert want["households"] and want["visits"]
    assert w.households["A1-3"] not in want["households"]
    assert w.households["A1-4"] not in want["households"]

    for limit in (1, 2, 3, 500):
        pages, cursor = first_pull(committed, "grid_a1", limit)
        for kind in KINDS:
            seen = counted(pages, kind)
            assert {i for i, n in seen.items() if n > 1} == set(), (limit, kind)
            assert set(seen) == want[kind], (limit, kind)
            assert all(page["tombstones"][kind] == [] for page in pages), (limit, kind)
        assert all(sum(len(page["upserts"][k]) for k in KINDS) <= limit for page in pages), limit
        grid = next(g for p in pages for g in p["upserts"]["grids"])
        assert grid["name"].endswith("再改")  # the current state, not a logged one
        assert [p["due"] is not None for p in pages] == [False] * (len(pages) - 1) + [True]
        # caught up: the cursor that ends the first pull has nothing more to send ...
        after = committed.pull("grid_a1", cursor)
        assert after["has_more"] is False
        assert all(after["upserts"][k] == [] and after["tombstones"][k] == [] for k in KINDS)

    # ... and is a delta cursor: later changes come as usual, removals as tombstones.
    with committed.engine.begin() as c:
        c.execute(
            text("UPDATE households SET removed_at = now() WHERE id = :id"),
            {"id": w.households["A1-2"]},
        )
    page = committed.pull("grid_a1", cursor)
    assert page["tombstones"]["households"] == [w.households["A1-2"]]
    assert page["upserts"]["households"] == []


def test_a_change_during_the_first_pull_follows_it(committed):
    """A household sent on an early page of a first pull and changed before the last page is
    not lost: the pull's last cursor stands where the snapshot began, so the next pull sends
    the change."""
    w = committed.world
    hid = w.households["A1-1"]
    cursor, sent, changed = None, False, False
    while True:
        page = committed.pull("grid_a1", cursor, limit=1)
        cursor = page["next"]
        sent = sent or hid in [h["id"] for h in page["upserts"]["households"]]
        if sent and not changed:
            assert page["has_more"] is True  # more pages to come (contacts, visits)
            with committed.engine.begin() as c:
                c.execute(
                    text("UPDATE households SET address = '拉取中改' WHERE id = :id"), {"id": hid}
                )
            changed = True
        if not page["has_more"]:
            break
    assert changed
    later = committed.pull("grid_a1", cursor)
    assert [h["id"] for h in later["upserts"]["households"]] == [hid]
    assert later["upserts"]["households"][0]["address"] == "拉取中改"
