"""GeoJSON geometry in request and response bodies, and its conversion to/from shapely.

Input is parsed and checked here, in Python, so that malformed coordinates become a 422 naming
the field instead of a PostGIS error. Coordinates arrive in ``coord_sys`` and leave in it too;
storage is always WGS84 (DESIGN §4).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import shapely
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from gridgov.errors import FieldError, InvalidGeometry
from gridgov.geo import CoordSys, GeoProblem, check_coordinates, transform_geometry
from gridgov.geo.validity import parse_problem, ring_problems, validity_problems

Position = Annotated[list[float], Field(min_length=2, max_length=3)]


class PointGeometry(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["Point"]
    coordinates: Position


class PolygonGeometry(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["Polygon"]
    coordinates: list[list[Position]]


class MultiPolygonGeometry(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["MultiPolygon"]
    coordinates: list[list[list[Position]]]


def _area_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in ("Polygon", "MultiPolygon") else None


# A callable discriminator so that a Point (or anything else) for an area is one Chinese error
# with an English code, not pydantic's English "union_tag_invalid".
AreaGeometry = Annotated[
    Annotated[PolygonGeometry, Tag("Polygon")]
    | Annotated[MultiPolygonGeometry, Tag("MultiPolygon")],
    Discriminator(
        _area_tag,
        custom_error_type="geometry_type",
        custom_error_message="几何类型应为面（Polygon/MultiPolygon）",
    ),
    Field(description="GeoJSON 面"),
]

_POLYGONAL = {"Polygon", "MultiPolygon"}


def parse_geometry(
    value: BaseModel | dict[str, Any],
    *,
    loc: list[str | int],
    kind: Literal["point", "area"],
    coord_sys: CoordSys = CoordSys.wgs84,
) -> shapely.Geometry:
    """GeoJSON → WGS84 shapely geometry (MultiPolygon for areas), or InvalidGeometry naming loc.

    Only structure and coordinates are checked here; topological validity is judged by PostGIS
    (ST_IsValidReason) in the write rules so that every write path gives the same reason.
    """
    data = value.model_dump() if isinstance(value, BaseModel) else value
    problems = ring_problems(data) if isinstance(data, dict) else []
    if problems:
        raise InvalidGeometry([_field_error(loc, p) for p in problems])
    try:
        geom = shapely.from_geojson(json.dumps(data))
    except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
        raise InvalidGeometry([_field_error(loc, parse_problem(exc))]) from exc
    expected = {"Point"} if kind == "point" else _POLYGONAL
    if geom.geom_type not in expected:
        label = "点" if kind == "point" else "面（Polygon/MultiPolygon）"
        raise InvalidGeometry(
            [FieldError(loc, f"几何类型应为{label}，收到 {geom.geom_type}", "geometry_type")]
        )
    problems = check_coordinates(geom)
    if problems:
        # The geometry never reaches PostGIS: every other broken rule is named here too.
        problems += validity_problems(geom)
        raise InvalidGeometry([_field_error(loc, p) for p in problems])
    if coord_sys != CoordSys.wgs84:
        geom = transform_geometry(geom, coord_sys, CoordSys.wgs84)
    if geom.geom_type == "Polygon":
        geom = shapely.MultiPolygon([geom])
    return shapely.force_2d(geom)


def _field_error(loc: list[str | int], problem: GeoProblem) -> FieldError:
    return FieldError(loc, problem.message, problem.code, detail_en=problem.detail_en)


def to_geojson(wkb_or_geojson: bytes | str | dict[str, Any] | None, coord_sys: CoordSys) -> Any:
    """A stored WGS84 geometry (as GeoJSON text from PostGIS) out in ``coord_sys``."""
    if wkb_or_geojson is None:
        return None
    if isinstance(wkb_or_geojson, dict):
        data = wkb_or_geojson
    elif isinstance(wkb_or_geojson, bytes):
        return json.loads(shapely.to_geojson(_out(shapely.from_wkb(wkb_or_geojson), coord_sys)))
    else:
        data = json.loads(wkb_or_geojson)
    if coord_sys == CoordSys.wgs84:
        return data
    geom = transform_geometry(shapely.from_geojson(json.dumps(data)), CoordSys.wgs84, coord_sys)
    return json.loads(shapely.to_geojson(shapely.set_precision(geom, 1e-7)))


def _out(geom: shapely.Geometry, coord_sys: CoordSys) -> shapely.Geometry:
    if coord_sys == CoordSys.wgs84:
        return geom
    return transform_geometry(geom, CoordSys.wgs84, coord_sys)
