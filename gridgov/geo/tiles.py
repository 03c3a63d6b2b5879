"""Web-Mercator (EPSG:3857) tile math for the XYZ scheme (y counted from the top, 256 px)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "EARTH_RADIUS_M",
    "MAX_LATITUDE",
    "ORIGIN_SHIFT",
    "TILE_SIZE",
    "is_valid_tile",
    "lonlat_to_3857",
    "lonlat_to_tile",
    "mercator_to_lonlat",
    "resolution_m",
    "tile_bounds_3857",
    "tile_bounds_wgs84",
    "tiles_covering",
]

Bounds = tuple[float, float, float, float]

EARTH_RADIUS_M = 6378137.0  # Web Mercator uses a sphere with the WGS-84 semi-major axis.
ORIGIN_SHIFT = math.pi * EARTH_RADIUS_M  # half the world width in metres, 20037508.34...
TILE_SIZE = 256
# Latitude at which the Mercator square world ends: atan(sinh(pi)).
MAX_LATITUDE = math.degrees(math.atan(math.sinh(math.pi)))


def _tile_span(z: int) -> float:
    return 2.0 * ORIGIN_SHIFT / (1 << z)


@overload
def lonlat_to_3857(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def lonlat_to_3857(
    lon: ArrayLike, lat: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
def lonlat_to_3857(lon: Any, lat: Any) -> tuple[Any, Any]:
    """WGS-84 lon/lat to Web-Mercator metres; latitude is clamped to ±MAX_LATITUDE."""
    x = np.asarray(lon, dtype=np.float64)
    y = np.clip(np.asarray(lat, dtype=np.float64), -MAX_LATITUDE, MAX_LATITUDE)
    mx = np.radians(x) * EARTH_RADIUS_M
    # asinh(tan(phi)) == ln(tan(pi/4 + phi/2)) and is better conditioned near the equator.
    my = np.arcsinh(np.tan(np.radians(y))) * EARTH_RADIUS_M
    if mx.ndim == 0 and my.ndim == 0:
        return float(mx), float(my)
    bx, by = np.broadcast_arrays(mx, my)
    return bx.copy(), by.copy()


@overload
def mercator_to_lonlat(x: float, y: float) -> tuple[float, float]: ...
@overload
def mercator_to_lonlat(
    x: ArrayLike, y: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
def mercator_to_lonlat(x: Any, y: Any) -> tuple[Any, Any]:
    """Web-Mercator metres to WGS-84 lon/lat (inverse of ``lonlat_to_3857``)."""
    mx = np.asarray(x, dtype=np.float64)
    my = np.asarray(y, dtype=np.float64)
    lon = np.degrees(mx / EARTH_RADIUS_M)
    lat = np.degrees(np.arctan(np.sinh(my / EARTH_RADIUS_M)))
    if lon.ndim == 0 and lat.ndim == 0:
        return float(lon), float(lat)
    blon, blat = np.broadcast_arrays(lon, lat)
    return blon.copy(), blat.copy()


def is_valid_tile(z: int, x: int, y: int, max_zoom: int = 22) -> bool:
    """True for integer z in [0, max_zoom] and x, y in [0, 2**z)."""
    values = (z, x, y)
    # bool is an int subclass but never a meaningful tile index.
    if any(isinstance(v, bool) or not isinstance(v, int | np.integer) for v in values):
        return False
    if not 0 <= z <= max_zoom:
        return False
    n = 1 << int(z)
    return 0 <= x < n and 0 <= y < n


def _require_tile(z: int, x: int, y: int) -> None:
    # No max_zoom cap here: bounds are well defined at any zoom, only the range matters.
    if not is_valid_tile(z, x, y, max_zoom=30):
        raise ValueError(f"invalid tile z={z} x={x} y={y}")


def tile_bounds_3857(z: int, x: int, y: int) -> Bounds:
    """(minx, miny, maxx, maxy) of tile z/x/y in Web-Mercator metres."""
    _require_tile(z, x, y)
    span = _tile_span(z)
    minx = -ORIGIN_SHIFT + x * span
    maxy = ORIGIN_SHIFT - y * span
    return (minx, maxy - span, minx + span, maxy)


def tile_bounds_wgs84(z: int, x: int, y: int) -> Bounds:
    """(minlon, minlat, maxlon, maxlat) of tile z/x/y."""
    _require_tile(z, x, y)
    n = 1 << z

    # Straight from tile indices rather than via metres, so tile 0/0/0 is exactly ±180°.
    def lat_of(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1.0 - 2.0 * row / n))))

    return (x * 360.0 / n - 180.0, lat_of(y + 1), (x + 1) * 360.0 / n - 180.0, lat_of(y))


def _tile_index(mx: float, my: float, z: int) -> tuple[int, int]:
    n = 1 << z
    span = _tile_span(z)
    # Clamp so that the east edge (180°) and the clamped poles stay on the last tile.
    tx = min(max(math.floor((mx + ORIGIN_SHIFT) / span), 0), n - 1)
    ty = min(max(math.floor((ORIGIN_SHIFT - my) / span), 0), n - 1)
    return tx, ty


def lonlat_to_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    """(x, y) of the zoom-z tile containing (lon, lat); latitudes beyond ±85.05° clamp."""
    if not is_valid_tile(z, 0, 0, max_zoom=30):
        raise ValueError(f"invalid zoom {z!r}")
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValueError(f"non-finite coordinate ({lon}, {lat})")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude out of range: {lon}")
    mx, my = lonlat_to_3857(float(lon), float(lat))
    return _tile_index(mx, my, z)


def tiles_covering(bounds_wgs84: Bounds, z: int) -> Iterator[tuple[int, int]]:
    """Yield (x, y) of every zoom-z tile intersecting the lon/lat box, row by row from the top.

    Boxes crossing the antimeridian (minlon > maxlon) are not supported; China never needs it.
    """
    minlon, minlat, maxlon, maxlat = bounds_wgs84
    if minlon > maxlon or minlat > maxlat:
        raise ValueError(f"invalid bounds {bounds_wgs84!r}: min greater than max")
    # Computed here, not inside the generator, so bad input fails at the call site.
    x0, y0 = lonlat_to_tile(minlon, maxlat, z)  # top-left
    x1, y1 = lonlat_to_tile(maxlon, minlat, z)  # bottom-right
    return ((tx, ty) for ty in range(y0, y1 + 1) for tx in range(x0, x1 + 1))


def resolution_m(z: int) -> float:
    """Metres per pixel of 256 px tiles at zoom z, at the equator (scale by cos(lat) elsewhere)."""
    return 2.0 * ORIGIN_SHIFT / (TILE_SIZE * (1 << z))
