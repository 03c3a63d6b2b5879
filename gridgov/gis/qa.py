"""Spatial QA: the geometry problems GIS staff must fix, found by PostGIS in one statement each.

Each check is a SELECT yielding ``village_id``, a sort key and a ready GeoJSON feature (json);
one wrapping statement counts the findings, counts them per village and returns the first
``limit`` features — all JSON built inside PostgreSQL. Areas and distances are measured on the
spheroid (geography) in square metres and metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.auth.scope import Scope
from gridgov.errors import FieldError, NotFound, PayloadInvalid

LIMIT_DEFAULT = 1000
LIMIT_MAX = 10_000
ACTIVE_CONTACT = (
    "c.valid_from <= current_date AND (c.valid_to IS NULL OR c.valid_to > current_date)"
)


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    description: str
    sql: str  # uses :threshold and the scope's parameters; columns village_id, sort, feature
    scope_kind: str
    scope_alias: str  # several comma-separated: a finding is seen if any of them is in scope
    threshold: str  # "area" (m², at least) or "distance" (m, more than)
    default: float


def _feature(id_sql: str, props: str, geom: str) -> str:
    return (
        f"json_build_object('type', 'Feature', 'id', {id_sql}, 'geometry',"
        f" ST_AsGeoJSON({geom}, 6)::json, 'properties', json_build_object({props})) AS feature"
    )


CHECKS: dict[str, Check] = {
    c.id: c
    for c in (
        Check(
            "grid_overlaps",
            "网格重叠",
            "同时属于两个网格的区域（面积不小于 min_area 平方米）",
            "SELECT a.village_id, x.area AS sort, "
            + _feature(
                "a.id || '-' || b.id",
                "'grid_code', a.code, 'grid_name', a.name, 'other_code', b.code,"
                " 'other_name', b.name, 'area_m2', round(x.area::numeric, 1)",
                "x.geom",
            )
            + " FROM grids a JOIN grids b ON b.id > a.id AND b.valid_to IS NULL"
            " AND a.geom && b.geom AND ST_Intersects(a.geom, b.geom)"
            " CROSS JOIN LATERAL (SELECT i.geom, ST_Area(i.geom::geography) AS area FROM"
            " (SELECT ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS geom) i) x"
            " WHERE a.valid_to IS NULL AND NOT ST_IsEmpty(x.geom) AND x.area >= :threshold"
            " AND {scope}",
            "grid",
            "a,b",  # an overlap concerns both grids' keepers
            "area",
            1.0,
        ),
        Check(
            "grid_gaps",
            "网格空白",
            "村内不属于任何网格的区域（每块面积不小于 min_area 平方米）",
            "SELECT v.id AS village_id, x.area AS sort, "
            + _feature(
                "v.id || '-' || x.path",
                "'village_code', v.code, 'village_name', v.name,"
                " 'area_m2', round(x.area::numeric, 1)",
                "x.geom",
            )
            + " FROM admin_units v"
            " CROSS JOIN LATERAL (SELECT ST_Union(g.geom) AS geom FROM grids g"
            " WHERE g.village_id = v.id AND g.valid_to IS NULL) u"
            " CROSS JOIN LATERAL (SELECT d.path[1] AS path, d.geom,"
            " ST_Area(d.geom::geography) AS area FROM ST_Dump(ST_CollectionExtract("
            "CASE WHEN u.geom IS NULL THEN v.geom ELSE ST_Difference(v.geom, u.geom) END, 3)) d) x"
            " WHERE v.level = 'village' AND v.valid_to IS NULL AND v.geom IS NOT NULL"
            " AND x.area >= :threshold AND {scope}",
            "unit",
            "v",
            "area",
            100.0,
        ),
        Check(
            "grids_outside_village",
            "网格超出本村",
            "网格在所属村边界外的部分（面积不小于 min_area 平方米）",
            "SELECT g.village_id, x.area AS sort, "
            + _feature(
                "g.id",
                "'grid_code', g.code, 'grid_name', g.name, 'village_code', v.code,"
                " 'area_m2', round(x.area::numeric, 1)",
                "x.geom",
            )
            + " FROM grids g JOIN admin_units v ON v.id = g.village_id"
            " CROSS JOIN LATERAL (SELECT d.geom, ST_Area(d.geom::geography) AS area FROM"
            " (SELECT ST_CollectionExtract(ST_Difference(g.geom, v.geom), 3) AS geom) d) x"
            " WHERE g.valid_to IS NULL AND v.geom IS NOT NULL AND NOT ST_IsEmpty(x.geom)"
            " AND x.area >= :threshold AND {scope}",
            "grid",
            "g",
            "area",
            1.0,
        ),
        Check(
            "households_outside_grids",
            "住户不在任何网格内",
            "位置不在任何现行网格内的住户",
            "SELECT h.village_id, h.id AS sort, "
            + _feature(
                "h.id",
                "'village_code', v.code, 'grid_code', g.code, 'hamlet', h.hamlet",
                "h.geom",
            )
            + " FROM households h JOIN admin_units v ON v.id = h.village_id"
            " LEFT JOIN grids g ON g.id = h.grid_id"
            " WHERE h.removed_at IS NULL AND NOT EXISTS (SELECT 1 FROM grids o"
            " WHERE o.valid_to IS NULL AND ST_Intersects(o.geom, h.geom))"
            " AND {scope}",
            "household",
            "h",
            "none",
            0.0,
        ),
        Check(
            "households_far_from_grid",
            "住户远离所属网格",
            "到所属网格边界的距离超过 max_distance 米的住户",
            "SELECT h.village_id, x.distance AS sort, "
            + _feature(
                "h.id",
                "'village_code', v.code, 'grid_code', g.code, 'hamlet', h.hamlet,"
                " 'distance_m', round(x.distance::numeric, 1)",
                "h.geom",
            )
            + " FROM households h JOIN admin_units v ON v.id = h.village_id"
            " JOIN grids g ON g.id = h.grid_id"
            " CROSS JOIN LATERAL (SELECT ST_Distance(h.geom::geography, g.geom::geography)"
            " AS distance) x"
            " WHERE h.removed_at IS NULL AND x.distance > :threshold AND {scope}",
            "household",
            "h",
            "distance",
            50.0,
        ),
        Check(
            "members_far_from_households",
            "党员远离联系户",
            "现行联系关系中，党员住址与联系户相距超过 max_distance 米",
            "SELECT h.village_id, x.distance AS sort, "
            + _feature(
                "c.id",
                "'contact_id', c.id, 'member_id', m.id, 'household_id', h.id, 'role', c.role,"
                " 'village_code', v.code, 'grid_code', g.code,"
                " 'distance_m', round(x.distance::numeric, 1)",
                "ST_MakeLine(m.geom, h.geom)",
            )
            + " FROM contacts c JOIN households h ON h.id = c.household_id"
            " JOIN party_members m ON m.id = c.member_id"
            " JOIN admin_units v ON v.id = h.village_id LEFT JOIN grids g ON g.id = h.grid_id"
            " CROSS JOIN LATERAL (SELECT ST_Distance(m.geom::geography, h.geom::geography)"
            " AS distance) x"
            f" WHERE {ACTIVE_CONTACT} AND h.removed_at IS NULL AND m.left_at IS NULL"
            " AND m.geom IS NOT NULL AND x.distance > :threshold AND {scope}",
            "household",
            "h",
            "distance",
            2000.0,
        ),
    )
}
CHECK_IDS = tuple(CHECKS)


def _wrap(check_sql: str) -> str:
    # The CTE is read three times, so PostgreSQL materialises it: the check runs once.
    return (
        f"WITH found AS ({check_sql}) SELECT"
        " (SELECT count(*) FROM found),"
        " (SELECT coalesce(json_agg(json_build_object('village_code', u.code, 'village_name',"
        " u.name, 'township_code', p.code, 'count', n.n) ORDER BY u.code), '[]'::json)"
        " FROM (SELECT village_id, count(*) AS n FROM found GROUP BY village_id) n"
        " JOIN admin_units u ON u.id = n.village_id"
        " LEFT JOIN admin_units p ON p.id = u.parent_id),"
        " (SELECT coalesce(json_agg(f.feature ORDER BY f.sort DESC), '[]'::json) FROM"
        " (SELECT feature, sort FROM found ORDER BY sort DESC LIMIT :limit) f)"
    )


def _invalid(name: str, msg: str) -> PayloadInvalid:
    return PayloadInvalid([FieldError(["query", name], msg, "invalid_parameter")])


def run_check(
    session: Session,
    scope: Scope,
    check_id: str,
    *,
    min_area: float | None = None,
    max_distance: float | None = None,
    limit: int = LIMIT_DEFAULT,
) -> bytes:
    """A GeoJSON FeatureCollection of the findings (largest first) with ``total`` and counts
    per village (``by_unit``)."""
    check = CHECKS.get(check_id)
    if check is None:
        raise NotFound("质检项")
    if not 1 <= limit <= LIMIT_MAX:
        raise _invalid("limit", f"limit 应为 1–{LIMIT_MAX}")
    if min_area is not None and check.threshold != "area":
        raise _invalid("min_area", "此质检项不使用 min_area")
    if max_distance is not None and check.threshold != "distance":
        raise _invalid("max_distance", "此质检项不使用 max_distance")
    threshold = min_area if check.threshold == "area" else max_distance
    threshold = check.default if threshold is None else threshold
    if not 0 <= threshold <= 1e9:
        raise _invalid("min_area" if check.threshold == "area" else "max_distance", "取值超出范围")
    scope_sql = ""
    params: dict[str, Any] = {}
    for alias in check.scope_alias.split(","):
        fragment, params = scope.sql(check.scope_kind, alias)  # same parameters for each alias
        scope_sql = f"{scope_sql} OR {fragment}" if scope_sql else fragment
    scope_sql = f"({scope_sql})"
    sql = _wrap(check.sql.replace("{scope}", scope_sql))
    total, by_unit, features = session.execute(
        text(sql), {**params, "threshold": threshold, "limit": limit}
    ).one()
    parameters: dict[str, Any] = {}
    if check.threshold == "area":
        parameters["min_area"] = threshold
    elif check.threshold == "distance":
        parameters["max_distance"] = threshold
    return orjson.dumps(
        {
            "type": "FeatureCollection",
            "check": check.id,
            "title": check.title,
            "description": check.description,
            "parameters": parameters,
            "total": total,
            "truncated": total > len(features),
            "by_unit": by_unit,
            "features": features,
        }
    )
