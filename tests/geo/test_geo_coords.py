"""Tests for gridgov.geo.coords: WGS-84 / GCJ-02 / BD-09 conversions."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gridgov.geo.coords import (
    GCJ_RECT,
    CoordSys,
    bd09_to_gcj02,
    bd09_to_wgs84,
    convert,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    transform_geometry,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

GEOD = pyproj.Geod(ellps="WGS84")
MAX_ERROR_M = 0.5

china_lon = st.floats(73.0, 136.0)
china_lat = st.floats(18.0, 54.0)


def distance_m(lon1: object, lat1: object, lon2: object, lat2: object) -> np.ndarray:
    """Geodesic distance in metres (vectorised)."""
    _, _, dist = GEOD.inv(
        np.atleast_1d(lon1), np.atleast_1d(lat1), np.atleast_1d(lon2), np.atleast_1d(lat2)
    )
    return np.asarray(dist)


# --- reference values -------------------------------------------------------------------------

# Values published with the widely used coordtransform library (same GCJ-02/BD-09 formulas).
WGS_REF = (116.404, 39.915)
GCJ_OF_WGS_REF = (116.41024449916938, 39.91640428150164)
BD_OF_GCJ_REF = (116.41036949371029, 39.92133699351021)


def test_wgs84_to_gcj02_matches_published_value() -> None:
    lon, lat = wgs84_to_gcj02(*WGS_REF)
    assert lon == pytest.approx(GCJ_OF_WGS_REF[0], abs=1e-10)
    assert lat == pytest.approx(GCJ_OF_WGS_REF[1], abs=1e-10)


def test_gcj02_to_bd09_matches_published_value() -> None:
    lon, lat = gcj02_to_bd09(*WGS_REF)
    assert lon == pytest.approx(BD_OF_GCJ_REF[0], abs=1e-10)
    assert lat == pytest.approx(BD_OF_GCJ_REF[1], abs=1e-10)


def test_inverses_recover_published_inputs() -> None:
    assert gcj02_to_wgs84(*GCJ_OF_WGS_REF) == pytest.approx(WGS_REF, abs=1e-8)
    assert bd09_to_gcj02(*BD_OF_GCJ_REF) == pytest.approx(WGS_REF, abs=1e-8)


def test_tiananmen_shift_is_plausible() -> None:
    # Tiananmen: the GCJ-02 shift in Beijing is about +0.006° lon, +0.0013° lat (~550 m).
    lon, lat = 116.3913, 39.9075
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert 0.004 < glon - lon < 0.008
    assert 0.0005 < glat - lat < 0.003
    shift = float(distance_m(lon, lat, glon, glat)[0])
    assert 100.0 < shift < 700.0


@settings(deadline=None)
@given(lon=china_lon, lat=china_lat)
def test_gcj_shift_magnitude_everywhere_in_china(lon: float, lat: float) -> None:
    glon, glat = wgs84_to_gcj02(lon, lat)
    shift = float(distance_m(lon, lat, glon, glat)[0])
    assert 1.0 < shift < 1500.0


def test_bd09_shift_from_gcj02_is_plausible() -> None:
    glon, glat = 116.3975, 39.9088
    blon, blat = gcj02_to_bd09(glon, glat)
    # BD-09 adds roughly 0.0065° lon and 0.006° lat on top of GCJ-02.
    assert 0.005 < blon - glon < 0.008
    assert 0.004 < blat - glat < 0.008


@pytest.mark.parametrize(
    ("lon", "lat"),
    [
        (2.3522, 48.8566),  # Paris
        (139.6917, 35.6895),  # Tokyo: east of the GCJ rectangle
        (-74.006, 40.7128),  # New York
        (100.0, 0.5),  # south of the rectangle
        (100.0, 60.0),  # north of the rectangle
    ],
)
def test_outside_china_passes_through_unchanged(lon: float, lat: float) -> None:
    for fn in (
        wgs84_to_gcj02,
        gcj02_to_wgs84,
        gcj02_to_bd09,
        bd09_to_gcj02,
        wgs84_to_bd09,
        bd09_to_wgs84,
    ):
        assert fn(lon, lat) == (lon, lat), fn.__name__


def test_outside_mask_is_elementwise() -> None:
    lon = np.array([116.404, 2.3522, 121.47, 139.69])
    lat = np.array([39.915, 48.8566, 31.23, 35.69])
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert glon[[1, 3]].tolist() == lon[[1, 3]].tolist()
    assert glat[[1, 3]].tolist() == lat[[1, 3]].tolist()
    assert np.all(np.abs(glon[[0, 2]] - lon[[0, 2]]) > 1e-3)
    back_lon, back_lat = gcj02_to_wgs84(glon, glat)
    assert np.max(distance_m(lon, lat, back_lon, back_lat)) < MAX_ERROR_M


def test_gcj_rectangle_constant() -> None:
    assert GCJ_RECT == (72.004, 0.8293, 137.8347, 55.8271)
    # Just inside the rectangle is shifted, just outside is not.
    assert wgs84_to_gcj02(72.01, 30.0) != (72.01, 30.0)
    assert wgs84_to_gcj02(72.0, 30.0) == (72.0, 30.0)


# --- round trips ------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(lon=china_lon, lat=china_lat)
def test_wgs_gcj_wgs_round_trip_below_half_metre(lon: float, lat: float) -> None:
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert float(distance_m(lon, lat, *back)[0]) < MAX_ERROR_M


@settings(max_examples=300, deadline=None)
@given(lon=china_lon, lat=china_lat)
def test_gcj_wgs_gcj_round_trip_below_half_metre(lon: float, lat: float) -> None:
    # Inverse first: the iteration must make the forward transform hit the input.
    wlon, wlat = gcj02_to_wgs84(lon, lat)
    again = wgs84_to_gcj02(wlon, wlat)
    assert float(distance_m(lon, lat, *again)[0]) < MAX_ERROR_M
    assert abs(again[0] - lon) < 1e-8
    assert abs(again[1] - lat) < 1e-8


@settings(max_examples=300, deadline=None)
@given(lon=china_lon, lat=china_lat)
def test_bd09_round_trips(lon: float, lat: float) -> None:
    back_gcj = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    assert float(distance_m(lon, lat, *back_gcj)[0]) < MAX_ERROR_M
    back_wgs = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert float(distance_m(lon, lat, *back_wgs)[0]) < MAX_ERROR_M
    # BD-09 of WGS-84 is the composition through GCJ-02.
    assert wgs84_to_bd09(lon, lat) == gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def test_million_point_grid_over_china() -> None:
    """Doubles as the 1e6-point smoke test: the vectorised inverse must handle it quickly."""
    lon, lat = np.meshgrid(np.linspace(73.0, 136.0, 1000), np.linspace(3.0, 54.0, 1000))
    lon, lat = lon.ravel(), lat.ravel()
    assert lon.size == 1_000_000
    glon, glat = wgs84_to_gcj02(lon, lat)
    wlon, wlat = gcj02_to_wgs84(glon, glat)
    assert wlon.shape == lon.shape
    assert float(np.max(distance_m(lon, lat, wlon, wlat))) < MAX_ERROR_M
    # The stopping rule: forward(inverse(g)) matches g to about 1e-9 degrees.
    flon, flat = wgs84_to_gcj02(wlon, wlat)
    assert float(np.max(np.abs(flon - glon))) < 2e-9
    assert float(np.max(np.abs(flat - glat))) < 2e-9


# --- array behaviour --------------------------------------------------------------------------

point_lists = st.lists(st.tuples(china_lon, china_lat), min_size=1, max_size=30)


@settings(deadline=None)
@given(points=point_lists)
def test_vectorised_equals_scalar(points: list[tuple[float, float]]) -> None:
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    for fn in (wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02):
        alon, alat = fn(lon, lat)
        for i, (x, y) in enumerate(points):
            slon, slat = fn(x, y)
            # The inverses stop per point at a 1e-9 degree residual, hence the tolerance.
            assert alon[i] == pytest.approx(slon, abs=2e-9), fn.__name__
            assert alat[i] == pytest.approx(slat, abs=2e-9), fn.__name__


def test_scalar_in_float_out() -> None:
    for fn in (wgs84_to_gcj02, gcj02_to_wgs84, bd09_to_wgs84):
        lon, lat = fn(116, 39)
        assert type(lon) is float
        assert type(lat) is float
        lon, lat = fn(np.float32(116.0), np.float64(39.0))
        assert type(lon) is float


def test_shape_broadcast_and_no_mutation() -> None:
    lon = np.array([[116.4, 121.5], [113.3, 104.1]])
    lon_before = lon.copy()
    glon, glat = gcj02_to_wgs84(lon, 30.0)
    assert glon.shape == (2, 2)
    assert glat.shape == (2, 2)
    np.testing.assert_array_equal(lon, lon_before)
    flat_lon, _ = gcj02_to_wgs84(lon.ravel(), np.full(4, 30.0))
    np.testing.assert_allclose(glon.ravel(), flat_lon, atol=1e-12)
    # Lists work as well.
    llon, llat = wgs84_to_gcj02([116.4, 121.5], [39.9, 31.2])
    assert isinstance(llon, np.ndarray)
    assert llon.shape == (2,)


def test_nan_and_empty_input() -> None:
    lon, lat = gcj02_to_wgs84(np.array([np.nan, 116.4]), np.array([30.0, np.nan]))
    assert np.isnan(lon[0]) and lat[0] == 30.0
    assert lon[1] == 116.4 and np.isnan(lat[1])
    elon, elat = gcj02_to_wgs84(np.array([]), np.array([]))
    assert elon.shape == (0,) and elat.shape == (0,)


@settings(deadline=None)
@given(
    lon=arrays(np.float64, 5, elements=china_lon),
    lat=arrays(np.float64, 5, elements=china_lat),
)
def test_convert_dispatch_matches_direct_functions(lon: np.ndarray, lat: np.ndarray) -> None:
    direct = {
        ("wgs84", "gcj02"): wgs84_to_gcj02,
        ("gcj02", "wgs84"): gcj02_to_wgs84,
        ("gcj02", "bd09"): gcj02_to_bd09,
        ("bd09", "gcj02"): bd09_to_gcj02,
        ("wgs84", "bd09"): wgs84_to_bd09,
        ("bd09", "wgs84"): bd09_to_wgs84,
    }
    for (src, dst), fn in direct.items():
        got = convert(lon, lat, CoordSys(src), CoordSys(dst))
        want = fn(lon, lat)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        # Plain strings are accepted too (CoordSys is a StrEnum).
        np.testing.assert_array_equal(convert(lon, lat, src, dst)[0], want[0])
    for sys_ in CoordSys:
        same = convert(lon, lat, sys_, sys_)
        np.testing.assert_array_equal(same[0], lon)
        np.testing.assert_array_equal(same[1], lat)


def test_convert_rejects_unknown_system() -> None:
    with pytest.raises(ValueError, match="unknown coordinate system"):
        convert(116.0, 39.0, "wgs84", "cgcs2000")


def test_coordsys_values() -> None:
    assert [c.value for c in CoordSys] == ["wgs84", "gcj02", "bd09"]
    assert CoordSys("gcj02") == "gcj02"


# --- geometries -------------------------------------------------------------------------------

SQUARE = [(116.0, 39.0), (116.1, 39.0), (116.1, 39.1), (116.0, 39.1), (116.0, 39.0)]
HOLE = [(116.02, 39.02), (116.04, 39.02), (116.04, 39.04), (116.02, 39.04), (116.02, 39.02)]

GEOMETRIES = [
    shapely.Point(116.404, 39.915),
    shapely.LineString(SQUARE[:3]),
    shapely.Polygon(SQUARE, [HOLE]),
    shapely.MultiPoint(SQUARE[:3]),
    shapely.MultiLineString([SQUARE[:2], SQUARE[2:4]]),
    shapely.MultiPolygon([shapely.Polygon(SQUARE), shapely.box(116.2, 39.2, 116.3, 39.3)]),
    shapely.GeometryCollection([shapely.Point(121.47, 31.23), shapely.Polygon(SQUARE)]),
]


@pytest.mark.parametrize("geom", GEOMETRIES, ids=lambda g: g.geom_type)
@pytest.mark.parametrize(
    ("src", "dst"), [("wgs84", "gcj02"), ("gcj02", "wgs84"), ("wgs84", "bd09")]
)
def test_transform_geometry_keeps_type_and_rings(
    geom: shapely.Geometry, src: str, dst: str
) -> None:
    out = transform_geometry(geom, src, dst)
    assert out.geom_type == geom.geom_type
    assert shapely.get_num_coordinates(out) == shapely.get_num_coordinates(geom)
    assert geom.is_valid and out.is_valid
    # Every vertex converted exactly like the point function does.
    coords_in = shapely.get_coordinates(geom)
    want_lon, want_lat = convert(coords_in[:, 0], coords_in[:, 1], src, dst)
    np.testing.assert_allclose(shapely.get_coordinates(out), np.column_stack([want_lon, want_lat]))
    assert not np.allclose(shapely.get_coordinates(out), coords_in)
    # Rings stay closed.
    polygons = [p for p in shapely.get_parts(out) if p.geom_type == "Polygon"]
    for poly in polygons:
        for ring in [poly.exterior, *poly.interiors]:
            assert ring.is_closed
            assert ring.coords[0] == ring.coords[-1]


def test_transform_geometry_round_trip_and_identity() -> None:
    poly = shapely.Polygon(SQUARE, [HOLE])
    back = transform_geometry(transform_geometry(poly, "wgs84", "gcj02"), "gcj02", "wgs84")
    np.testing.assert_allclose(
        shapely.get_coordinates(back), shapely.get_coordinates(poly), atol=1e-8
    )
    assert transform_geometry(poly, CoordSys.bd09, CoordSys.bd09) is poly


def test_transform_geometry_keeps_z_and_handles_empty() -> None:
    p = shapely.Point(116.404, 39.915, 42.0)
    out = transform_geometry(p, "wgs84", "gcj02")
    assert out.has_z
    assert out.z == 42.0
    assert (out.x, out.y) == pytest.approx(GCJ_OF_WGS_REF, abs=1e-10)
    flat = transform_geometry(shapely.Point(116.404, 39.915), "wgs84", "gcj02")
    assert not flat.has_z
    empty = transform_geometry(shapely.Polygon(), "wgs84", "gcj02")
    assert empty.is_empty
    assert empty.geom_type == "Polygon"
