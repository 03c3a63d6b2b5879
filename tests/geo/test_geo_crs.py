"""Tests for gridgov.geo.crs: CRS resolution and transformers."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgov.geo import crs as crs_mod
from gridgov.geo.crs import (
    CGCS2000,
    WEB_MERCATOR,
    WGS84,
    is_geographic_wgs84_like,
    resolve_crs,
    transformer_from_wgs84,
    transformer_to_wgs84,
)
from gridgov.geo.tiles import lonlat_to_3857

# What ArcGIS writes into the .prj of a CGCS2000 / WGS84 shapefile (ESRI WKT, no EPSG code).
PRJ_CGCS2000 = (
    'GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",'
    'DATUM["D_China_2000",SPHEROID["CGCS2000",6378137.0,298.257222101]],'
    'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]'
)
PRJ_WGS84 = (
    'GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],'
    'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]'
)


def test_constants() -> None:
    assert (WGS84, CGCS2000, WEB_MERCATOR) == (4326, 4490, 3857)


@pytest.mark.parametrize(
    "value",
    ["EPSG:4490", "epsg:4490", " EPSG 4490 ", "4490", 4490, "CGCS2000", "cgcs 2000", "国家2000"],
)
def test_resolve_cgcs2000_spellings(value: str | int) -> None:
    assert resolve_crs(value).to_epsg() == CGCS2000


@pytest.mark.parametrize("value", ["EPSG:4326", "4326", 4326, "WGS84", "wgs 84", "WGS-84", None])
def test_resolve_wgs84_spellings(value: str | int | None) -> None:
    assert resolve_crs(value).to_epsg() == WGS84


def test_resolve_prj_wkt_and_crs_objects() -> None:
    assert resolve_crs(PRJ_CGCS2000).to_epsg() == CGCS2000
    assert resolve_crs(PRJ_WGS84).to_epsg() == WGS84
    gk = pyproj.CRS.from_epsg(4545)
    assert resolve_crs(gk) is gk
    assert resolve_crs("Web Mercator").to_epsg() == WEB_MERCATOR
    assert resolve_crs("+proj=tmerc +lon_0=108 +x_0=500000 +ellps=GRS80 +units=m").is_projected


@pytest.mark.parametrize(
    "value",
    [
        "not a crs",
        "EPSG:999999",
        999999,
        "",
        "   ",
        "GCJ-02",
        "bd09",
        5773,  # vertical CRS (EGM96 height)
        "EPSG:4978",  # geocentric
        True,
        3.5,
    ],
)
def test_resolve_rejects_unknown(value: object) -> None:
    with pytest.raises(ValueError) as info:
        resolve_crs(value)  # type: ignore[arg-type]
    assert str(info.value)  # a message the user can read


def test_gcj_rejection_message_points_to_coords_module() -> None:
    with pytest.raises(ValueError, match="GCJ-02/BD-09"):
        resolve_crs("gcj02")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (4326, True),
        (4490, True),
        ("OGC:CRS84", True),
        (PRJ_CGCS2000, True),
        (PRJ_WGS84, True),
        (None, True),
        (3857, False),
        (4545, False),
        (4527, False),
        (4214, False),  # Beijing 1954: geographic, but a different datum
    ],
)
def test_is_geographic_wgs84_like(value: str | int | None, expected: bool) -> None:
    assert is_geographic_wgs84_like(value) is expected


def test_4490_transformers_are_identity() -> None:
    poly = shapely.box(116.0, 39.0, 116.1, 39.1)
    for value in (4326, 4490, "CGCS2000", PRJ_CGCS2000):
        assert transformer_to_wgs84(value)(poly) is poly
        assert transformer_from_wgs84(value)(poly) is poly


def test_gauss_kruger_4545_central_meridian() -> None:
    # EPSG:4545: CGCS2000 3-degree GK, central meridian 108°E, false easting 500 km, k=1.
    # On the central meridian the northing is the meridian arc length from the equator, which
    # pyproj.Geod computes independently of the projection code.
    northing = 3_300_000.0
    out = transformer_to_wgs84("EPSG:4545")(shapely.Point(500_000.0, northing))
    assert out.x == pytest.approx(108.0, abs=1e-9)
    assert 29.7 < out.y < 29.9
    _, _, arc = pyproj.Geod(ellps="GRS80").inv(108.0, 0.0, 108.0, out.y)
    assert arc == pytest.approx(northing, abs=1e-3)


def test_gauss_kruger_zone_prefixed_4527() -> None:
    # EPSG:4527 (zone 39, 117°E) puts the zone number in front of the easting.
    out = transformer_to_wgs84(4527)(shapely.Point(39_500_000.0, 4_420_000.0))
    assert out.x == pytest.approx(117.0, abs=1e-9)
    assert 39.8 < out.y < 40.0
    east = transformer_to_wgs84(4527)(shapely.Point(39_510_000.0, 4_420_000.0))
    assert east.x > 117.0  # eastings grow eastwards


@settings(max_examples=50, deadline=None)
@given(lon=st.floats(106.5, 109.5), lat=st.floats(18.0, 45.0))
def test_gauss_kruger_round_trip(lon: float, lat: float) -> None:
    point = shapely.Point(lon, lat)
    projected = transformer_from_wgs84(4545)(point)
    assert 300_000 < projected.x < 700_000
    back = transformer_to_wgs84(4545)(projected)
    assert back.x == pytest.approx(lon, abs=1e-9)
    assert back.y == pytest.approx(lat, abs=1e-9)


def test_transformer_keeps_geometry_types_and_z() -> None:
    to_wgs = transformer_to_wgs84(4545)
    ring = [(490_000, 3_300_000), (510_000, 3_300_000), (510_000, 3_320_000), (490_000, 3_300_000)]
    for geom in (
        shapely.Polygon(ring),
        shapely.LineString(ring),
        shapely.MultiPoint(ring),
        shapely.GeometryCollection([shapely.Polygon(ring), shapely.Point(500_000, 3_310_000)]),
    ):
        out = to_wgs(geom)
        assert out.geom_type == geom.geom_type
        coords = shapely.get_coordinates(out)
        assert np.all((coords[:, 0] > 107) & (coords[:, 0] < 109))
    poly = to_wgs(shapely.Polygon(ring))
    assert poly.exterior.is_closed
    z_point = to_wgs(shapely.Point(500_000, 3_300_000, 12.5))
    assert z_point.has_z and z_point.z == 12.5
    assert to_wgs(shapely.Polygon()).is_empty


def test_web_mercator_agrees_with_tile_math() -> None:
    out = transformer_from_wgs84(WEB_MERCATOR)(shapely.Point(116.404, 39.915))
    x, y = lonlat_to_3857(116.404, 39.915)
    assert out.x == pytest.approx(x, abs=1e-6)
    assert out.y == pytest.approx(y, abs=1e-6)


def test_transformers_are_cached() -> None:
    crs_mod._transformer.cache_clear()
    transformer_to_wgs84(4545)
    transformer_to_wgs84("EPSG:4545")
    transformer_from_wgs84(4545)
    info = crs_mod._transformer.cache_info()
    assert info.misses == 2  # one per direction
    assert info.hits == 1
