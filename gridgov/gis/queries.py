"""SQL for map reads: each function returns one clause or one statement with bound parameters.

PostgreSQL builds every feature's GeoJSON (or HTML row, or MVT tile); Python only moves bytes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from gridgov.auth.scope import Scope
from gridgov.cells import safe_cell_sql
from gridgov.gis import qa
from gridgov.gis.geometry_sql import rounded_geometry_sql
from gridgov.gis.layers import BOUND, Layer, Prop

BBox = tuple[float, float, float, float]
DatetimeRange = tuple[datetime | None, datetime | None]


def geometry_sql(layer: Layer) -> str:
    return rounded_geometry_sql("t.geom", layer.geometry_type)


def feature_sql(layer: Layer) -> str:
    """One feature as GeoJSON (json), 6 decimals (~0.1 m)."""
    props = ", ".join(f"'{p.name}', {p.sql}" for p in layer.props)
    return (
        "json_build_object('type', 'Feature', 'id', t.id, "
        f"'geometry', ST_AsGeoJSON({geometry_sql(layer)}, 6)::json, "
        f"'properties', json_build_object({props}))"
    )


def _html_cell(expr: str) -> str:
    return (
        f"'<td>' || replace(replace(replace(replace(coalesce(({expr})::text, ''), "
        "'&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '\"', '&quot;') || '</td>'"
    )


def html_row_sql(layer: Layer) -> str:
    """One feature as an HTML table row (for people looking at a page in a browser)."""
    cells = " || ".join(
        _html_cell(f"array_to_string({p.sql}, '、')" if p.type == "array" else p.sql)
        for p in layer.props
    )
    return (
        "'<tr><td><a href=\"' || :href_base || t.id || :href_query || '\">' || t.id"
        " || '</a></td>' || "
        f"{cells} || '<td>' || coalesce(ST_GeometryType(t.geom), '（无几何）') || '</td></tr>'"
    )


def where_sql(
    layer: Layer,
    scope: Scope,
    *,
    bbox: BBox | None = None,
    datetime_range: DatetimeRange | None = None,
    filters: dict[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The layer's rows in the caller's scope that match the request's filters."""
    if layer.scope_aliases:
        raise ValueError(f"{layer.id}: a derived layer needs bind_scope() first")
    if layer.scope_kind == BOUND:  # the scope is inside the FROM already
        scope_sql, params = "true", dict(layer.params)
    else:
        scope_sql, params = scope.sql(layer.scope_kind, "t")
    clauses = [f"({layer.where})", scope_sql]
    if bbox is not None:
        clauses.append(
            "t.geom && ST_MakeEnvelope(:bbox_minx, :bbox_miny, :bbox_maxx, :bbox_maxy, 4326)"
            " AND ST_Intersects(t.geom,"
            " ST_MakeEnvelope(:bbox_minx, :bbox_miny, :bbox_maxx, :bbox_maxy, 4326))"
        )
        params.update(zip(("bbox_minx", "bbox_miny", "bbox_maxx", "bbox_maxy"), bbox, strict=True))
    if datetime_range is not None:
        start, end = datetime_range
        if start is not None and start == end:
            clauses.append("t.updated_at = :dt_start")
        else:
            if start is not None:
                clauses.append("t.updated_at >= :dt_start")
            if end is not None:
                clauses.append("t.updated_at <= :dt_end")
        params.update(dt_start=start, dt_end=end)
    for name, value in (filters or {}).items():
        prop = layer.filters[name]  # names were checked against the whitelist by the caller
        assert prop.filter is not None
        clauses.append(prop.filter.replace(":v", f":f_{name}"))
        params[f"f_{name}"] = value
    return " AND ".join(clauses), params


def bind_scope(layer: Layer, scope: Scope) -> Layer:
    """A derived layer (spatial QA) with the caller's scope written into its FROM, where it
    filters the check's own tables (so PostgreSQL uses their indexes); other layers as they are.
    ``where_sql`` refuses an unbound derived layer: it cannot leak rows by being forgotten."""
    if not layer.scope_aliases:
        return layer
    fragment, params = qa.scope_sql(scope, layer.scope_kind, layer.scope_aliases)
    from_sql = layer.from_sql.replace("{scope}", fragment)
    return replace(
        layer,
        from_sql=from_sql,
        table_sql=from_sql,
        scope_kind=BOUND,
        scope_aliases=(),
        params=(*layer.params, *params.items()),
    )


def items_sql(layer: Layer, where: str, *, html: bool) -> str:
    """One page: rows after ``:after_id`` in id order, ``:fetch`` of them (a page plus one)."""
    body = html_row_sql(layer) if html else feature_sql(layer)
    return (
        f"SELECT t.id, convert_to(({body})::text, 'UTF8') "
        f"FROM {layer.from_sql} WHERE {where} AND t.id > :after_id "
        "ORDER BY t.id LIMIT :fetch"
    )


def item_sql(layer: Layer, where: str) -> str:
    return f"SELECT ({feature_sql(layer)})::text FROM {layer.from_sql} WHERE {where} AND t.id = :id"


def extent_sql(layer: Layer, where: str) -> str:
    """The bounding box of the caller's part of the layer, as four numbers (NULLs if empty)."""
    return (
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM ("
        f"SELECT ST_Extent(t.geom) AS e FROM {layer.table_sql} WHERE {where}) x"
    )


# -- vector tiles ------------------------------------------------------------------------------

MVT_EXTENT = 4096
MVT_BUFFER = 64
CLUSTER_CELLS = 16  # clusters per tile side below a point layer's cluster zoom (16 px cells)


def version_sql(layer: Layer) -> str:
    """The layer's data version: oldest and newest change and number of changes noted on its
    tables (gridgov/gis/versions.py computes the same string from memory).

    The count matters: a transaction may take an id from the sequence, then commit after one
    with a higher id; the maximum alone would not move then, the count does. The oldest id
    matters once changes are compacted (``COMPACT_CHANGES_SQL``): compaction lowers the count,
    but also raises the oldest id, so a version string is never reused for other data.
    """
    tables = ", ".join(f"'{table}'" for table in layer.tables)
    return (
        "SELECT coalesce(min(id), 0) || '.' || coalesce(max(id), 0) || '.' || count(*)"
        f" FROM layer_changes WHERE table_name IN ({tables})"
    )


# What the change trigger (gis_note_change, migrations 0005 and 0009) does, for a table written
# by a job that knows better than a trigger whether what a layer shows has changed (the grids
# layer reads its counts from dash_status, rewritten by every rollup refresh).
NOTE_CHANGE_SQL = (
    "WITH n AS (INSERT INTO layer_changes (table_name) VALUES (:table) RETURNING id)"
    " SELECT pg_notify('gridgov_layer_changes', :table) FROM n"
)


# ``gridgov jobs run``: only the newest change per table is kept (the versions need no more);
# every cached tile is rendered afresh once afterwards.
COMPACT_CHANGES_SQL = """
DELETE FROM layer_changes c
WHERE c.id < (SELECT max(m.id) FROM layer_changes m WHERE m.table_name = c.table_name)
"""


def _mvt_value(prop_sql: str, type_: str, sep: str = ",") -> str:
    # MVT attributes and CSV cells are scalars: lists travel as joined text.
    return f"array_to_string({prop_sql}, '{sep}')" if type_ == "array" else prop_sql


def tile_sql(layer: Layer, where: str) -> str:
    """Features of one tile: simplified for the zoom, clipped with a buffer, one MVT layer."""
    props = "".join(f", {_mvt_value(p.sql, p.type)} AS {p.name}" for p in layer.props if p.tile)
    geom = "t.geom_3857"
    if layer.geometry_type == "polygon":
        # One MVT unit at this zoom: finer detail would be snapped away by ST_AsMVTGeom anyway;
        # preserveCollapsed keeps tiny grids visible instead of dropping them.
        geom = "ST_Simplify(t.geom_3857, :tolerance, true)"
    return (
        "WITH b AS (SELECT ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 3857) AS env,"
        " ST_MakeEnvelope(:minx - :margin, :miny - :margin, :maxx + :margin, :maxy + :margin,"
        " 3857) AS benv) "
        f"SELECT ST_AsMVT(q, :layer, {MVT_EXTENT}, 'geom', 'id') FROM ("
        f"SELECT t.id{props}, ST_AsMVTGeom({geom}, b.env, {MVT_EXTENT}, {MVT_BUFFER}, true)"
        f" AS geom FROM b CROSS JOIN {layer.from_sql} WHERE {where} AND t.geom_3857 && b.benv"
        # No "WHERE geom IS NOT NULL" outside: PostgreSQL would push it down and clip every
        # geometry twice; ST_AsMVT skips the NULLs (features clipped away) by itself.
        ") q"
    )


def cluster_tile_sql(layer: Layer, where: str) -> str:
    """Points of one tile counted per cell (cells aligned to tiles, so each point is counted in
    exactly one tile): a feature per non-empty cell at its points' centroid, with ``count``."""
    return (
        "WITH b AS (SELECT ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 3857) AS env), "
        "xy AS (SELECT ST_X(t.geom_3857) AS x, ST_Y(t.geom_3857) AS y"
        f" FROM b CROSS JOIN {layer.table_sql} WHERE {where} AND t.geom_3857 && b.env) "
        f"SELECT ST_AsMVT(q, :layer, {MVT_EXTENT}, 'geom') FROM ("
        "SELECT count(*)::int AS count, true AS cluster,"
        " ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(avg(xy.x), avg(xy.y)), 3857), b.env,"
        f" {MVT_EXTENT}, {MVT_BUFFER}, true) AS geom"
        " FROM xy CROSS JOIN b"
        # Half-open like the tile index itself: [minx, maxx) × (miny, maxy].
        " WHERE xy.x >= :minx AND xy.x < :maxx AND xy.y > :miny AND xy.y <= :maxy"
        " GROUP BY floor((xy.x - :minx) / :cell), floor((:maxy - xy.y) / :cell), b.env) q"
    )


# -- exports -----------------------------------------------------------------------------------


def export_features_sql(layer: Layer, where: str) -> str:
    """Every matching feature as GeoJSON bytes, in id order (one row each)."""
    return (
        f"SELECT convert_to(({feature_sql(layer)})::text, 'UTF8') "
        f"FROM {layer.from_sql} WHERE {where} ORDER BY t.id"
    )


def _csv_value(prop: Prop) -> str:
    """A CSV cell: numbers as they are, text (and joined lists) through the cell sanitiser."""
    value = _mvt_value(prop.sql, prop.type, ";")
    return value if prop.type in ("integer", "number", "boolean") else safe_cell_sql(value)


def export_csv_sql(layer: Layer, where: str) -> str:
    """A COPY statement writing the layer as CSV with a header: id, properties, then lon/lat
    for points or WKT for areas (WGS84, 6 decimals). Lists are joined with ';'."""
    columns = ["t.id AS id"] + [f"{_csv_value(p)} AS {p.name}" for p in layer.props]
    if layer.geometry_type == "point":
        columns += [
            "round(ST_X(t.geom)::numeric, 6) AS lon",
            "round(ST_Y(t.geom)::numeric, 6) AS lat",
        ]
    else:
        columns.append(f"ST_AsText({geometry_sql(layer)}, 6) AS wkt")
    select = f"SELECT {', '.join(columns)} FROM {layer.from_sql} WHERE {where} ORDER BY t.id"
    return f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER true)"


def export_rows_sql(layer: Layer, props: tuple[Prop, ...], where: str, *, point: bool) -> str:
    """Rows for GDAL and spreadsheet files: id, each property (lists joined with ';', dates as
    text), then the WGS84 geometry as WKB — multi-polygons for areas, or with ``point`` one
    point on each area's surface (for a spreadsheet's lon/lat columns)."""
    columns = ["t.id"]
    for p in props:
        value = _mvt_value(p.sql, p.type, ";")
        columns.append(value if p.type in ("integer", "number") else f"({value})::text")
    if layer.geometry_type == "point":
        geom = "t.geom"
    else:
        geom = "ST_PointOnSurface(t.geom)" if point else "ST_Multi(t.geom)"
    columns.append(f"ST_AsBinary({geom})")
    return f"SELECT {', '.join(columns)} FROM {layer.from_sql} WHERE {where} ORDER BY t.id"
