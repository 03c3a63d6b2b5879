"""Vector tiles: decoded with mapbox-vector-tile; clusters never drop households; 304, 204;
an edit changes the layer version, so the ETag and the cached tile change with it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from gridgov.dashboard import rollups
from gridgov.geo.tiles import lonlat_to_tile, tiles_covering
from tests.fixtures.world import COUNTY, GRID_A1, HOUSEHOLDS, World

mvt = pytest.importorskip("mapbox_vector_tile")

COUNTY_BOX = (111.0, 26.0, 111.2, 26.2)


def decode(body: bytes) -> dict[str, Any]:
    return mvt.decode(body)


def household_tiles(z: int) -> set[tuple[int, int]]:
    return {lonlat_to_tile(lon, lat, z) for _, _, lon, lat, _ in HOUSEHOLDS}


def layer_features(
    client: Any, headers: dict[str, str], layer: str, z: int, tiles: Any = None
) -> list[dict]:
    features = []
    for x, y in tiles if tiles is not None else tiles_covering(COUNTY_BOX, z):
        response = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt", headers=headers)
        assert response.status_code in (200, 204), response.text
        if response.status_code == 200:
            assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
            features += decode(response.content)[layer]["features"]
    return features


def test_anonymous_gets_401(client):
    assert client.get("/tiles/grids/12/3310/1748.mvt").status_code == 401


def test_grid_tiles_carry_attributes(client, as_user, session, world: World):
    rollups.refresh(session)  # the counts are the dashboard's (dash_status)
    features = layer_features(client, as_user("county"), "grids", 12)
    by_id = {f["id"]: f["properties"] for f in features}
    assert set(by_id) == set(world.grids.values())
    a1 = by_id[world.grids[GRID_A1]]
    assert a1["code"] == GRID_A1 and a1["name"] == "东村第一网格"
    assert a1["household_count"] == 4 and a1["kind"] == "general"
    assert "updated_at" not in a1


def test_grid_tiles_follow_scope(client, as_user, world: World):
    features = layer_features(client, as_user("grid_a1"), "grids", 12)
    assert {f["id"] for f in features} == {world.grids[GRID_A1]}


def test_households_at_high_zoom_are_single_and_masked(client, as_user, world: World):
    features = layer_features(client, as_user("county"), "households", 14, household_tiles(14))
    assert {f["id"] for f in features} == set(world.households.values())
    props = next(f["properties"] for f in features if f["id"] == world.households["A1-3"])
    assert props["tags"] == "高风险老人,脱贫户" and props["size"] == 3
    assert not {"head_name", "phone", "id_number", "address"} & set(props)


@pytest.mark.parametrize("z", [6, 10, 12, 13])
def test_households_below_min_zoom_are_clustered_never_dropped(client, as_user, z):
    # Every tile over the county up to z12; at z13 the tiles holding a household.
    tiles = household_tiles(z) if z == 13 else None
    features = layer_features(client, as_user("county"), "households", z, tiles)
    assert features and all(f["properties"]["cluster"] is True for f in features)
    assert sum(f["properties"]["count"] for f in features) == len(HOUSEHOLDS)


def test_empty_tile_is_204(client, as_user):
    response = client.get("/tiles/grids/10/0/0.mvt", headers=as_user("county"))
    assert response.status_code == 204 and response.content == b""
    assert response.headers["etag"]


def test_etag_and_304(client, as_user):
    x, y = lonlat_to_tile(111.02, 26.02, 12)
    url = f"/tiles/grids/12/{x}/{y}.mvt"
    first = client.get(url, headers=as_user("county"))
    assert first.status_code == 200
    etag = first.headers["etag"]
    again = client.get(url, headers={**as_user("county"), "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get(url, headers={**as_user("village_a"), "If-None-Match": etag})
    assert other.status_code == 200  # another scope, another tile


def test_an_edit_invalidates_the_tile(client, as_user, session, world: World):
    x, y = lonlat_to_tile(111.01, 26.01, 15)
    url = f"/tiles/households/15/{x}/{y}.mvt"
    first = client.get(url, headers=as_user("county"))
    (before,) = [
        f
        for f in decode(first.content)["households"]["features"]
        if f["id"] == world.households["A1-1"]
    ]
    assert before["properties"]["size"] == 3
    session.execute(
        text("UPDATE households SET size = 7 WHERE id = :id"), {"id": world.households["A1-1"]}
    )
    second = client.get(url, headers={**as_user("county"), "If-None-Match": first.headers["etag"]})
    assert second.status_code == 200 and second.headers["etag"] != first.headers["etag"]
    (after,) = [
        f
        for f in decode(second.content)["households"]["features"]
        if f["id"] == world.households["A1-1"]
    ]
    assert after["properties"]["size"] == 7


def test_tilejson(client, as_user):
    doc = client.get("/tiles/households/tilejson.json", headers=as_user("village_a")).json()
    assert doc["tiles"][0].endswith("/tiles/households/{z}/{x}/{y}.mvt")
    assert doc["bounds"] == [111.01, 26.01, 111.09, 26.09]
    assert doc["vector_layers"][0]["fields"]["count"] == "Number"


def test_bad_tiles(client, as_user):
    h = as_user("county")
    assert client.get("/tiles/grids/2/4/0.mvt", headers=h).status_code == 404
    assert client.get("/tiles/grids/23/0/0.mvt", headers=h).status_code == 422
    assert client.get("/tiles/nope/1/0/0.mvt", headers=h).status_code == 422
    assert client.get("/tiles/grids/1/0/0.mvt?x=1", headers=h).status_code == 400


def test_a_late_commit_of_an_earlier_change_still_moves_the_version(engine, world: World):
    """Writer 1 notes its change first but commits last: the version must move on its commit."""
    import psycopg

    from gridgov.config import get_settings
    from gridgov.gis.layers import LAYERS
    from gridgov.gis.queries import version_sql

    url = get_settings().db.libpq_url
    noop = "UPDATE households SET size = size WHERE false"  # fires the statement trigger only
    with (
        psycopg.connect(url) as first,
        psycopg.connect(url) as second,
        psycopg.connect(url, autocommit=True) as reader,
    ):
        first.execute(noop)
        second.execute(noop)
        second.commit()
        version_sql_text = version_sql(LAYERS["households"])
        between = reader.execute(version_sql_text).fetchone()[0]
        first.commit()
        after = reader.execute(version_sql_text).fetchone()[0]
    assert between != after


def grid_a1(client, headers, world: World) -> tuple[str, dict[str, Any]]:
    x, y = lonlat_to_tile(111.02, 26.02, 12)
    response = client.get(f"/tiles/grids/12/{x}/{y}.mvt", headers=headers)
    (a1,) = [
        f for f in decode(response.content)["grids"]["features"] if f["id"] == world.grids[GRID_A1]
    ]
    return response.headers["etag"], a1["properties"]


def test_grid_counts_follow_the_rollups_and_move_the_tile_version(
    client, as_user, session, world: World
):
    """The grids' counts are read from dash_status: a household removed shows once the
    refresher has run, and that refresh (not the edit alone) gives the tile a new ETag."""
    rollups.refresh(session)
    etag, a1 = grid_a1(client, as_user("county"), world)
    assert (a1["household_count"], a1["covered_count"]) == (4, 0)
    session.execute(
        text("UPDATE households SET removed_at = now() WHERE id = :id"),
        {"id": world.households["A1-1"]},
    )
    rollups.refresh(session)
    moved, a1 = grid_a1(client, as_user("county"), world)
    assert a1["household_count"] == 3 and moved != etag


def test_a_refresh_that_moves_no_grid_count_keeps_the_grid_tiles(
    client, as_user, session, world: World
):
    """Visits and issues are refreshed every few seconds; they never change a grid's counts,
    so the grid tiles (and their cache) stay valid."""
    rollups.refresh(session)
    etag, _ = grid_a1(client, as_user("county"), world)
    rollups.note_all(session, COUNTY)  # every village recomputed, nothing changed
    assert rollups.refresh(session).villages > 0
    assert grid_a1(client, as_user("county"), world)[0] == etag
