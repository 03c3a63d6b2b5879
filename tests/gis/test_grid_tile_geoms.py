"""Grid tiles below z13 read the geometry prepared per zoom (grid_tile_geoms, migration 0013):
the same features with the same properties as simplifying and clipping per request, and the
same geometry (required: within one MVT unit); the table follows every write of grids."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.geo.tiles import ORIGIN_SHIFT, lonlat_to_tile, tiles_covering
from gridgov.gis.layers import GRIDS
from tests.fixtures.world import COUNTY, VILLAGE_C, World
from tests.gis.tile_helpers import COUNTY_BOX, features, per_request, scope_of, served, shape

ZOOMS = range(GRIDS.tile_geoms.below)  # type: ignore[union-attr]

# What every current grid's rows must hold, computed afresh; the count of rows that differ
# (missing, left over, or with other geometry) from grid_tile_geoms.
STALE_SQL = """
WITH want AS (
    SELECT z.zoom, g.id AS grid_id,
           ST_Simplify(g.geom_3857, 2 * :half / (1 << z.zoom) / 4096, true) AS geom
    FROM grids g CROSS JOIN generate_series(0, CAST(:last AS int)) AS z(zoom)
    WHERE g.valid_to IS NULL
)
SELECT count(*) FROM want w FULL JOIN grid_tile_geoms s
    ON s.zoom = w.zoom AND s.grid_id = w.grid_id
WHERE s.grid_id IS NULL OR w.grid_id IS NULL OR s.geom IS DISTINCT FROM w.geom
   OR s.tile_geom IS DISTINCT FROM ST_SetSRID(ST_AsMVTGeom(w.geom,
        ST_MakeEnvelope(-:half, -:half, :half, :half, 3857), 4096 << w.zoom, 0, false), 0)
"""


def stale(session: Session) -> int:
    params = {"half": ORIGIN_SHIFT, "last": max(ZOOMS)}
    return session.execute(text(STALE_SQL), params).scalar_one()


def ragged_ring(rng: np.random.Generator, lon: float, lat: float, radius: float, n: int):
    """A simple ring: a noisy circle of ``n`` vertices (radius in degrees)."""
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    r = radius * rng.uniform(0.6, 1.0, n)
    return list(zip(lon + r * np.cos(angles), lat + r * np.sin(angles), strict=True))


def add_ragged_grids(session: Session, world: World, count: int = 60, seed: int = 5) -> list[int]:
    """Irregular grids all over the county (plain SQL: only their tiles matter here, not the
    write rules): 40–400 vertices, from a few metres (collapsed at low zooms) to ~4 km across,
    some with a hole, some in two parts; written in one statement as an import does."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        lon = rng.uniform(COUNTY_BOX[0], COUNTY_BOX[2])
        lat = rng.uniform(COUNTY_BOX[1], COUNTY_BOX[3])
        radius = float(np.exp(rng.uniform(math.log(0.00004), math.log(0.02))))
        n = int(rng.integers(40, 400))
        outer = ragged_ring(rng, lon, lat, radius, n)
        holes = [ragged_ring(rng, lon, lat, radius * 0.3, 30)[::-1]] if i % 5 == 0 else []
        parts = [shapely.Polygon(outer, holes)]
        if i % 7 == 0:
            parts.append(shapely.Polygon(ragged_ring(rng, lon + 3 * radius, lat, radius, n)))
        geom = shapely.MultiPolygon(parts)
        assert geom.is_valid
        rows.append({"code": f"{VILLAGE_C}{100 + i:03d}", "wkt": geom.wkt})
    values = ", ".join(
        f"(:code{i}, '测试网格', :village, :county, 'general', ST_GeomFromText(:wkt{i}, 4326))"
        for i in range(len(rows))
    )
    params = {"village": world.units[VILLAGE_C], "county": COUNTY}
    for i, row in enumerate(rows):
        params |= {f"code{i}": row["code"], f"wkt{i}": row["wkt"]}
    return list(
        session.scalars(
            text(
                "INSERT INTO grids (code, name, village_id, county_code, kind, geom)"
                f" VALUES {values} RETURNING id"
            ),
            params,
        )
    )


def test_every_current_grid_has_its_rows_for_every_zoom(session, world):
    assert session.execute(text("SELECT count(*) FROM grid_tile_geoms")).scalar_one() == 4 * len(
        ZOOMS
    )
    assert stale(session) == 0
    add_ragged_grids(session, world)
    assert stale(session) == 0


@pytest.mark.parametrize("username", ["county", "village_a", "grid_a1"])
def test_tiles_have_todays_features_properties_and_geometry(session, world, username):
    add_ragged_grids(session, world)
    session.execute(text("ANALYZE grids"))
    scope = scope_of(session, world, username)
    compared = identical = inside = 0
    for z in ZOOMS:
        for x, y in tiles_covering(COUNTY_BOX, z):
            new = {f["id"]: f for f in features(served(session, scope, "grids", z, x, y), "grids")}
            old = {
                f["id"]: f for f in features(per_request(session, scope, "grids", z, x, y), "grids")
            }
            assert set(new) == set(old), (z, x, y)
            for id_, feature in new.items():
                assert feature["properties"] == old[id_]["properties"]
                a, b = shape(feature), shape(old[id_])
                assert a.geom_type == b.geom_type
                # Within one MVT unit of today's geometry (in fact the same).
                assert shapely.hausdorff_distance(a, b) <= 1.0, (z, x, y, id_)
                compared += 1
                identical += feature["geometry"] == old[id_]["geometry"]
                bounds = a.bounds
                inside += bounds[0] > -64 and bounds[2] < 4160 and bounds[1] > -64
    assert compared > 0 and identical == compared
    if username == "county":
        # Both ways were taken: grids inside a tile (moved) and crossing its edge (clipped).
        assert 0 < inside < compared


def test_thin_grids_stay_visible_at_low_zoom(session, world):
    """preserveCollapsed as before: a strip 10 x 0.8 MVT units at z8 (a grid along a road),
    which simplification alone would collapse, is still drawn at z8."""
    unit = 360 / 2**8 / 4096  # degrees of longitude per MVT unit at z8
    lon, lat = 111.05, 26.15
    height = 0.8 * unit * math.cos(math.radians(lat))
    (strip,) = session.scalars(
        text(
            "INSERT INTO grids (code, name, village_id, county_code, kind, geom) VALUES"
            " (:code, '沿路网格', :village, :county, 'general',"
            " ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))) RETURNING id"
        ),
        {"code": VILLAGE_C + "050", "village": world.units[VILLAGE_C], "county": COUNTY}
        | {"x0": lon, "y0": lat, "x1": lon + 10 * unit, "y1": lat + height},
    )
    collapsed = session.execute(
        text(
            "SELECT ST_IsEmpty(coalesce(ST_Simplify(geom_3857, :tolerance, false),"
            " 'POLYGON EMPTY'::geometry)) FROM grids WHERE id = :id"
        ),
        {"id": strip, "tolerance": 2 * ORIGIN_SHIFT / 2**8 / 4096},
    ).scalar_one()
    assert collapsed
    scope = scope_of(session, world, "county")
    tile = lonlat_to_tile(lon, lat, 8)
    new = {f["id"] for f in features(served(session, scope, "grids", 8, *tile), "grids")}
    old = {f["id"] for f in features(per_request(session, scope, "grids", 8, *tile), "grids")}
    assert new == old and strip in new


def _ctids(session: Session) -> list[str]:
    return list(
        session.scalars(text("SELECT ctid::text FROM grid_tile_geoms ORDER BY zoom, grid_id"))
    )


def test_the_rows_follow_every_write_of_grids(session, world):
    ids = add_ragged_grids(session, world)
    moved, retired, deleted = ids[0], ids[1], ids[2]

    # A statement that changes no boundary rewrites nothing (a county sets every grid's chief).
    before = _ctids(session)
    session.execute(text("UPDATE grids SET name = name || '改', chief_member_id = NULL"))
    assert _ctids(session) == before

    session.execute(
        text("UPDATE grids SET geom = ST_Translate(geom, 0.003, -0.002) WHERE id = :id"),
        {"id": moved},
    )
    assert stale(session) == 0

    session.execute(
        text("UPDATE grids SET valid_to = current_date WHERE id = :id"), {"id": retired}
    )
    count = "SELECT count(*) FROM grid_tile_geoms WHERE grid_id = :id"
    assert session.execute(text(count), {"id": retired}).scalar_one() == 0
    assert stale(session) == 0
    session.execute(text("UPDATE grids SET valid_to = NULL WHERE id = :id"), {"id": retired})
    assert session.execute(text(count), {"id": retired}).scalar_one() == len(ZOOMS)

    session.execute(text("DELETE FROM grids WHERE id = :id"), {"id": deleted})
    assert session.execute(text(count), {"id": deleted}).scalar_one() == 0
    assert stale(session) == 0


def test_an_import_of_grids_is_prepared_too(session, world):
    """A grid written through the service (the import path: one statement for all rows),
    filling 南村's gap."""
    from gridgov.hierarchy import service as hierarchy_service
    from gridgov.hierarchy.rules import AreaRow
    from tests.fixtures.world import box

    written = hierarchy_service.write_grids(
        session,
        None,
        [AreaRow(0, VILLAGE_C + "002", "南村第二网格", box(111.15, 26.0, 111.2, 26.1))],
        county_code=COUNTY,
    )
    assert not written.errors, written.errors
    assert stale(session) == 0
    count = "SELECT count(*) FROM grid_tile_geoms WHERE grid_id = :id"
    assert session.execute(text(count), {"id": written.ids[0]}).scalar_one() == len(ZOOMS)
