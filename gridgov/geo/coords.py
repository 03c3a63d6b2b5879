"""Conversions between WGS-84, GCJ-02 and BD-09 longitude/latitude.

GCJ-02 ("Mars coordinates") is the obfuscated datum Chinese web maps (AMap, Tencent) must use;
BD-09 is Baidu's further offset on top of GCJ-02. Both are plain lon/lat pairs, not EPSG CRSes,
so pyproj cannot convert them; these functions do.

Every function accepts floats (and returns floats) or numpy arrays (and returns new float64
arrays, broadcast against each other). Inputs outside the coarse "out of China" rectangle used
by the GCJ-02 algorithm pass through unchanged, element by element.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

import numpy as np
import shapely
from numpy.typing import NDArray

__all__ = [
    "CoordSys",
    "GCJ_RECT",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "convert",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "transform_geometry",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

FloatArray = NDArray[np.float64]
_ArrayFn = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]

# A float in gives a float out; an array in gives an array out.
F = TypeVar("F", float, FloatArray)


class CoordSys(StrEnum):
    """Longitude/latitude systems in use on Chinese web maps."""

    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"


# (minlon, minlat, maxlon, maxlat) of the rectangle the published GCJ-02 algorithm treats as
# "China"; outside it the offset is zero. Deliberately coarser than gridgov.geo.extent.
GCJ_RECT: tuple[float, float, float, float] = (72.004, 0.8293, 137.8347, 55.8271)

# Krasovsky 1940 ellipsoid constants baked into GCJ-02.
_A = 6378245.0
_EE = 0.00669342162296594323
_PI = np.pi
# BD-09 works in a scaled angle space of pi * 3000 / 180.
_X_PI = np.pi * 3000.0 / 180.0

# Convergence target of the iterative inverses, in degrees (~0.1 mm).
_TOL_DEG = 1e-9
_MAX_ITER = 50


def _apply(fn: _ArrayFn, lon: Any, lat: Any) -> tuple[Any, Any]:
    """Run a 1-D array kernel on scalar or N-d input, preserving the input kind and shape."""
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    bx, by = np.broadcast_arrays(x, y)
    # Kernels work on flat copies: they index and assign (0-d arrays cannot), and callers
    # must never see their input mutated.
    ox, oy = fn(bx.ravel().copy(), by.ravel().copy())
    if bx.ndim == 0:
        return float(ox[0]), float(oy[0])
    return ox.reshape(bx.shape), oy.reshape(bx.shape)


def _in_gcj_rect(lon: FloatArray, lat: FloatArray) -> NDArray[np.bool_]:
    """Elementwise: inside the GCJ-02 rectangle? NaN compares False, so NaN passes through."""
    minx, miny, maxx, maxy = GCJ_RECT
    return (lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)


def _gcj_delta(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 offset (dlon, dlat) in degrees at WGS-84 position (lon, lat), no masking."""
    x = lon - 105.0
    y = lat - 35.0
    # np.sin dominates the cost, so pairs of angles in ratio 3 share one call through
    # sin(3a) = 3 sin(a) - 4 sin(a)^3 (exact identity; rounding differences are ~1e-19 degrees).
    s2x = np.sin(2.0 * _PI * x)
    sx3 = np.sin(_PI / 3.0 * x)
    sy3 = np.sin(_PI / 3.0 * y)
    wave_x = 20.0 * (3.0 * s2x - 4.0 * s2x * s2x * s2x) + 20.0 * s2x  # sin(6 pi x) + sin(2 pi x)
    sqrt_abs_x = np.sqrt(np.abs(x))
    t_lat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * sqrt_abs_x
        + (2.0 / 3.0)
        * (
            wave_x
            + 20.0 * (3.0 * sy3 - 4.0 * sy3 * sy3 * sy3)  # sin(pi y)
            + 40.0 * sy3
            + 160.0 * np.sin(_PI / 12.0 * y)
            + 320.0 * np.sin(_PI / 30.0 * y)
        )
    )
    t_lon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * sqrt_abs_x
        + (2.0 / 3.0)
        * (
            wave_x
            + 20.0 * (3.0 * sx3 - 4.0 * sx3 * sx3 * sx3)  # sin(pi x)
            + 40.0 * sx3
            + 150.0 * np.sin(_PI / 12.0 * x)
            + 300.0 * np.sin(_PI / 30.0 * x)
        )
    )
    # Scale the metre-like terms to degrees with the meridian / parallel radii of curvature.
    # |lat| < 90 everywhere this runs, so cos(lat) = sqrt(1 - sin^2) saves one more trig call.
    sin2_lat = np.sin(np.radians(lat)) ** 2
    cos_lat = np.sqrt(1.0 - sin2_lat)
    magic = 1.0 - _EE * sin2_lat
    sqrt_magic = np.sqrt(magic)
    dlat = (t_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * _PI)
    dlon = (t_lon * 180.0) / (_A / sqrt_magic * cos_lat * _PI)
    return dlon, dlat


def _invert(
    forward: _ArrayFn,
    guess_lon: FloatArray,
    guess_lat: FloatArray,
    lon: FloatArray,
    lat: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Solve forward(w) == (lon, lat) by fixed-point iteration from an initial guess.

    The offsets vary slowly (Jacobian within ~1e-2 of identity), so w <- w - (forward(w) - target)
    contracts by orders of magnitude per step. Points whose residual is below tolerance are
    frozen and dropped from later passes, so the last pass only touches stragglers.
    """
    out_x, out_y = guess_lon.copy(), guess_lat.copy()
    idx = np.arange(lon.size)  # positions (in the outputs) still iterating
    wx, wy, tx, ty = guess_lon, guess_lat, lon, lat
    for _ in range(_MAX_ITER):
        fx, fy = forward(wx, wy)
        ex = fx - tx
        ey = fy - ty
        # NaN residuals (non-finite input) count as done: iterating cannot improve them.
        done = (np.abs(ex) < _TOL_DEG) & (np.abs(ey) < _TOL_DEG)
        active = ~(done | np.isnan(ex + ey))
        n_active = int(np.count_nonzero(active))
        if n_active == 0:
            break
        wx = wx - ex
        wy = wy - ey
        if n_active < idx.size:
            idx, wx, wy, tx, ty = idx[active], wx[active], wy[active], tx[active], ty[active]
        out_x[idx] = wx
        out_y[idx] = wy
    return out_x, out_y


def _inside_only(
    kernel: _ArrayFn, lon: FloatArray, lat: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Apply ``kernel`` to points inside the GCJ rectangle; others pass through unchanged."""
    inside = _in_gcj_rect(lon, lat)
    if inside.all():
        # Common case (all data in China): skip the gather/scatter copies.
        return kernel(lon, lat)
    out_x, out_y = lon.copy(), lat.copy()
    if inside.any():
        rx, ry = kernel(lon[inside], lat[inside])
        out_x[inside] = rx
        out_y[inside] = ry
    return out_x, out_y


def _gcj_forward(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    dx, dy = _gcj_delta(lon, lat)
    return lon + dx, lat + dy


def _gcj_inverse(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    # Subtracting the offset evaluated at the GCJ point is already within a few metres.
    dx, dy = _gcj_delta(lon, lat)
    return _invert(_gcj_forward, lon - dx, lat - dy, lon, lat)


def _bd_forward(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_inverse(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    # The usual closed-form inverse is only approximate (~1e-7 deg); use it as the guess and
    # refine so that BD-09 round trips are exact.
    x = lon - 0.0065
    y = lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return _invert(_bd_forward, z * np.cos(theta), z * np.sin(theta), lon, lat)


# The rectangle test is always made on the input of each step: points outside it were never
# shifted, so they are returned as they are in both directions.
def _wgs84_to_gcj02(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _inside_only(_gcj_forward, lon, lat)


def _gcj02_to_wgs84(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _inside_only(_gcj_inverse, lon, lat)


def _gcj02_to_bd09(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _inside_only(_bd_forward, lon, lat)


def _bd09_to_gcj02(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _inside_only(_bd_inverse, lon, lat)


def _wgs84_to_bd09(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _gcj02_to_bd09(*_wgs84_to_gcj02(lon, lat))


def _bd09_to_wgs84(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _gcj02_to_wgs84(*_bd09_to_gcj02(lon, lat))


def wgs84_to_gcj02(lon: F, lat: F) -> tuple[F, F]:
    """Convert WGS-84 lon/lat to GCJ-02."""
    return _apply(_wgs84_to_gcj02, lon, lat)


def gcj02_to_wgs84(lon: F, lat: F) -> tuple[F, F]:
    """Convert GCJ-02 lon/lat to WGS-84, exact to ~1e-9 degrees by iteration."""
    return _apply(_gcj02_to_wgs84, lon, lat)


def gcj02_to_bd09(lon: F, lat: F) -> tuple[F, F]:
    """Convert GCJ-02 lon/lat to Baidu BD-09."""
    return _apply(_gcj02_to_bd09, lon, lat)


def bd09_to_gcj02(lon: F, lat: F) -> tuple[F, F]:
    """Convert Baidu BD-09 lon/lat to GCJ-02, exact to ~1e-9 degrees by iteration."""
    return _apply(_bd09_to_gcj02, lon, lat)


def wgs84_to_bd09(lon: F, lat: F) -> tuple[F, F]:
    """Convert WGS-84 lon/lat to Baidu BD-09 (via GCJ-02)."""
    return _apply(_wgs84_to_bd09, lon, lat)


def bd09_to_wgs84(lon: F, lat: F) -> tuple[F, F]:
    """Convert Baidu BD-09 lon/lat to WGS-84 (via GCJ-02)."""
    return _apply(_bd09_to_wgs84, lon, lat)


_KERNELS: dict[tuple[CoordSys, CoordSys], _ArrayFn] = {
    (CoordSys.wgs84, CoordSys.gcj02): _wgs84_to_gcj02,
    (CoordSys.gcj02, CoordSys.wgs84): _gcj02_to_wgs84,
    (CoordSys.gcj02, CoordSys.bd09): _gcj02_to_bd09,
    (CoordSys.bd09, CoordSys.gcj02): _bd09_to_gcj02,
    (CoordSys.wgs84, CoordSys.bd09): _wgs84_to_bd09,
    (CoordSys.bd09, CoordSys.wgs84): _bd09_to_wgs84,
}


def _kernel(src: CoordSys | str, dst: CoordSys | str) -> _ArrayFn | None:
    """Array kernel for src -> dst, or None for the identity. Raises ValueError if unknown."""
    try:
        s, d = CoordSys(src), CoordSys(dst)
    except ValueError as exc:
        raise ValueError(
            f"unknown coordinate system {src!r} -> {dst!r}; expected one of "
            f"{', '.join(c.value for c in CoordSys)}"
        ) from exc
    if s == d:
        return None
    return _KERNELS[(s, d)]


def _identity(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return lon, lat


def convert(lon: F, lat: F, src: CoordSys | str, dst: CoordSys | str) -> tuple[F, F]:
    """Convert lon/lat from ``src`` to ``dst``; identity (a copy for arrays) when equal."""
    return _apply(_kernel(src, dst) or _identity, lon, lat)


def transform_geometry(
    geom: shapely.Geometry, src: CoordSys | str, dst: CoordSys | str
) -> shapely.Geometry:
    """Convert every vertex of a shapely geometry from ``src`` to ``dst`` in one vector pass.

    Z values are kept as they are. Ring closure survives because equal input vertices map to
    equal output vertices (the conversion is deterministic).
    """
    kernel = _kernel(src, dst)
    if kernel is None:
        return geom

    def _xy(coords: FloatArray) -> FloatArray:
        out = np.array(coords, dtype=np.float64)
        if len(out):
            out[:, 0], out[:, 1] = kernel(out[:, 0].copy(), out[:, 1].copy())
        return out

    # include_z only when present: in shapely 2.0 include_z=True would add NaN Z to 2D input.
    return shapely.transform(geom, _xy, include_z=bool(shapely.has_z(geom)))
