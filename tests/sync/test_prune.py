"""Pruning the sync change log: superseded changes go unnoticed by every cursor; old
tombstones go too, and a cursor from before them is told to reset."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.sync.service import prune


def ids(page: dict, kind: str, what: str = "upserts") -> list[int]:
    return sorted(i if isinstance(i, int) else i["id"] for i in page[what][kind])


def change_rows(committed, household_id: int) -> int:
    with committed.engine.connect() as c:
        return c.scalar(
            text(
                "SELECT count(*) FROM sync_changes WHERE entity = 'household' AND entity_id = :id"
            ),
            {"id": household_id},
        )


def run_prune(committed, **kwargs):
    with Session(committed.engine) as s, s.begin():
        return prune(s, **kwargs)


def test_superseded_changes_go_and_no_cursor_notices(committed):
    w = committed.world
    hid = w.households["A1-2"]
    old_cursor = committed.drain("village_a")
    with committed.engine.begin() as c:
        for address in ("一改", "二改", "三改"):
            c.execute(
                text("UPDATE households SET address = :a WHERE id = :id"),
                {"a": address, "id": hid},
            )
    assert change_rows(committed, hid) >= 4  # logged at upgrade/insert, then three updates

    result = run_prune(committed)
    assert result.superseded >= 3 and result.tombstones == 0
    assert change_rows(committed, hid) == 1  # one row per entity and place is left

    page = committed.pull("village_a", old_cursor)
    assert page["reset"] is False
    assert ids(page, "households") == [hid]
    assert page["upserts"]["households"][0]["address"] == "三改"
    fresh = committed.pull("village_a")  # a first pull still gets everything
    assert hid in ids(fresh, "households") and fresh["reset"] is False


def test_old_tombstones_go_and_older_cursors_reset(committed):
    w = committed.world
    gone, kept = w.households["A1-3"], w.households["A1-1"]
    before_removal = committed.drain("grid_a1")
    with committed.engine.begin() as c:
        c.execute(text("UPDATE households SET removed_at = now() WHERE id = :id"), {"id": gone})
    after_removal = committed.drain("grid_a1", before_removal)

    # Recent tombstones stay: a phone a few days behind still learns of the removal.
    assert run_prune(committed).tombstones == 0
    assert ids(committed.pull("grid_a1", before_removal), "households", "tombstones") == [gone]

    with committed.engine.begin() as c:  # everything was logged long ago
        c.execute(text("UPDATE sync_changes SET logged_at = now() - interval '120 days'"))
        live_rows = c.scalar(text("SELECT count(*) FROM sync_changes"))
    result = run_prune(committed, retention_days=90)
    assert result.tombstones == 1  # only the removed household's; live entities keep theirs
    assert change_rows(committed, gone) == 0 and change_rows(committed, kept) == 1
    with committed.engine.connect() as c:
        assert c.scalar(text("SELECT count(*) FROM sync_changes")) == live_rows - 1
        assert tuple(c.execute(text("SELECT xid, seq FROM sync_horizon")).one()) == result.horizon
    assert result.horizon > (0, 0)

    stale = committed.pull("grid_a1", before_removal)
    assert stale["reset"] is True and stale["next"] is None  # it might have missed the removal
    current = committed.pull("grid_a1", after_removal)
    assert current["reset"] is False
    fresh = committed.pull("grid_a1")
    assert fresh["reset"] is False
    assert kept in ids(fresh, "households") and gone not in ids(fresh, "households")

    assert run_prune(committed).tombstones == 0  # a second run finds nothing more
