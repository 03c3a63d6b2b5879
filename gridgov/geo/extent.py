"""China extent checks and detection of swapped or non-degree coordinates.

Typical upload mistakes: [lat, lon] instead of [lon, lat] (GeoJSON order), and projected
Gauss-Krüger metres uploaded without declaring the CRS. ``check_coordinates`` reports them as
``GeoProblem`` values with a Chinese message suitable for showing to the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CHINA_EXTENT",
    "GeoProblem",
    "bounds_in_china",
    "bounds_look_swapped",
    "check_coordinates",
    "in_china",
    "looks_swapped",
]

Bounds = tuple[float, float, float, float]

# (minlon, minlat, maxlon, maxlat): 73-136°E, 3-54°N as in the design. Generous on purpose:
# it is a sanity check for typos and swapped axes, not a border test.
CHINA_EXTENT: Bounds = (73.0, 3.0, 136.0, 54.0)

_OUTSIDE_MSG = "坐标超出中国范围（73–136°E，3–54°N）"
_SWAPPED_MSG = "经纬度顺序颠倒：应为[经度, 纬度]"


@dataclass(frozen=True, slots=True)
class GeoProblem:
    """One coordinate problem: machine-readable ``code`` and a Chinese ``message``; the
    geometry library's own (English) words, when they help, in ``detail_en``."""

    code: str
    message: str
    detail_en: str | None = None


@overload
def in_china(lon: float, lat: float) -> bool: ...
@overload
def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]: ...
def in_china(lon: Any, lat: Any) -> Any:
    """Elementwise: is (lon, lat) inside ``CHINA_EXTENT`` (inclusive)? NaN gives False."""
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    minx, miny, maxx, maxy = CHINA_EXTENT
    result = (x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)
    if np.ndim(result) == 0:
        return bool(result)
    return result


def bounds_in_china(bounds: Bounds) -> bool:
    """True when the whole box (minx, miny, maxx, maxy) lies inside ``CHINA_EXTENT``."""
    minx, miny, maxx, maxy = bounds
    return bool(in_china(minx, miny) and in_china(maxx, maxy))


def looks_swapped(lon: float, lat: float) -> bool:
    """True when (lon, lat) is outside China but (lat, lon) is inside, i.e. axes swapped."""
    return not in_china(lon, lat) and bool(in_china(lat, lon))


def bounds_look_swapped(bounds: Bounds) -> bool:
    """Bounds variant of ``looks_swapped``: swapping x and y moves the box into China."""
    minx, miny, maxx, maxy = bounds
    return not bounds_in_china(bounds) and bounds_in_china((miny, minx, maxy, maxx))


def check_coordinates(geom: shapely.Geometry | None) -> list[GeoProblem]:
    """Report problems with a geometry that should be WGS-84 lon/lat inside China.

    Returns an empty list when every vertex is finite and inside ``CHINA_EXTENT``. At most one
    problem is reported: each check explains the later ones (swapped axes put a latitude above 90,
    metres are outside China, ...), so listing them all would only confuse the user.
    """
    if geom is None or shapely.is_empty(geom):
        return [GeoProblem("empty_geometry", "几何为空")]
    coords = shapely.get_coordinates(geom)
    x, y = coords[:, 0], coords[:, 1]
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return [GeoProblem("coordinates_not_finite", "坐标包含非有限数值（NaN 或无穷大）")]
    if np.all(in_china(x, y)):
        return []
    # Before the degree-range check: a swapped longitude sits in the latitude slot and may
    # exceed 90, yet the swap is the real explanation.
    if np.all(in_china(y, x)):
        return [GeoProblem("lat_lon_swapped", _SWAPPED_MSG)]
    if np.any(np.abs(x) > 180.0) or np.any(np.abs(y) > 90.0):
        return [
            GeoProblem(
                "not_wgs84_degrees",
                "坐标不是经纬度（数值超出 ±180/±90），疑似投影坐标（米）；"
                "请声明坐标系，如 EPSG:4545（CGCS2000 3度带）",
            )
        ]
    return [GeoProblem("outside_china", _OUTSIDE_MSG)]
