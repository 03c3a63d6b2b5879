"""derive_grids: the grid of a household is the lowest-coded grid of its own village covering
its point; outside every such grid it is flagged; only households whose result changes are
written. Driven straight through the service on the shared world (rolled back per test)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.households.service import derive_grids
from tests.fixtures.world import GRID_A1, GRID_A2, GRID_C1, VILLAGE_A, VILLAGE_B, VILLAGE_C


def move(session: Session, household_id: int, lon: float, lat: float) -> None:
    session.execute(
        text("UPDATE households SET geom = ST_SetSRID(ST_MakePoint(:x, :y), 4326) WHERE id = :id"),
        {"x": lon, "y": lat, "id": household_id},
    )


def state(session: Session, household_id: int) -> dict[str, Any]:
    row = session.execute(
        text(
            "SELECT h.grid_id, g.code, h.flags, h.updated_at = now() AS written "
            "FROM households h LEFT JOIN grids g ON g.id = h.grid_id WHERE h.id = :id"
        ),
        {"id": household_id},
    ).one()
    return dict(row._mapping)


def villages(world, *codes: str) -> list[int]:
    return [world.units[c] for c in codes]


def test_consistent_households_are_not_written(session, world):
    assert derive_grids(session, village_ids=villages(world, VILLAGE_A, VILLAGE_B, VILLAGE_C)) == 0
    written = session.scalar(text("SELECT count(*) FROM households WHERE updated_at = now()"))
    assert written == 0


@pytest.mark.parametrize("swap_codes", [False, True])
def test_point_on_a_shared_edge_takes_the_lowest_code(session, world, swap_codes):
    # 东村 grids 001 | 002 meet at lon 111.05. Swapping their codes makes the lowest code the
    # grid with the higher id, so neither id order nor scan order can pass for "lowest code".
    a1, a2 = world.grids[GRID_A1], world.grids[GRID_A2]
    if swap_codes:
        for grid_id, code in ((a1, VILLAGE_A + "003"), (a2, GRID_A1), (a1, GRID_A2)):
            session.execute(
                text("UPDATE grids SET code = :code WHERE id = :id"), {"code": code, "id": grid_id}
            )
    hh = world.households["A1-3"]
    move(session, hh, 111.05, 26.05)
    derive_grids(session, village_ids=villages(world, VILLAGE_A))
    assert state(session, hh)["grid_id"] == (a2 if swap_codes else a1)


def test_only_a_grid_of_the_households_own_village_counts(session, world):
    # A 西村 household whose point lies in 东村's grid 001 is outside every grid of 西村, even
    # when both villages are re-derived together.
    hh = world.households["B1-1"]
    move(session, hh, 111.02, 26.03)
    assert derive_grids(session, village_ids=villages(world, VILLAGE_A, VILLAGE_B)) == 1
    s = state(session, hh)
    assert s["grid_id"] is None and s["flags"] == ["outside_grid"] and s["written"]


def test_outside_flag_is_cleared_and_set_again_keeping_other_flags(session, world):
    hh = world.households["C-gap"]
    session.execute(
        text("UPDATE households SET flags = array_append(flags, 'qa_check') WHERE id = :id"),
        {"id": hh},
    )
    move(session, hh, 111.12, 26.06)  # into 南村 grid 001
    assert derive_grids(session, village_ids=villages(world, VILLAGE_C)) == 1
    s = state(session, hh)
    assert s["code"] == GRID_C1 and s["flags"] == ["qa_check"]

    move(session, hh, 111.18, 26.05)  # back into the gap
    assert derive_grids(session, village_ids=villages(world, VILLAGE_C)) == 1
    s = state(session, hh)
    assert s["grid_id"] is None and sorted(s["flags"]) == ["outside_grid", "qa_check"]


def test_only_changed_households_are_written(session, world):
    moved, stale = world.households["A1-1"], world.households["A2-1"]
    move(session, moved, 111.07, 26.03)  # from grid 001 into 002
    session.execute(
        text("UPDATE households SET grid_id = :g WHERE id = :id"),
        {"g": world.grids[GRID_A1], "id": stale},  # a wrong grid left behind
    )
    session.execute(text("UPDATE households SET updated_at = now() - interval '1 day'"))
    assert derive_grids(session, village_ids=villages(world, VILLAGE_A, VILLAGE_B)) == 2
    assert state(session, moved)["code"] == GRID_A2
    assert state(session, stale)["code"] == GRID_A2
    written = session.scalars(text("SELECT id FROM households WHERE updated_at = now()")).all()
    assert sorted(written) == sorted([moved, stale])


def test_removed_households_and_other_villages_are_left_alone(session, world):
    removed, other = world.households["A1-4"], world.households["C1-1"]
    session.execute(
        text("UPDATE households SET removed_at = now() WHERE id = :id"), {"id": removed}
    )
    move(session, removed, 111.07, 26.08)
    move(session, other, 111.18, 26.05)  # 南村's gap, but 南村 is not re-derived
    assert derive_grids(session, village_ids=villages(world, VILLAGE_A)) == 0
    assert state(session, removed)["code"] == GRID_A1
    assert state(session, other)["code"] == GRID_C1


def test_no_villages_is_a_no_op(session):
    assert derive_grids(session, village_ids=[]) == 0
