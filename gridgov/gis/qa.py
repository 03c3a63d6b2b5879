"""Spatial QA: the geometry problems GIS staff must fix, found by PostGIS in one statement each.

Each check is one query with a row per finding (``Check.sql``): ids, village, sort key, geometry
and attributes. Two readers share it. ``run_check`` (/api/v1/qa/{check}) wraps it in a statement
that counts the findings, counts them per village and returns the first ``limit`` as GeoJSON
features; the OGC API serves it as a collection ``qa_<check>`` (gridgov.gis.layers), paged like
every other layer. All JSON is built inside PostgreSQL. Areas and distances are measured on the
spheroid (geography) in square metres and metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov import wire
from gridgov.auth.scope import Scope
from gridgov.errors import FieldError, NotFound, PayloadInvalid
from gridgov.gis.geometry_sql import rounded_geometry_sql

LIMIT_DEFAULT = 1000
LIMIT_MAX = 10_000
ACTIVE_CONTACT = (
    "c.valid_from <= current_date AND (c.valid_to IS NULL OR c.valid_to > current_date)"
)


@dataclass(frozen=True)
class Attr:
    """One attribute of a finding: its SQL over the check's aliases and its JSON Schema type."""

    name: str
    sql: str
    type: str
    title: str
    filter: bool = False  # offered as an equality filter on the OGC collection


@dataclass(frozen=True)
class Check:
    """One check: a query with a row per finding, shared by /api/v1/qa and the OGC collection.

    ``body`` is the FROM … WHERE … of the query, with ``:threshold`` and ``{scope}`` (filled by
    ``scope_sql``); ``sql`` selects from it the columns ``id`` (a bigint, the OGC feature id),
    ``key`` (the QA feature id), ``village_id``, ``sort``, ``geom``, ``updated_at`` (newest
    change of the rows involved) and one column per attribute.
    """

    id: str
    title: str
    description: str
    body: str
    fid: str
    key: str
    village: str
    sort: str
    geom: str
    updated: str
    attrs: tuple[Attr, ...]
    geometry_type: str  # polygon, point or line
    scope_kind: str
    scope_alias: str  # several comma-separated: a finding is seen if any of them is in scope
    threshold: str  # "area" (m², at least), "distance" (m, more than) or "none"
    default: float

    @property
    def sql(self) -> str:
        attrs = "".join(f", {a.sql} AS {a.name}" for a in self.attrs)
        return (
            f"SELECT {self.fid} AS id, {self.key} AS key, {self.village} AS village_id,"
            f" {self.sort} AS sort, {self.geom} AS geom, {self.updated} AS updated_at{attrs}"
            f" {self.body}"
        )

    @property
    def scope_aliases(self) -> tuple[str, ...]:
        return tuple(self.scope_alias.split(","))


def scope_sql(scope: Scope, kind: str, aliases: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """The scope filter over several aliases of one kind: a row is seen if any is in scope."""
    fragments: list[str] = []
    params: dict[str, Any] = {}
    for alias in aliases:
        fragment, params = scope.sql(kind, alias)  # same parameters for each alias
        fragments.append(fragment)
    return "(" + " OR ".join(fragments) + ")", params


# Feature ids of the OGC collections are numbers: a pair of ids packs into one bigint (ids of
# grids and units stay far below 2³², and a village never splits into 2³² gaps).
PAIR = "(({0})::bigint << 32) + ({1})"
VILLAGE_CODE = Attr("village_code", "v.code", "string", "所属村代码", filter=True)
GRID_CODE = Attr("grid_code", "g.code", "string", "所属网格代码", filter=True)
HAMLET = Attr("hamlet", "h.hamlet", "string", "自然村/村民小组")
AREA = Attr("area_m2", "round(x.area::numeric, 1)", "number", "面积（平方米）")
DISTANCE = Attr("distance_m", "round(x.distance::numeric, 1)", "number", "距离（米）")

CHECKS: dict[str, Check] = {
    c.id: c
    for c in (
        Check(
            id="grid_overlaps",
            title="网格重叠",
            description="同时属于两个网格的区域（面积不小于 min_area 平方米）",
            body="FROM grids a JOIN grids b ON b.id > a.id AND b.valid_to IS NULL"
            " AND a.geom && b.geom AND ST_Intersects(a.geom, b.geom)"
            " CROSS JOIN LATERAL (SELECT i.geom, ST_Area(i.geom::geography) AS area FROM"
            " (SELECT ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS geom) i) x"
            " WHERE a.valid_to IS NULL AND NOT ST_IsEmpty(x.geom) AND x.area >= :threshold"
            " AND {scope}",
            fid=PAIR.format("a.id", "b.id"),
            key="a.id || '-' || b.id",
            village="a.village_id",
            sort="x.area",
            geom="x.geom",
            updated="greatest(a.updated_at, b.updated_at)",
            attrs=(
                Attr("grid_code", "a.code", "string", "网格代码", filter=True),
                Attr("grid_name", "a.name", "string", "网格名称"),
                Attr("other_code", "b.code", "string", "与之重叠的网格代码", filter=True),
                Attr("other_name", "b.name", "string", "与之重叠的网格名称"),
                AREA,
            ),
            geometry_type="polygon",
            scope_kind="grid",
            scope_alias="a,b",  # an overlap concerns both grids' keepers
            threshold="area",
            default=1.0,
        ),
        Check(
            id="grid_gaps",
            title="网格空白",
            description="村内不属于任何网格的区域（每块面积不小于 min_area 平方米）",
            body="FROM admin_units v"
            " CROSS JOIN LATERAL (SELECT ST_Union(g.geom) AS geom, max(g.updated_at) AS updated"
            " FROM grids g WHERE g.village_id = v.id AND g.valid_to IS NULL) u"
            " CROSS JOIN LATERAL (SELECT coalesce(d.path[1], 1) AS path, d.geom,"
            " ST_Area(d.geom::geography) AS area FROM ST_Dump(ST_CollectionExtract("
            "CASE WHEN u.geom IS NULL THEN v.geom ELSE ST_Difference(v.geom, u.geom) END, 3)) d) x"
            " WHERE v.level = 'village' AND v.valid_to IS NULL AND v.geom IS NOT NULL"
            " AND x.area >= :threshold AND {scope}",
            fid=PAIR.format("v.id", "x.path"),
            key="v.id || '-' || x.path",  # path: the piece's number (1 for a lone polygon)
            village="v.id",
            sort="x.area",
            geom="x.geom",
            updated="greatest(v.updated_at, u.updated)",
            attrs=(VILLAGE_CODE, Attr("village_name", "v.name", "string", "村名称"), AREA),
            geometry_type="polygon",
            scope_kind="unit",
            scope_alias="v",
            threshold="area",
            default=100.0,
        ),
        Check(
            id="grids_outside_village",
            title="网格超出本村",
            description="网格在所属村边界外的部分（面积不小于 min_area 平方米）",
            body="FROM grids g JOIN admin_units v ON v.id = g.village_id"
            " CROSS JOIN LATERAL (SELECT d.geom, ST_Area(d.geom::geography) AS area FROM"
            " (SELECT ST_CollectionExtract(ST_Difference(g.geom, v.geom), 3) AS geom) d) x"
            " WHERE g.valid_to IS NULL AND v.geom IS NOT NULL AND NOT ST_IsEmpty(x.geom)"
            " AND x.area >= :threshold AND {scope}",
            fid="g.id",
            key="g.id",
            village="g.village_id",
            sort="x.area",
            geom="x.geom",
            updated="greatest(g.updated_at, v.updated_at)",
            attrs=(
                Attr("grid_code", "g.code", "string", "网格代码", filter=True),
                Attr("grid_name", "g.name", "string", "网格名称"),
                VILLAGE_CODE,
                AREA,
            ),
            geometry_type="polygon",
            scope_kind="grid",
            scope_alias="g",
            threshold="area",
            default=1.0,
        ),
        Check(
            id="units_without_boundary",
            title="乡镇、村尚无边界",
            description="按统计用区划代码登记、尚未导入边界的乡镇和村（几何为空），户数多者在前",
            body="FROM admin_units u LEFT JOIN admin_units p ON p.id = u.parent_id"
            " CROSS JOIN LATERAL (SELECT"
            " (SELECT count(*) FROM households h WHERE h.removed_at IS NULL"
            "  AND (h.village_id = u.id OR h.village_id IN (SELECT c.id FROM admin_units c"
            "  WHERE c.parent_id = u.id)))::int AS households,"
            " (SELECT count(*) FROM grids g WHERE g.valid_to IS NULL"
            "  AND left(g.code, length(u.code)) = u.code)::int AS grids) x"
            " WHERE u.level IN ('township', 'village') AND u.valid_to IS NULL"
            " AND u.geom IS NULL AND {scope}",
            fid="u.id",
            key="u.code",
            village="u.id",
            sort="x.households",
            geom="u.geom",
            updated="u.updated_at",
            attrs=(
                Attr("unit_code", "u.code", "string", "区划代码", filter=True),
                Attr("unit_name", "u.name", "string", "名称"),
                Attr("level", "u.level", "string", "层级（township 乡镇 / village 村）", True),
                Attr("parent_code", "p.code", "string", "上级代码", filter=True),
                Attr("household_count", "x.households", "integer", "在册户数"),
                Attr("grid_count", "x.grids", "integer", "已有网格数（尚无法校验是否在界内）"),
            ),
            geometry_type="polygon",
            scope_kind="unit",
            scope_alias="u",
            threshold="none",
            default=0.0,
        ),
        Check(
            id="households_outside_grids",
            title="住户不在任何网格内",
            description="位置不在任何现行网格内的住户",
            body="FROM households h JOIN admin_units v ON v.id = h.village_id"
            " LEFT JOIN grids g ON g.id = h.grid_id"
            " WHERE h.removed_at IS NULL AND NOT EXISTS (SELECT 1 FROM grids o"
            " WHERE o.valid_to IS NULL AND ST_Intersects(o.geom, h.geom))"
            " AND {scope}",
            fid="h.id",
            key="h.id",
            village="h.village_id",
            sort="h.id",
            geom="h.geom",
            updated="h.updated_at",
            attrs=(VILLAGE_CODE, GRID_CODE, HAMLET),
            geometry_type="point",
            scope_kind="household",
            scope_alias="h",
            threshold="none",
            default=0.0,
        ),
        Check(
            id="households_far_from_grid",
            title="住户远离所属网格",
            description="到所属网格边界的距离超过 max_distance 米的住户",
            body="FROM households h JOIN admin_units v ON v.id = h.village_id"
            " JOIN grids g ON g.id = h.grid_id"
            " CROSS JOIN LATERAL (SELECT ST_Distance(h.geom::geography, g.geom::geography)"
            " AS distance) x"
            " WHERE h.removed_at IS NULL AND x.distance > :threshold AND {scope}",
            fid="h.id",
            key="h.id",
            village="h.village_id",
            sort="x.distance",
            geom="h.geom",
            updated="greatest(h.updated_at, g.updated_at)",
            attrs=(VILLAGE_CODE, GRID_CODE, HAMLET, DISTANCE),
            geometry_type="point",
            scope_kind="household",
            scope_alias="h",
            threshold="distance",
            default=50.0,
        ),
        Check(
            id="members_far_from_households",
            title="党员远离联系户",
            description="现行联系关系中，党员住址与联系户相距超过 max_distance 米",
            body="FROM contacts c JOIN households h ON h.id = c.household_id"
            " JOIN party_members m ON m.id = c.member_id"
            " JOIN admin_units v ON v.id = h.village_id LEFT JOIN grids g ON g.id = h.grid_id"
            " CROSS JOIN LATERAL (SELECT ST_Distance(m.geom::geography, h.geom::geography)"
            " AS distance) x"
            f" WHERE {ACTIVE_CONTACT} AND h.removed_at IS NULL AND m.left_at IS NULL"
            " AND m.geom IS NOT NULL AND x.distance > :threshold AND {scope}",
            fid="c.id",
            key="c.id",
            village="h.village_id",
            sort="x.distance",
            geom="ST_MakeLine(m.geom, h.geom)",
            updated="greatest(c.updated_at, h.updated_at, m.updated_at)",
            attrs=(
                Attr("contact_id", "c.id", "integer", "联系关系编号"),
                Attr("member_id", "m.id", "integer", "党员编号"),
                Attr("household_id", "h.id", "integer", "住户编号"),
                Attr("role", "c.role", "string", "联系类型（primary 主要 / secondary 次要）"),
                VILLAGE_CODE,
                GRID_CODE,
                DISTANCE,
            ),
            geometry_type="line",
            scope_kind="household",
            scope_alias="h",
            threshold="distance",
            default=2000.0,
        ),
    )
}
CHECK_IDS = tuple(CHECKS)


def _feature_sql(check: Check) -> str:
    """A finding as the QA endpoint's GeoJSON feature (json), over the check's row ``q``."""
    props = ", ".join(f"'{a.name}', q.{a.name}" for a in check.attrs)
    return (
        "json_build_object('type', 'Feature', 'id', q.key, 'geometry',"
        f" ST_AsGeoJSON({rounded_geometry_sql('q.geom', check.geometry_type)}, 6)::json,"
        f" 'properties', json_build_object({props}))"
    )


def _wrap(check: Check, scope_fragment: str) -> str:
    # The CTE is read three times, so PostgreSQL materialises it: the check runs once.
    check_sql = check.sql.replace("{scope}", scope_fragment)
    return (
        f"WITH found AS (SELECT q.village_id, q.sort, {_feature_sql(check)} AS feature"
        f" FROM ({check_sql}) q) SELECT"
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
    fragment, params = scope_sql(scope, check.scope_kind, check.scope_aliases)
    total, by_unit, features = session.execute(
        text(_wrap(check, fragment)), {**params, "threshold": threshold, "limit": limit}
    ).one()
    parameters: dict[str, Any] = {}
    if check.threshold == "area":
        parameters["min_area"] = threshold
    elif check.threshold == "distance":
        parameters["max_distance"] = threshold
    return wire.dumps(
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
