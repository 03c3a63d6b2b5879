"""Layer versions kept in memory by LISTEN/NOTIFY (gridgov/gis/versions.py): the same answer
as asking the database, and a committed edit is seen within moments."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from gridgov.config import get_settings
from gridgov.gis import queries
from gridgov.gis.layers import GRIDS, HOUSEHOLDS
from gridgov.gis.versions import LayerVersions


@pytest.fixture
def versions(monkeypatch) -> Iterator[LayerVersions]:
    monkeypatch.setattr(get_settings().maps, "listen_for_changes", True)
    listener = LayerVersions()
    yield listener
    listener.stop()


def from_database(engine: Engine, layer) -> str:
    with engine.connect() as c:
        return str(c.execute(text(queries.version_sql(layer))).scalar_one())


def wait_for(predicate, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the listener did not catch up"
        time.sleep(0.01)


def test_listened_versions_equal_the_database_and_follow_commits(engine, versions):
    assert versions.version(GRIDS.tables) is None  # not listening yet: callers ask the database
    wait_for(lambda: versions.version(GRIDS.tables) is not None)
    assert versions.version(GRIDS.tables) == from_database(engine, GRIDS)
    assert versions.version(HOUSEHOLDS.tables) == from_database(engine, HOUSEHOLDS)

    before = versions.version(GRIDS.tables)
    households_before = versions.version(("households",))
    with engine.begin() as c:  # a statement touching no row still notes a change
        c.execute(text("UPDATE grids SET name = name WHERE false"))
    wait_for(lambda: versions.version(GRIDS.tables) != before)
    assert versions.version(GRIDS.tables) == from_database(engine, GRIDS)
    assert versions.version(("households",)) == households_before  # only what changed

    with engine.connect() as c:  # rolled back: no notification, no new version
        c.execute(text("UPDATE grids SET name = name WHERE false"))
        c.rollback()
    refreshes = versions.refreshes
    time.sleep(0.3)
    assert versions.refreshes == refreshes
    assert versions.version(GRIDS.tables) == from_database(engine, GRIDS)


def test_compaction_keeps_one_note_per_table_and_never_reuses_a_version(engine, versions):
    from sqlalchemy.orm import Session

    from gridgov.gis.service import compact_changes

    wait_for(lambda: versions.version(GRIDS.tables) is not None)
    for _ in range(3):
        with engine.begin() as c:
            c.execute(text("UPDATE grids SET name = name WHERE false"))
    seen = {from_database(engine, GRIDS)}
    with Session(engine) as s, s.begin():
        assert compact_changes(s) >= 2
    with engine.connect() as c:
        per_table = c.execute(
            text("SELECT table_name, count(*) FROM layer_changes GROUP BY table_name")
        ).all()
    assert per_table and all(n == 1 for _, n in per_table)
    after = from_database(engine, GRIDS)
    assert after not in seen  # fewer notes, but a new oldest id: a new version string
    wait_for(lambda: versions.version(GRIDS.tables) == after)  # listeners re-read at once
    with engine.begin() as c:
        c.execute(text("UPDATE grids SET name = name WHERE false"))
    assert from_database(engine, GRIDS) not in seen | {after}


def test_without_the_listener_the_database_is_asked(engine):
    listener = LayerVersions()  # listening is off in the test settings
    assert listener.version(GRIDS.tables) is None
    time.sleep(0.1)
    assert listener.version(GRIDS.tables) is None
