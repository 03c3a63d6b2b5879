"""CRS resolution and cached pyproj transformers to and from WGS-84 lon/lat.

gridgov stores geometries as EPSG:4326 lon/lat. Uploads arrive in WGS-84, CGCS2000 (EPSG:4490,
the national datum) or CGCS2000 Gauss-Krüger projections (EPSG:4513-4554) and occasionally
others; these helpers turn whatever the user declared into a ``pyproj.CRS`` and a geometry
transformer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray
from pyproj.exceptions import CRSError

__all__ = [
    "CGCS2000",
    "WEB_MERCATOR",
    "WGS84",
    "GeometryTransform",
    "is_geographic_wgs84_like",
    "resolve_crs",
    "transformer_from_wgs84",
    "transformer_to_wgs84",
]

WGS84 = 4326
CGCS2000 = 4490
WEB_MERCATOR = 3857

GeometryTransform = Callable[[shapely.Geometry], shapely.Geometry]

# Names users actually type, normalised by _normalise_name (upper case, no spaces/-/_).
_ALIASES: dict[str, int] = {
    "WGS84": WGS84,
    "WGS1984": WGS84,
    "CRS84": WGS84,  # OGC:CRS84 is WGS-84 in lon/lat order; we always use lon/lat anyway.
    "OGCCRS84": WGS84,
    "CGCS2000": CGCS2000,
    "CGCS2000GEOGRAPHIC": CGCS2000,
    "CHINAGEODETICCOORDINATESYSTEM2000": CGCS2000,
    "国家2000": CGCS2000,
    "2000国家大地坐标系": CGCS2000,
    "中国2000国家大地坐标系": CGCS2000,
    "WEBMERCATOR": WEB_MERCATOR,
    "PSEUDOMERCATOR": WEB_MERCATOR,
    "WGS84WEBMERCATOR": WEB_MERCATOR,
}

# Obfuscated web-map systems that look like CRS names but are not EPSG CRSes.
_NOT_CRS = {"GCJ02", "GCJ", "火星坐标", "火星坐标系", "BD09", "BD09LL", "BAIDU"}

_EPSG_RE = re.compile(r"^(?:EPSG)?[:\s]*(\d{4,6})$", re.IGNORECASE)


def _normalise_name(text: str) -> str:
    return re.sub(r"[\s\-_]", "", text).upper()


def _checked(crs: pyproj.CRS, shown: str) -> pyproj.CRS:
    """Reject CRSes that cannot place 2-D geometries (vertical, geocentric, engineering...)."""
    if not (crs.is_geographic or crs.is_projected):
        raise ValueError(
            f"坐标系 {shown} 不是地理坐标系或投影坐标系，无法用于平面几何（not a horizontal CRS）"
        )
    return crs


def resolve_crs(value: str | int | pyproj.CRS | None) -> pyproj.CRS:
    """Turn a user-declared CRS into a ``pyproj.CRS``.

    Accepts EPSG codes (``4490``, ``"4490"``, ``"EPSG:4490"``), common names (``"WGS84"``,
    ``"CGCS2000"``, ``"国家2000"``), WKT (e.g. the text of a Shapefile ``.prj``), PROJ strings
    and ``pyproj.CRS`` objects. ``None`` means "not declared" and resolves to WGS-84, the storage
    CRS; coordinate checks then catch projected metres that were not declared.
    Raises ``ValueError`` for anything that is not a usable horizontal CRS.
    """
    if value is None:
        return pyproj.CRS.from_epsg(WGS84)
    if isinstance(value, pyproj.CRS):
        return _checked(value, value.name)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"无法识别的坐标系（unsupported CRS value）：{value!r}")
    if isinstance(value, int):
        try:
            return _checked(pyproj.CRS.from_epsg(value), f"EPSG:{value}")
        except CRSError as exc:
            raise ValueError(f"未知的 EPSG 代码（unknown EPSG code）：{value}") from exc

    text = value.strip()
    # Keep error messages readable when someone pastes a whole .prj file.
    shown = repr(text if len(text) <= 60 else text[:57] + "...")
    if not text:
        raise ValueError("坐标系为空（empty CRS）；请填写 EPSG 代码，如 EPSG:4490")
    name = _normalise_name(text)
    if name in _NOT_CRS:
        raise ValueError(
            f"{shown} 是网络地图加偏坐标（GCJ-02/BD-09），不是 EPSG 坐标系；"
            "请先用 gridgov.geo.coords 转换为 WGS84"
        )
    if name in _ALIASES:
        return pyproj.CRS.from_epsg(_ALIASES[name])
    match = _EPSG_RE.match(text)
    if match:
        code = int(match.group(1))
        try:
            return _checked(pyproj.CRS.from_epsg(code), f"EPSG:{code}")
        except CRSError as exc:
            raise ValueError(f"未知的 EPSG 代码（unknown EPSG code）：{code}") from exc
    try:
        crs = pyproj.CRS.from_user_input(text)
    except CRSError as exc:
        raise ValueError(
            f"无法识别的坐标系（unknown CRS）：{shown}；请使用 EPSG 代码，如 EPSG:4490"
        ) from exc
    return _checked(crs, shown)


def is_geographic_wgs84_like(crs: pyproj.CRS | str | int | None) -> bool:
    """True for WGS-84 (EPSG:4326, OGC:CRS84) and CGCS2000 (EPSG:4490) lon/lat.

    CGCS2000 and WGS-84 (G1150+) agree to a few centimetres, far below the accuracy of village
    survey data, so 4490 is treated as 4326 without a datum shift (this is also what PROJ does:
    it has no published 4490->4326 transformation and applies a "ballpark" no-op).
    """
    resolved = resolve_crs(crs)
    if not resolved.is_geographic:
        return False
    if resolved.to_epsg() in (WGS84, CGCS2000):
        return True
    return resolved.to_authority() == ("OGC", "CRS84")


def _cache_key(crs: pyproj.CRS) -> str:
    # crs.srs is the user input (e.g. "EPSG:4545" or the WKT text), cheap and stable.
    return crs.srs or crs.to_wkt()


@lru_cache(maxsize=128)
def _transformer(src: str, dst: str) -> pyproj.Transformer:
    # pyproj >= 3.1 Transformers are thread-safe, so one cached instance can serve every
    # request thread.
    return pyproj.Transformer.from_crs(
        pyproj.CRS.from_user_input(src), pyproj.CRS.from_user_input(dst), always_xy=True
    )


def _identity(geom: shapely.Geometry) -> shapely.Geometry:
    return geom


def _geometry_transform(transformer: pyproj.Transformer) -> GeometryTransform:
    def _xy(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.array(coords, dtype=np.float64)
        if len(out):
            out[:, 0], out[:, 1] = transformer.transform(out[:, 0], out[:, 1])
        return out

    def apply(geom: shapely.Geometry) -> shapely.Geometry:
        # Z is carried through untouched (heights are not reprojected); include_z only when
        # present because shapely 2.0 would otherwise give 2-D input a NaN Z.
        return shapely.transform(geom, _xy, include_z=bool(shapely.has_z(geom)))

    return apply


def transformer_to_wgs84(crs: pyproj.CRS | str | int | None) -> GeometryTransform:
    """Geometry function from ``crs`` to WGS-84 lon/lat; identity for 4326/4490.

    Datums other than WGS-84/CGCS2000 (Beijing 1954, Xi'an 1980) convert only as well as PROJ's
    available transformations allow; without grids that can be off by tens of metres.
    """
    resolved = resolve_crs(crs)
    if is_geographic_wgs84_like(resolved):
        return _identity
    return _geometry_transform(_transformer(_cache_key(resolved), f"EPSG:{WGS84}"))


def transformer_from_wgs84(crs: pyproj.CRS | str | int | None) -> GeometryTransform:
    """Geometry function from WGS-84 lon/lat to ``crs``; identity for 4326/4490."""
    resolved = resolve_crs(crs)
    if is_geographic_wgs84_like(resolved):
        return _identity
    return _geometry_transform(_transformer(f"EPSG:{WGS84}", _cache_key(resolved)))
