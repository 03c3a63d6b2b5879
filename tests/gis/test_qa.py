"""Spatial QA on crafted geometry with known answers. The bad rows are written straight into the
test's session (bypassing the write rules, which would refuse them), then rolled back.

The world (tests/fixtures/world.py) already has one gap (南村's east half, 111.15–111.20 ×
26.00–26.10) and one household in it (C-gap); its grids neither overlap nor leave their villages.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.fixtures.world import (
    COUNTY,
    GRID_A1,
    GRID_A2,
    GRID_C1,
    VILLAGE_A,
    VILLAGE_B,
    VILLAGE_C,
    World,
)


def _qa(client, as_user, check: str, query: str = "", user: str = "county") -> dict:
    response = client.get(f"/api/v1/qa/{check}{query}", headers=as_user(user))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    return response.json()


def _counts(doc: dict) -> dict[str, int]:
    return {u["village_code"]: u["count"] for u in doc["by_unit"]}


def _box_area(session, x0: float, y0: float, x1: float, y1: float) -> float:
    return session.execute(
        text("SELECT ST_Area(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)::geography)"),
        dict(x0=x0, y0=y0, x1=x1, y1=y1),
    ).scalar_one()


def _add_grid(session, world: World, village: str, serial: str, box: tuple) -> None:
    session.execute(
        text(
            "INSERT INTO grids (code, name, village_id, county_code, kind, geom, valid_from)"
            " VALUES (:code, '测试网格', :village_id, :county, 'general',"
            " ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)), current_date)"
        ),
        dict(
            code=village + serial,
            village_id=world.units[village],
            county=COUNTY,
            x0=box[0],
            y0=box[1],
            x1=box[2],
            y1=box[3],
        ),
    )


def test_world_is_clean_but_for_its_known_gap(client, as_user, session, world: World):
    assert (
        _counts(_qa(client, as_user, "grid_overlaps"))
        .keys()
        .isdisjoint({VILLAGE_A, VILLAGE_B, VILLAGE_C})
    )
    gaps = _qa(client, as_user, "grid_gaps")
    assert _counts(gaps).get(VILLAGE_C) == 1 and VILLAGE_A not in _counts(gaps)
    (gap,) = [f for f in gaps["features"] if f["properties"]["village_code"] == VILLAGE_C]
    assert gap["id"] == f"{world.units[VILLAGE_C]}-1"  # a lone polygon is piece 1
    expected = _box_area(session, 111.15, 26.0, 111.2, 26.1)
    assert gap["properties"]["area_m2"] == pytest.approx(expected, rel=1e-3)
    assert gaps["parameters"] == {"min_area": 100.0}
    bigger = _qa(client, as_user, "grid_gaps", f"?min_area={expected * 1.01}")
    assert VILLAGE_C not in _counts(bigger)
    outside = _qa(client, as_user, "households_outside_grids")
    assert _counts(outside).get(VILLAGE_C) == 1 and VILLAGE_A not in _counts(outside)


def test_overlaps_and_grids_leaving_their_village(client, as_user, session, world: World):
    # 东村-003 straddles the line between 东村-001 and 东村-002: two overlaps of 0.01° × 0.01°.
    _add_grid(session, world, VILLAGE_A, "003", (111.04, 26.0, 111.06, 26.01))
    # 西村-002 sticks 0.01° out of 西村 into 乙乡 (and overlaps 西村-001).
    _add_grid(session, world, VILLAGE_B, "002", (111.09, 26.15, 111.11, 26.16))
    overlaps = _qa(client, as_user, "grid_overlaps")
    assert _counts(overlaps)[VILLAGE_A] == 2 and _counts(overlaps)[VILLAGE_B] == 1
    mine = [f for f in overlaps["features"] if f["properties"]["other_code"] == VILLAGE_A + "003"]
    assert {f["properties"]["grid_code"] for f in mine} == {GRID_A1, GRID_A2}
    assert mine[0]["properties"]["area_m2"] == pytest.approx(
        _box_area(session, 111.04, 26.0, 111.05, 26.01), rel=1e-3
    )
    leaving = _qa(client, as_user, "grids_outside_village")
    assert _counts(leaving) == {VILLAGE_B: 1}
    (feature,) = leaving["features"]
    assert feature["properties"]["grid_code"] == VILLAGE_B + "002"
    assert feature["properties"]["area_m2"] == pytest.approx(
        _box_area(session, 111.10, 26.15, 111.11, 26.16), rel=1e-3
    )
    # Scope: 西村's admin does not see 东村's findings.
    assert _counts(_qa(client, as_user, "grid_overlaps", user="village_b")) == {VILLAGE_B: 1}


def test_households_far_from_their_grid(client, as_user, session, world: World):
    # A1-1 at (111.01, 26.01) wrongly filed under 东村-002 (111.05–111.10): 0.04° of longitude.
    session.execute(
        text("UPDATE households SET grid_id = :g WHERE id = :h"),
        dict(g=world.grids[GRID_A2], h=world.households["A1-1"]),
    )
    expected = session.execute(
        text(
            "SELECT ST_Distance(ST_Point(111.01, 26.01, 4326)::geography,"
            " ST_Point(111.05, 26.01, 4326)::geography)"
        )
    ).scalar_one()
    doc = _qa(client, as_user, "households_far_from_grid")
    assert _counts(doc) == {VILLAGE_A: 1}
    (feature,) = doc["features"]
    assert feature["id"] == world.households["A1-1"]
    assert feature["properties"]["distance_m"] == pytest.approx(expected, abs=1)
    assert (
        _qa(client, as_user, "households_far_from_grid", f"?max_distance={expected + 10}")["total"]
        == 0
    )


def test_members_far_from_their_households(client, as_user, session, world: World):
    member = world.members["党员甲"]
    session.execute(
        text("UPDATE party_members SET geom = ST_Point(111.01, 26.01, 4326) WHERE id = :m"),
        dict(m=member),
    )
    for key in ("A1-1", "A2-2"):  # next door, and ~11 km away at (111.09, 26.09)
        session.execute(
            text(
                "INSERT INTO contacts (county_code, village_id, member_id, household_id, role,"
                " valid_from) VALUES (:county, :village, :m, :h, 'secondary', current_date)"
            ),
            dict(
                county=COUNTY,
                village=world.units[VILLAGE_A],
                m=member,
                h=world.households[key],
            ),
        )
    doc = _qa(client, as_user, "members_far_from_households")
    assert _counts(doc) == {VILLAGE_A: 1}
    (feature,) = doc["features"]
    assert feature["properties"]["household_id"] == world.households["A2-2"]
    assert feature["properties"]["distance_m"] > 10_000
    assert feature["geometry"]["type"] == "LineString"


def test_bad_parameters(client, as_user):
    for url in (
        "/api/v1/qa/grid_overlaps?max_distance=5",  # an area check
        "/api/v1/qa/households_far_from_grid?min_area=5",
        "/api/v1/qa/grid_gaps?limit=0",
    ):
        response = client.get(url, headers=as_user("county"))
        assert response.status_code == 422, (url, response.text)
    assert client.get("/api/v1/qa/nonsense", headers=as_user("county")).status_code in (404, 422)


def test_grid_member_sees_only_their_grid(client, as_user, session, world: World):
    _add_grid(session, world, VILLAGE_A, "003", (111.04, 26.0, 111.06, 26.01))
    doc = _qa(client, as_user, "grid_overlaps", user="grid_a1")
    # Only the pair whose first grid is 东村-001 (the caller's grid) is in scope.
    assert [f["properties"]["grid_code"] for f in doc["features"]] == [GRID_A1]
    assert GRID_C1 not in str(doc)
