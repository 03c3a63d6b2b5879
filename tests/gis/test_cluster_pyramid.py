"""Household cluster tiles are summed from the cluster pyramid (household_clusters, migration
0014): the same features and counts as grouping every point of the tile per request, for each
scope (county, township, village, a grid member's grid), and still after households are
inserted, moved, re-assigned, removed, restored and deleted."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.geo.tiles import ORIGIN_SHIFT, tiles_covering
from gridgov.gis import queries, tiles
from gridgov.gis.layers import HOUSEHOLDS
from tests.fixtures.world import COUNTY, GRID_A1, GRID_A2, VILLAGE_A, VILLAGE_B, World
from tests.gis.tile_helpers import COUNTY_BOX, features, per_request, scope_of, served

CLUSTERED_ZOOMS = range(8, HOUSEHOLDS.cluster_below)  # type: ignore[arg-type]
USERNAMES = ("county", "town_a", "village_a", "village_b", "grid_a1")


def add_households(session: Session, world: World, n: int, seed: float = 0.25) -> None:
    """``n`` random points over the county, most of them in 40 hamlets (so that cells hold many
    points, and some hamlets straddle a cell's or a tile's edge), each in the village and grid
    that cover it (none in 南村's gap; none where no village is)."""
    session.execute(text("SELECT setseed(:seed)"), {"seed": seed})
    session.execute(
        text(
            """
            WITH hamlets AS (
                SELECT h, 111.0 + 0.2 * random() AS lon, 26.0 + 0.2 * random() AS lat
                FROM generate_series(1, 40) h
            ), points AS (
                SELECT CASE WHEN i % 5 = 0
                    THEN ST_Point(111.0 + 0.2 * random(), 26.0 + 0.2 * random(), 4326)
                    ELSE ST_Point(lon + 0.004 * (random() - 0.5), lat + 0.004 * (random() - 0.5),
                                  4326) END AS geom
                FROM generate_series(1, :n) i JOIN hamlets ON hamlets.h = 1 + i % 40
            )
            INSERT INTO households (county_code, village_id, grid_id, head_name, geom)
            SELECT :county, v.id,
                   (SELECT g.id FROM grids g WHERE g.village_id = v.id AND g.valid_to IS NULL
                    AND ST_Covers(g.geom, p.geom) ORDER BY g.code LIMIT 1),
                   '测试户', p.geom
            FROM points p JOIN admin_units v ON v.level = 'village' AND v.valid_to IS NULL
                AND v.county_code = :county AND ST_Covers(v.geom, p.geom)
            """
        ),
        {"n": n, "county": COUNTY},
    )


def clusters(body: bytes) -> list[tuple[int, Any]]:
    found = features(body, "households")
    assert all(f["properties"]["cluster"] is True for f in found)
    return sorted((f["properties"]["count"], repr(f["geometry"])) for f in found)


def assert_pyramid_matches(session: Session, world: World, usernames=USERNAMES) -> int:
    """Every tile over the county at z8–z13, for each user: the same clusters both ways, and
    the counts add up to the user's visible households. Returns the clusters compared."""
    compared = 0
    # Moved households may have left the county: every tile any household lies in.
    x0, y0, x1, y1 = session.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM"
            " (SELECT ST_Extent(geom) AS e FROM households) q"
        )
    ).one()
    box = (min(x0, COUNTY_BOX[0]), min(y0, COUNTY_BOX[1]), max(x1, COUNTY_BOX[2]),
           max(y1, COUNTY_BOX[3]))  # fmt: skip
    for username in usernames:
        scope = scope_of(session, world, username)
        where, params = queries.where_sql(HOUSEHOLDS, scope)
        visible = session.execute(
            text(f"SELECT count(*) FROM households t WHERE {where}"), params
        ).scalar_one()
        for z in CLUSTERED_ZOOMS:
            total = 0
            for x, y in tiles_covering(box, z):
                new = clusters(served(session, scope, "households", z, x, y))
                assert new == clusters(per_request(session, scope, "households", z, x, y)), (
                    username,
                    z,
                    x,
                    y,
                )
                total += sum(count for count, _ in new)
                compared += len(new)
            assert total == visible, (username, z)
    return compared


# The pyramid computed afresh from the households: rows whose count differs from the stored
# one (exactly), or whose sums differ by more than a micrometre per household in the cell
# (sums added in another order round differently in their last bits).
DRIFT_SQL = """
WITH want AS (
    SELECT k.level, k.cx, k.cy, h.village_id, coalesce(h.grid_id, 0) AS grid_id,
           count(*) AS n,
           sum(ST_X(h.geom_3857) + :half - k.cx * k.size) AS sx,
           sum(:half - ST_Y(h.geom_3857) - k.cy * k.size) AS sy
    FROM households h
    CROSS JOIN LATERAL (
        SELECT l.level, 2 * :half / (1 << l.level) AS size,
               floor((ST_X(h.geom_3857) + :half) / (2 * :half / (1 << l.level)))::int AS cx,
               floor((:half - ST_Y(h.geom_3857)) / (2 * :half / (1 << l.level)))::int AS cy
        FROM generate_series(CAST(:first AS int), CAST(:last AS int)) l(level)
    ) k
    WHERE h.removed_at IS NULL
    GROUP BY 1, 2, 3, 4, 5
)
SELECT count(*) FROM want w
FULL JOIN (SELECT * FROM household_clusters WHERE n <> 0) c
    ON (c.level, c.cx, c.cy, c.village_id, c.grid_id)
     = (w.level, w.cx, w.cy, w.village_id, w.grid_id)
WHERE c.n IS DISTINCT FROM w.n::int OR abs(c.sx - w.sx) > 1e-6 * w.n
   OR abs(c.sy - w.sy) > 1e-6 * w.n
"""


def drift(session: Session) -> int:
    first = tiles.CLUSTER_LEVEL_SHIFT
    params = {"half": ORIGIN_SHIFT, "first": first, "last": first + max(CLUSTERED_ZOOMS)}
    return session.execute(text(DRIFT_SQL), params).scalar_one()


def test_the_pyramid_has_a_level_for_every_clustered_zoom(session):
    levels = set(session.scalars(text("SELECT DISTINCT level FROM household_clusters")))
    shift = tiles.CLUSTER_LEVEL_SHIFT
    assert 2**shift == queries.CLUSTER_CELLS
    assert levels == {z + shift for z in range(HOUSEHOLDS.cluster_below)}  # type: ignore[arg-type]
    assert drift(session) == 0


def test_cluster_tiles_match_the_raw_query_for_every_scope(session, world):
    add_households(session, world, 4000)
    session.execute(text("ANALYZE households"))
    assert drift(session) == 0
    assert assert_pyramid_matches(session, world) > 1000


def test_the_pyramid_follows_every_write_of_households(session, world):
    add_households(session, world, 3000)
    ids = "SELECT id FROM households WHERE removed_at IS NULL AND head_name = '测试户'"

    # Moved a little (most stay in their cell, some cross into the next) and a long way.
    session.execute(
        text(
            f"UPDATE households SET geom = ST_Translate(geom, 0.0004, -0.0003)"
            f" WHERE id IN ({ids} AND id % 3 = 0)"
        )
    )
    session.execute(
        text(
            f"UPDATE households SET geom = ST_Translate(geom, -0.03, 0.05)"
            f" WHERE id IN ({ids} AND id % 11 = 0)"
        )
    )
    # Another grid, another village, no grid (the grid edited away).
    session.execute(
        text("UPDATE households SET grid_id = :g WHERE grid_id = :from AND id % 2 = 0"),
        {"g": world.grids[GRID_A2], "from": world.grids[GRID_A1]},
    )
    session.execute(
        text(f"UPDATE households SET village_id = :v WHERE id IN ({ids} AND id % 13 = 0)"),
        {"v": world.units[VILLAGE_B]},
    )
    session.execute(
        text(f"UPDATE households SET grid_id = NULL WHERE id IN ({ids} AND id % 17 = 0)")
    )
    # Removed, some restored, some deleted for good, a few inserted one by one.
    session.execute(
        text(f"UPDATE households SET removed_at = now() WHERE id IN ({ids} AND id % 5 = 1)")
    )
    session.execute(
        text("UPDATE households SET removed_at = NULL WHERE removed_at IS NOT NULL AND id % 4 = 0")
    )
    session.execute(text(f"DELETE FROM households WHERE id IN ({ids} AND id % 19 = 0)"))
    for lon, lat in ((111.03, 26.04), (111.031, 26.041), (111.07, 26.16)):
        session.execute(
            text(
                "INSERT INTO households (county_code, village_id, grid_id, head_name, geom)"
                " VALUES (:county, :v, :g, '测试户', ST_Point(:lon, :lat, 4326))"
            ),
            {"county": COUNTY, "v": world.units[VILLAGE_A], "g": world.grids[GRID_A1]}
            | {"lon": lon, "lat": lat},
        )
    assert drift(session) == 0
    assert assert_pyramid_matches(session, world) > 0


def test_a_statement_that_moves_no_household_rewrites_no_cluster(session, world):
    add_households(session, world, 500)
    snapshot = (
        "SELECT array_agg(ctid::text ORDER BY level, cx, cy, village_id, grid_id)"
        " FROM household_clusters"
    )
    before = session.execute(text(snapshot)).scalar_one()
    session.execute(text("UPDATE households SET size = size + 1, tags = '{低保户}'"))
    assert session.execute(text(snapshot)).scalar_one() == before


def test_an_emptied_cell_draws_no_cluster(session, world):
    """Every household of 东村 removed: its cells keep rows with a count of 0, and no tile
    shows a cluster of 0 households."""
    add_households(session, world, 1000)
    session.execute(
        text("UPDATE households SET removed_at = now() WHERE village_id = :v"),
        {"v": world.units[VILLAGE_A]},
    )
    zero = session.execute(
        text("SELECT count(*), max(abs(sx)) FROM household_clusters WHERE n = 0")
    ).one()
    assert zero[0] > 0 and zero[1] == 0
    assert assert_pyramid_matches(session, world, ("county", "village_a")) > 0
    scope = scope_of(session, world, "village_a")
    for z in CLUSTERED_ZOOMS:
        for x, y in tiles_covering(COUNTY_BOX, z):
            assert served(session, scope, "households", z, x, y) == b""


def test_the_households_written_by_an_import_are_counted(session, world):
    """The import path (households_service.write_households: staged, one INSERT) and a re-import
    moving them (one UPDATE)."""
    from gridgov.households import service as households_service
    from gridgov.households.service import HouseholdRow

    rows = [
        HouseholdRow(i, f"户主{i}", 111.001 + 0.0009 * (i % 100), 26.001 + 0.0009 * (i // 100))
        for i in range(2000)
    ]
    for row in rows:
        row.external_id, row.village_code = f"IMP{row.idx}", VILLAGE_A
    result = households_service.write_households(session, None, rows, county_code=COUNTY)
    assert not result.errors and len(result.ids) == 2000
    assert drift(session) == 0
    for row, id_ in zip(rows, result.ids, strict=True):
        row.target_id, row.lon = id_, row.lon + 0.0005  # type: ignore[operator]
    result = households_service.write_households(session, None, rows, county_code=COUNTY)
    assert not result.errors
    assert drift(session) == 0
    assert assert_pyramid_matches(session, world, ("county", "village_a", "grid_a1")) > 0


@pytest.mark.parametrize("username", ["county", "village_a", "grid_a1"])
def test_cluster_tiles_through_the_route(client, as_user, session, world, username):
    """The tile route serves the pyramid's tiles (as rendered from the raw query)."""
    add_households(session, world, 800)
    scope = scope_of(session, world, username)
    for z in (8, 11, 13):
        for x, y in tiles_covering(COUNTY_BOX, z):
            response = client.get(f"/tiles/households/{z}/{x}/{y}.mvt", headers=as_user(username))
            raw = per_request(session, scope, "households", z, x, y)
            assert response.status_code == (200 if raw else 204)
            assert clusters(response.content) == clusters(raw)
