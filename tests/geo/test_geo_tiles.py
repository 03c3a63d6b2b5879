"""Tests for gridgov.geo.tiles: XYZ Web-Mercator tile math."""

from __future__ import annotations

import math

import numpy as np
import pyproj
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgov.geo.tiles import (
    MAX_LATITUDE,
    ORIGIN_SHIFT,
    is_valid_tile,
    lonlat_to_3857,
    lonlat_to_tile,
    mercator_to_lonlat,
    resolution_m,
    tile_bounds_3857,
    tile_bounds_wgs84,
    tiles_covering,
)

HALF_WORLD = 20037508.342789244
EPS = 1e-9

lons = st.floats(-180.0, 180.0)
lats = st.floats(-85.0, 85.0)
zooms = st.integers(0, 22)


def test_world_tile_bounds() -> None:
    assert math.isclose(ORIGIN_SHIFT, HALF_WORLD, abs_tol=1e-6)
    assert tile_bounds_3857(0, 0, 0) == pytest.approx(
        (-HALF_WORLD, -HALF_WORLD, HALF_WORLD, HALF_WORLD), abs=1e-6
    )
    minlon, minlat, maxlon, maxlat = tile_bounds_wgs84(0, 0, 0)
    assert (minlon, maxlon) == (-180.0, 180.0)
    assert minlat == pytest.approx(-85.0511287798066, abs=1e-12)
    assert maxlat == pytest.approx(85.0511287798066, abs=1e-12)
    assert maxlat == pytest.approx(MAX_LATITUDE, abs=1e-12)


def test_zoom_one_quadrants() -> None:
    # y counts from the top: tile 1/0/0 is the north-west quadrant.
    assert tile_bounds_3857(1, 0, 0) == pytest.approx((-HALF_WORLD, 0.0, 0.0, HALF_WORLD))
    assert tile_bounds_wgs84(1, 1, 1)[:3] == pytest.approx((0.0, -85.0511287798066, 180.0))
    assert lonlat_to_tile(-10.0, 10.0, 1) == (0, 0)
    assert lonlat_to_tile(10.0, -10.0, 1) == (1, 1)


def test_known_tile_for_beijing() -> None:
    # Tiananmen is in tile 10/843/388 (standard OSM numbering).
    assert lonlat_to_tile(116.3913, 39.9075, 10) == (843, 388)


@settings(deadline=None)
@given(lon=lons, lat=lats, z=zooms)
def test_point_lies_in_its_tile(lon: float, lat: float, z: int) -> None:
    x, y = lonlat_to_tile(lon, lat, z)
    assert is_valid_tile(z, x, y)
    minlon, minlat, maxlon, maxlat = tile_bounds_wgs84(z, x, y)
    assert minlon - EPS <= lon <= maxlon + EPS
    assert minlat - EPS <= lat <= maxlat + EPS
    mx, my = lonlat_to_3857(lon, lat)
    minx, miny, maxx, maxy = tile_bounds_3857(z, x, y)
    assert minx - 1e-6 <= mx <= maxx + 1e-6
    assert miny - 1e-6 <= my <= maxy + 1e-6


@settings(deadline=None)
@given(z=st.integers(0, 22), data=st.data())
def test_wgs84_and_3857_bounds_agree(z: int, data: st.DataObject) -> None:
    x = data.draw(st.integers(0, (1 << z) - 1))
    y = data.draw(st.integers(0, (1 << z) - 1))
    minx, miny, maxx, maxy = tile_bounds_3857(z, x, y)
    lon0, lat0 = mercator_to_lonlat(minx, miny)
    lon1, lat1 = mercator_to_lonlat(maxx, maxy)
    assert tile_bounds_wgs84(z, x, y) == pytest.approx((lon0, lat0, lon1, lat1), abs=1e-9)
    assert maxx - minx == pytest.approx(2 * HALF_WORLD / (1 << z))


def test_polar_and_antimeridian_clamping() -> None:
    n = 1 << 4
    assert lonlat_to_tile(180.0, 89.9, 4) == (n - 1, 0)
    assert lonlat_to_tile(-180.0, -89.9, 4) == (0, n - 1)


@pytest.mark.parametrize(
    ("lon", "lat", "z"),
    [(float("nan"), 0.0, 3), (0.0, float("inf"), 3), (181.0, 0.0, 3), (0.0, 0.0, -1)],
)
def test_lonlat_to_tile_rejects_bad_input(lon: float, lat: float, z: int) -> None:
    with pytest.raises(ValueError):
        lonlat_to_tile(lon, lat, z)


def test_is_valid_tile() -> None:
    assert is_valid_tile(0, 0, 0)
    assert is_valid_tile(22, (1 << 22) - 1, 0)
    assert not is_valid_tile(23, 0, 0)
    assert is_valid_tile(23, 0, 0, max_zoom=23)
    assert not is_valid_tile(3, 8, 0)
    assert not is_valid_tile(3, 0, 8)
    assert not is_valid_tile(3, -1, 0)
    assert not is_valid_tile(-1, 0, 0)
    assert not is_valid_tile(True, 0, 0)  # type: ignore[arg-type]
    assert not is_valid_tile(1.0, 0, 0)  # type: ignore[arg-type]
    assert is_valid_tile(np.int64(2), np.int64(3), np.int64(1))  # type: ignore[arg-type]


def test_tile_bounds_reject_invalid_tiles() -> None:
    with pytest.raises(ValueError):
        tile_bounds_3857(2, 4, 0)
    with pytest.raises(ValueError):
        tile_bounds_wgs84(0, 0, 1)


def test_resolution() -> None:
    assert resolution_m(0) == pytest.approx(156543.03392804097, rel=1e-12)
    for z in range(22):
        assert resolution_m(z + 1) == pytest.approx(resolution_m(z) / 2, rel=1e-12)


def test_tiles_covering_counts() -> None:
    assert list(tiles_covering((-180.0, -85.0, 180.0, 85.0), 0)) == [(0, 0)]
    assert sorted(tiles_covering((-170.0, -80.0, 170.0, 80.0), 1)) == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    assert len(list(tiles_covering((-170.0, -80.0, 170.0, 80.0), 3))) == 64
    # A point-sized box is one tile; a box inside one tile is one tile.
    assert list(tiles_covering((116.4, 39.9, 116.4, 39.9), 12)) == [lonlat_to_tile(116.4, 39.9, 12)]
    # Rows are yielded from the top, x fastest.
    tiles = list(tiles_covering((116.0, 39.0, 117.0, 40.0), 8))
    assert tiles == [(210, 96), (211, 96), (210, 97), (211, 97)]


def test_tiles_covering_rejects_inverted_bounds() -> None:
    with pytest.raises(ValueError):
        tiles_covering((117.0, 39.0, 116.0, 40.0), 8)
    with pytest.raises(ValueError):
        tiles_covering((116.0, 40.0, 117.0, 39.0), 8)


@settings(deadline=None)
@given(
    a=st.tuples(lons, lats),
    b=st.tuples(lons, lats),
    z=st.integers(0, 5),
)
def test_tiles_covering_matches_brute_force(
    a: tuple[float, float], b: tuple[float, float], z: int
) -> None:
    minlon, maxlon = sorted((a[0], b[0]))
    minlat, maxlat = sorted((a[1], b[1]))
    covered = set(tiles_covering((minlon, minlat, maxlon, maxlat), z))
    n = 1 << z
    strict, closed = set(), set()
    for x in range(n):
        for y in range(n):
            t0, t1, t2, t3 = tile_bounds_wgs84(z, x, y)
            if (
                t0 <= maxlon + EPS
                and t2 >= minlon - EPS
                and t1 <= maxlat + EPS
                and t3 >= minlat - EPS
            ):
                closed.add((x, y))
            if t0 < maxlon - EPS and t2 > minlon + EPS and t1 < maxlat - EPS and t3 > minlat + EPS:
                strict.add((x, y))
    # Tiles overlapping the box must be there; tiles merely touching an edge (to within float
    # noise) may be.
    assert strict <= covered <= closed


@settings(deadline=None)
@given(lon=lons, lat=st.floats(-MAX_LATITUDE, MAX_LATITUDE))
def test_mercator_round_trip(lon: float, lat: float) -> None:
    back = mercator_to_lonlat(*lonlat_to_3857(lon, lat))
    assert back == pytest.approx((lon, lat), abs=1e-9)


def test_mercator_known_values_and_arrays() -> None:
    assert lonlat_to_3857(180.0, 0.0) == pytest.approx((HALF_WORLD, 0.0), abs=1e-6)
    assert lonlat_to_3857(0.0, MAX_LATITUDE)[1] == pytest.approx(HALF_WORLD, abs=1e-6)
    # Latitudes beyond the Mercator square are clamped, not infinite.
    assert lonlat_to_3857(0.0, 90.0)[1] == pytest.approx(HALF_WORLD, abs=1e-6)
    lon = np.array([116.404, 121.47, -74.0])
    lat = np.array([39.915, 31.23, 40.7])
    x, y = lonlat_to_3857(lon, lat)
    assert isinstance(x, np.ndarray) and x.shape == (3,)
    ref = pyproj.Transformer.from_crs(4326, 3857, always_xy=True)
    rx, ry = ref.transform(lon, lat)
    np.testing.assert_allclose(x, rx, atol=1e-6)
    np.testing.assert_allclose(y, ry, atol=1e-6)
    blon, blat = mercator_to_lonlat(x, y)
    np.testing.assert_allclose(blon, lon, atol=1e-9)
    np.testing.assert_allclose(blat, lat, atol=1e-9)
    assert type(lonlat_to_3857(1.0, 2.0)[0]) is float
    assert type(mercator_to_lonlat(1.0, 2.0)[0]) is float


def test_resolution_matches_tile_width() -> None:
    for z in (0, 5, 18):
        minx, _, maxx, _ = tile_bounds_3857(z, 0, 0)
        assert (maxx - minx) / 256 == pytest.approx(resolution_m(z), rel=1e-12)
        assert math.isclose(resolution_m(z) * 256 * (1 << z), 2 * HALF_WORLD)
