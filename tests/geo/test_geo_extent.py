"""Tests for gridgov.geo.extent: China extent, swapped axes and coordinate problems."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgov.geo.extent import (
    CHINA_EXTENT,
    GeoProblem,
    bounds_in_china,
    bounds_look_swapped,
    check_coordinates,
    in_china,
    looks_swapped,
)

china_lon = st.floats(73.0, 136.0)
china_lat = st.floats(3.0, 54.0)


def codes(geom: shapely.Geometry | None) -> list[str]:
    return [p.code for p in check_coordinates(geom)]


def test_extent_constant() -> None:
    assert CHINA_EXTENT == (73.0, 3.0, 136.0, 54.0)


def test_in_china_scalars() -> None:
    assert in_china(114.3, 30.5) is True
    assert in_china(30.5, 114.3) is False
    assert in_china(2.35, 48.85) is False
    # Edges are inclusive; NaN is never inside.
    assert in_china(73.0, 3.0) is True
    assert in_china(136.0, 54.0) is True
    assert in_china(136.0001, 54.0) is False
    assert in_china(float("nan"), 30.0) is False


def test_in_china_vectorised() -> None:
    result = in_china(np.array([114.3, 30.5, 121.5, np.nan]), np.array([30.5, 114.3, 31.2, 30]))
    assert result.dtype == np.bool_
    assert result.tolist() == [True, False, True, False]


def test_looks_swapped() -> None:
    assert looks_swapped(30.5, 114.3) is True
    assert looks_swapped(114.3, 30.5) is False
    assert looks_swapped(2.35, 48.85) is False  # Paris: outside either way
    assert looks_swapped(500_000.0, 3_300_000.0) is False


def test_bounds_helpers() -> None:
    wuhan = (114.1, 30.4, 114.5, 30.7)
    assert bounds_in_china(wuhan) is True
    assert bounds_look_swapped(wuhan) is False
    swapped = (30.4, 114.1, 30.7, 114.5)
    assert bounds_in_china(swapped) is False
    assert bounds_look_swapped(swapped) is True
    # Straddling the border is not "in China".
    assert bounds_in_china((70.0, 30.0, 80.0, 35.0)) is False
    assert bounds_look_swapped((70.0, 30.0, 80.0, 35.0)) is False


def test_valid_geometries_have_no_problems() -> None:
    assert check_coordinates(shapely.Point(114.3, 30.5)) == []
    assert check_coordinates(shapely.box(114.1, 30.4, 114.5, 30.7)) == []
    assert check_coordinates(shapely.Point(114.3, 30.5, 25.0)) == []


def test_swapped_geometry() -> None:
    problems = check_coordinates(shapely.Point(30.5, 114.3))
    assert problems == [GeoProblem("lat_lon_swapped", "经纬度顺序颠倒：应为[经度, 纬度]")]
    # The swapped "latitude" 114.3 exceeds 90, but the swap explains it: only one problem.
    assert codes(shapely.box(30.4, 114.1, 30.7, 114.5)) == ["lat_lon_swapped"]


def test_outside_china() -> None:
    problems = check_coordinates(shapely.Point(2.35, 48.85))
    assert problems == [GeoProblem("outside_china", "坐标超出中国范围（73–136°E，3–54°N）")]
    # Partly outside is still a problem.
    assert codes(shapely.LineString([(114.3, 30.5), (60.0, 30.5)])) == ["outside_china"]
    # Mixed: one vertex swapped, one fine -> not explained by a swap; a "latitude" of 114.3
    # is simply not a degree value.
    assert codes(shapely.LineString([(114.3, 30.5), (30.5, 114.3)])) == ["not_wgs84_degrees"]
    assert codes(shapely.LineString([(114.3, 30.5), (30.5, 60.0)])) == ["outside_china"]


def test_projected_metres() -> None:
    problems = check_coordinates(shapely.box(490_000, 3_300_000, 510_000, 3_320_000))
    assert [p.code for p in problems] == ["not_wgs84_degrees"]
    assert "坐标系" in problems[0].message  # tells the user to declare the CRS
    assert codes(shapely.Point(39_500_000.0, 4_420_000.0)) == ["not_wgs84_degrees"]


@pytest.mark.parametrize(
    "geom",
    [
        None,
        shapely.Point(),
        shapely.Polygon(),
        shapely.LineString(),
        shapely.MultiPolygon(),
        shapely.GeometryCollection(),
    ],
)
def test_empty_geometry(geom: shapely.Geometry | None) -> None:
    assert check_coordinates(geom) == [GeoProblem("empty_geometry", "几何为空")]


# shapely warns when building a NaN vertex; building one is the point of this test.
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite(bad: float) -> None:
    line = shapely.LineString([(114.3, 30.5), (bad, 30.6)])
    assert codes(line) == ["coordinates_not_finite"]


def test_geo_problem_is_frozen() -> None:
    problem = GeoProblem("outside_china", "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.code = "other"  # type: ignore[misc]


@settings(deadline=None)
@given(lon=china_lon, lat=china_lat)
def test_any_point_in_china_is_fine_and_its_swap_is_detected(lon: float, lat: float) -> None:
    assert check_coordinates(shapely.Point(lon, lat)) == []
    assert codes(shapely.Point(lat, lon)) == ["lat_lon_swapped"]
    assert looks_swapped(lat, lon) is True
    assert looks_swapped(lon, lat) is False


@settings(deadline=None)
@given(
    lon=st.floats(-180.0, 180.0).filter(lambda v: not 73.0 <= v <= 136.0),
    lat=st.floats(-90.0, 90.0),
)
def test_degree_points_west_or_east_of_china(lon: float, lat: float) -> None:
    result = codes(shapely.Point(lon, lat))
    expected = "lat_lon_swapped" if in_china(lat, lon) else "outside_china"
    assert result == [expected]
