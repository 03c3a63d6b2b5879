"""Why a geometry cannot be used, in words an official can act on (no database here).

GEOS answers a malformed ring with a Java-style message ("IllegalArgumentException: Points of
LinearRing do not form a closed linestring"): users get a Chinese message with an English
``code``; the library's own words travel separately in ``detail_en``.
"""

from __future__ import annotations

import re
from typing import Any

import shapely

from gridgov.geo.extent import GeoProblem

__all__ = ["parse_problem", "ring_problems", "validity_problems"]

_PATTERNS = (
    (
        re.compile(r"do not form a closed linestring", re.I),
        "ring_not_closed",
        "面的边界环未闭合（首尾坐标应相同）",
    ),
    (
        re.compile(r"Invalid number of points in LinearRing", re.I),
        "ring_too_short",
        "面的边界环点数不足（闭合环至少需要 4 个坐标点）",
    ),
)


def _library_text(exc: BaseException | str) -> str:
    text = str(exc).strip()
    return re.sub(r"^[A-Za-z]+Exception:\s*", "", text).strip()


def parse_problem(exc: BaseException | str) -> GeoProblem:
    """A geometry GEOS could not even build (from GeoJSON or WKB), named by its cause."""
    english = _library_text(exc)
    for pattern, code, message in _PATTERNS:
        if pattern.search(english):
            return GeoProblem(code, message, english)
    return GeoProblem(
        "geometry_unparsable", "几何无法解析（坐标结构不符合 GeoJSON/WKB 规范）", english
    )


def ring_problems(geometry: dict[str, Any]) -> list[GeoProblem]:
    """Rings of a GeoJSON Polygon/MultiPolygon that are not closed or too short, one problem per
    kind (with the ring's position), found before GEOS refuses the whole geometry."""
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if kind == "Polygon":
        polygons = [coordinates]
    elif kind == "MultiPolygon":
        polygons = coordinates
    else:
        return []
    if not isinstance(polygons, list):
        return []
    unclosed: list[str] = []
    short: list[str] = []
    for p, polygon in enumerate(polygons):
        if not isinstance(polygon, list):
            continue
        for r, ring in enumerate(polygon):
            if not isinstance(ring, list) or not ring:
                continue
            where = (
                f"第 {p + 1} 个面的第 {r + 1} 个环"
                if kind == "MultiPolygon"
                else f"第 {r + 1} 个环"
            )
            if ring[0] != ring[-1]:
                unclosed.append(where)
            if len(ring) < 4:
                short.append(where)
    problems = []
    if unclosed:
        problems.append(
            GeoProblem(
                "ring_not_closed",
                f"面的边界环未闭合（首尾坐标应相同）：{'、'.join(unclosed[:5])}",
                "LinearRing is not closed",
            )
        )
    if short:
        problems.append(
            GeoProblem(
                "ring_too_short",
                f"面的边界环点数不足（闭合环至少需要 4 个坐标点）：{'、'.join(short[:5])}",
                "LinearRing has fewer than 4 points",
            )
        )
    return problems


def validity_problems(geom: shapely.Geometry) -> list[GeoProblem]:
    """OGC validity as GEOS judges it (the same reason PostGIS's ST_IsValidReason gives)."""
    if geom is None or shapely.is_empty(geom) or shapely.is_valid(geom):
        return []
    reason = shapely.is_valid_reason(geom)
    return [GeoProblem("invalid_geometry", f"几何无效：{reason}", reason)]
