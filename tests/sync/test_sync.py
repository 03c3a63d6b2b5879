"""GET /api/v1/sync: upserts and tombstones after a cursor, never skipping a change."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests.fixtures.world import GRID_A1, GRID_A2


def ids(page: dict, kind: str, what: str = "upserts") -> list[int]:
    items = page[what][kind]
    return sorted(i if isinstance(i, int) else i["id"] for i in items)


def test_first_pull_is_everything_in_scope_in_pages(committed):
    w = committed.world
    grid_households = sorted(w.households[k] for k in ("A1-1", "A1-2", "A1-3", "A1-4"))
    page = committed.pull("grid_a1")
    assert page["reset"] is False and page["has_more"] is False
    assert ids(page, "grids") == [w.grids[GRID_A1]]
    assert page["upserts"]["grids"][0]["boundary"]["type"] == "MultiPolygon"
    assert set(grid_households) <= set(ids(page, "households"))
    assert all(h["grid_id"] == w.grids[GRID_A1] for h in page["upserts"]["households"])
    assert page["due"] is not None  # the caller's due list comes with the last page
    # the same in pages of two changes
    seen: set[int] = set()
    cursor, pages = None, 0
    while True:
        p = committed.pull("grid_a1", cursor, limit=2)
        pages += 1
        seen |= set(ids(p, "households"))
        cursor = p["next"]
        if not p["has_more"]:
            break
    assert pages > 2 and seen == set(ids(page, "households"))


def test_nothing_new_then_one_change(committed):
    w = committed.world
    cursor = committed.drain("grid_a1")
    empty = committed.pull("grid_a1", cursor)
    assert ids(empty, "households") == [] and empty["tombstones"]["households"] == []
    with committed.engine.begin() as c:
        c.execute(
            text("UPDATE households SET address = '新地址' WHERE id = :id"),
            {"id": w.households["A1-1"]},
        )
    page = committed.pull("grid_a1", cursor)
    assert ids(page, "households") == [w.households["A1-1"]]
    assert page["upserts"]["households"][0]["address"] == "新地址"
    # another village's change is not the grid member's business
    with committed.engine.begin() as c:
        c.execute(
            text("UPDATE households SET address = '别处' WHERE id = :id"),
            {"id": w.households["B1-1"]},
        )
    assert ids(committed.pull("grid_a1", page["next"]), "households") == []


def test_household_leaving_the_scope_is_a_tombstone(committed):
    w = committed.world
    hid = w.households["A1-4"]
    grid_cursor = committed.drain("grid_a1")
    village_cursor = committed.drain("village_a")
    with committed.engine.begin() as c:  # moved into grid 002 of the same village
        c.execute(
            text(
                "UPDATE households SET grid_id = :g,"
                " geom = ST_SetSRID(ST_MakePoint(111.07, 26.08), 4326) WHERE id = :id"
            ),
            {"g": w.grids[GRID_A2], "id": hid},
        )
    page = committed.pull("grid_a1", grid_cursor)
    assert ids(page, "households", "tombstones") == [hid]
    assert ids(page, "households") == []
    village = committed.pull("village_a", village_cursor)
    assert ids(village, "households") == [hid]  # still in the village: an upsert there
    assert village["upserts"]["households"][0]["grid_id"] == w.grids[GRID_A2]
    with committed.engine.begin() as c:
        c.execute(text("UPDATE households SET removed_at = now() WHERE id = :id"), {"id": hid})
    gone = committed.pull("village_a", village["next"])
    assert ids(gone, "households", "tombstones") == [hid]


def test_uploaded_visits_arrive(committed):
    w = committed.world
    cursor = committed.drain("grid_a1")
    item = {
        "client_uuid": str(uuid.uuid4()),
        "household_id": w.households["A1-1"],
        "visited_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "location": {"type": "Point", "coordinates": [111.01, 26.01]},
        "accuracy_m": 5,
    }
    r = committed.client.post(
        "/api/v1/visits/batch", json={"visits": [item]}, headers=committed.headers("grid_a1")
    )
    assert r.json()["created"] == 1
    page = committed.pull("grid_a1", cursor)
    assert [v["client_uuid"] for v in page["upserts"]["visits"]] == [item["client_uuid"]]
    assert w.households["A1-1"] not in [d["household_id"] for d in page["due"]]


def test_a_writer_open_across_a_pull_is_not_skipped(committed):
    """The sequence-gap bug: T1 writes first but commits last; T2 writes and commits between.
    A cursor handed out past T2's change would skip T1's for ever."""
    w = committed.world
    cursor = committed.drain("grid_a1")
    early, late = w.households["A1-2"], w.households["A1-3"]
    slow = committed.engine.connect()
    slow_tx = slow.begin()
    try:
        slow.execute(text("UPDATE households SET address = '慢事务' WHERE id = :id"), {"id": early})
        with committed.engine.begin() as fast:
            fast.execute(
                text("UPDATE households SET address = '快事务' WHERE id = :id"), {"id": late}
            )
        during = committed.pull("grid_a1", cursor)
        # T2 has committed, but handing it out now would move the cursor past T1: withheld.
        assert ids(during, "households") == []
        slow_tx.commit()
    finally:
        slow.close()
    after = committed.pull("grid_a1", during["next"])
    assert ids(after, "households") == sorted([early, late])
    addresses = {h["id"]: h["address"] for h in after["upserts"]["households"]}
    assert addresses == {early: "慢事务", late: "快事务"}


def test_unusable_cursors_ask_for_a_reset(committed):
    garbage = committed.pull("grid_a1", "not-a-cursor")
    assert garbage["reset"] is True and garbage["next"] is None
    others = committed.drain("village_a")
    assert committed.pull("grid_a1", others)["reset"] is True
    assert committed.pull("village_a", others)["reset"] is False


def test_scope_change_sends_tombstones_then_the_new_scope(committed):
    w = committed.world
    cursor = committed.drain("grid_a1")
    with committed.engine.connect() as c:
        in_a1 = set(
            c.scalars(text("SELECT id FROM households WHERE grid_id = :g"), {"g": w.grids[GRID_A1]})
        )
    assert in_a1
    with committed.engine.begin() as c:
        c.execute(
            text("UPDATE users SET grid_id = :g WHERE id = :u"),
            {"g": w.grids[GRID_A2], "u": w.users["grid_a1"]},
        )
    try:
        moved = committed.pull("grid_a1", cursor)
        assert moved["reset"] is False and moved["has_more"] is True
        assert moved["tombstones"]["grids"] == [w.grids[GRID_A1]]
        assert set(moved["tombstones"]["households"]) == in_a1
        assert ids(moved, "households") == []
        # then the new grid, from the start of the log
        seen_grids, seen_households, cursor = set(), set(), moved["next"]
        while True:
            page = committed.pull("grid_a1", cursor)
            seen_grids |= set(ids(page, "grids"))
            seen_households |= set(ids(page, "households"))
            cursor = page["next"]
            if not page["has_more"]:
                break
        assert seen_grids == {w.grids[GRID_A2]}
        assert w.households["A2-1"] in seen_households
        assert not seen_households & in_a1
    finally:
        with committed.engine.begin() as c:
            c.execute(
                text("UPDATE users SET grid_id = :g WHERE id = :u"),
                {"g": w.grids[GRID_A1], "u": w.users["grid_a1"]},
            )


def test_a_long_transaction_in_another_database_does_not_stall_sync(committed, engine):
    """pg_snapshot_xmin is cluster-wide; the horizon discounts other databases' writers."""
    w = committed.world
    cursor = committed.drain("grid_a1")
    other = engine.connect()  # the shared run database: another database on the same server
    other_tx = other.begin()
    try:
        other.execute(text("SELECT pg_current_xact_id()"))  # holds an xid, like any writer
        with committed.engine.begin() as c:
            c.execute(
                text("UPDATE households SET address = '照常同步' WHERE id = :id"),
                {"id": w.households["A1-1"]},
            )
        page = committed.pull("grid_a1", cursor)
        assert ids(page, "households") == [w.households["A1-1"]]
    finally:
        other_tx.rollback()
        other.close()


def test_a_limit_above_the_page_maximum_is_refused_naming_the_field(committed, monkeypatch):
    """As every list's ``limit``: above GRIDGOV_LIMITS__PAGE_MAX a 422, not a shorter page."""
    from gridgov.config import get_settings

    headers = committed.headers("grid_a1")
    r = committed.client.get("/api/v1/sync", params={"limit": 1001}, headers=headers)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"] == [
        {"loc": ["query", "limit"], "msg": "每页最多 1000 条", "code": "limit_too_large"}
    ]
    page = committed.pull("grid_a1", limit=1000)
    assert page["reset"] is False and page["upserts"]["households"]
    # The maximum is the setting's, and the default page never exceeds it.
    monkeypatch.setattr(get_settings().limits, "page_max", 2)
    r = committed.client.get("/api/v1/sync", params={"limit": 3}, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["msg"] == "每页最多 2 条"
    first = committed.pull("grid_a1")
    assert first["has_more"] is True
    assert sum(len(v) for v in first["upserts"].values()) <= 2
    # The document says so.
    params = committed.client.get("/openapi.json").json()["paths"]["/api/v1/sync"]["get"]
    limit = next(p for p in params["parameters"] if p["name"] == "limit")
    assert "GRIDGOV_LIMITS__PAGE_MAX" in limit["description"] and "422" in limit["description"]
