"""The layer registry: what each map layer reads, which properties it shows, how it is filtered.

One registry serves the OGC API collections, the vector tiles and the exports (``LAYERS``); the
OGC API also serves the spatial QA findings (``QA_LAYERS``). Every SQL fragment here is a
constant written by us; request values only ever travel as bound parameters. Households carry
no identity (head of household, phone, ID number, address): maps are shared widely (DESIGN §8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gridgov.gis import qa
from gridgov.wire import sql_time


@dataclass(frozen=True)
class Prop:
    """One feature property: its SQL over the layer's alias ``t`` and, if filterable, how."""

    name: str
    sql: str
    type: str  # JSON Schema type: string, integer, number, boolean, array
    title: str
    # A WHERE fragment using the bound parameter ``:v`` (renamed per filter), or None.
    filter: str | None = None
    tile: bool = True  # also an MVT attribute (arrays become comma-joined text)


@dataclass(frozen=True)
class TileGeoms:
    """Geometry prepared per zoom for the layer's tiles below zoom ``below`` (migration 0013):
    ``table`` holds, per row of the layer (its id in column ``key``) and zoom, ``geom``
    simplified by one MVT unit of the zoom and ``tile_geom``, that geometry snapped and
    validated in the zoom's whole-world pixel grid."""

    table: str
    key: str
    below: int


@dataclass(frozen=True)
class Layer:
    id: str
    title: str
    description: str
    scope_kind: str  # the kind passed to Scope.sql
    table_sql: str  # the layer's own table, aliased ``t`` (enough for ``where`` and scope)
    from_sql: str  # FROM clause: ``table_sql`` and the joins the properties need
    where: str  # rows that belong to the layer at all (current, not removed)
    props: tuple[Prop, ...]
    geometry_type: str  # "polygon" or "point"
    # Tables whose writes change what this layer shows (its data version).
    tables: tuple[str, ...]
    # Below this zoom a point layer is drawn as clusters with a count, never dropped.
    cluster_below: int | None = None
    # The clusters counted in advance (migration 0014): per level (zoom + 4), cell, village and
    # grid, the number of the layer's rows (what ``where`` keeps) and the sums of their offsets.
    # Keyed by what ``Scope.sql`` filters the layer by, so the scope applies to it unchanged.
    clusters: str | None = None
    tile_geoms: TileGeoms | None = None
    # A derived layer (spatial QA): ``from_sql`` is a query with a ``{scope}`` placeholder that
    # takes the caller's scope over these aliases inside it (queries.bind_scope), and ``params``
    # are bound parameters it needs. Such a layer is an OGC collection only (no tiles, no
    # exports) and shows no extent (computing it would run the whole check).
    scope_aliases: tuple[str, ...] = ()
    params: tuple[tuple[str, Any], ...] = ()
    filters: dict[str, Prop] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", {p.name: p for p in self.props if p.filter})

    @property
    def derived(self) -> bool:
        return bool(self.scope_aliases) or self.scope_kind == BOUND


# The scope_kind of a derived layer whose FROM already carries the caller's scope.
BOUND = "bound"

CODE = Prop("code", "t.code", "string", "代码", "t.code = :v")
NAME = Prop("name", "t.name", "string", "名称", "t.name = :v")
# As every time on the wire (gridgov.wire): RFC 3339 UTC with Z, in features and exports alike.
UPDATED = Prop("updated_at", sql_time("t.updated_at"), "string", "最后修改时间", tile=False)


def _unit_layer(layer_id: str, level: str, title: str) -> Layer:
    return Layer(
        id=layer_id,
        title=title,
        description=f"{title}行政区划边界（当前有效）",
        scope_kind="unit",
        table_sql="admin_units t",
        from_sql="admin_units t LEFT JOIN admin_units p ON p.id = t.parent_id",
        # Units registered from the code list before their boundary is drawn are listed too,
        # with a null geometry and has_boundary = false (nothing silently vanishes).
        where=f"t.valid_to IS NULL AND t.level = '{level}'",
        props=(
            CODE,
            NAME,
            Prop("level", "t.level", "string", "层级"),
            Prop("parent_code", "p.code", "string", "上级代码", "p.code = :v"),
            Prop(
                "has_boundary",
                "(t.geom IS NOT NULL)",
                "boolean",
                "是否已有边界（false：按代码登记、尚无边界，几何为空）",
                "(t.geom IS NOT NULL) = CAST(:v AS boolean)",
            ),
            Prop("code_edition", "t.code_edition", "string", "区划代码版本", tile=False),
            Prop("valid_from", "t.valid_from", "string", "生效日期", tile=False),
            UPDATED,
        ),
        geometry_type="polygon",
        tables=("admin_units",),
    )


# The table name under which a change of the grids' household counts is noted
# (gridgov.dashboard.rollups, queries.NOTE_CHANGE_SQL).
GRID_FIGURES = "dash_status"

GRIDS = Layer(
    id="grids",
    title="网格",
    description="网格边界，含户数与联系户覆盖（有主联系党员的户数；取自看板汇总，"
    "最多滞后一个刷新周期）",
    scope_kind="grid",
    table_sql="grids t",
    # The counts come from the dashboard's rollup (dash_status, one row per village and grid,
    # kept current by the refresher: at most dashboard.refresh_seconds plus one refresh behind
    # the households and contacts), not from counting each grid's households per request. The
    # refresher notes a change of the layer only when a grid's counts moved (DESIGN: tiles).
    from_sql=(
        "grids t JOIN admin_units v ON v.id = t.village_id"
        " LEFT JOIN dash_status hc ON hc.village_id = t.village_id AND hc.grid_id = t.id"
    ),
    where="t.valid_to IS NULL",
    props=(
        CODE,
        NAME,
        Prop("kind", "t.kind", "string", "类型（general 一般 / dedicated 专属）", "t.kind = :v"),
        Prop("village_code", "v.code", "string", "所属村代码", "v.code = :v"),
        Prop("village_name", "v.name", "string", "所属村名称"),
        Prop("household_count", "coalesce(hc.households, 0)", "integer", "户数"),
        Prop("covered_count", "coalesce(hc.with_primary, 0)", "integer", "已落实主联系党员的户数"),
        UPDATED,
    ),
    geometry_type="polygon",
    tables=("grids", "admin_units", GRID_FIGURES),
    # grid_tile_geoms is rewritten by the very statements that write grids (triggers), so the
    # grids' own change notes version it too.
    tile_geoms=TileGeoms("grid_tile_geoms", "grid_id", below=13),
)

HOUSEHOLDS = Layer(
    id="households",
    title="住户",
    description="住户位置（已脱敏：不含户主姓名、电话、身份证号和门牌地址）",
    scope_kind="household",
    table_sql="households t",
    from_sql=(
        "households t JOIN admin_units v ON v.id = t.village_id"
        " LEFT JOIN grids g ON g.id = t.grid_id"
    ),
    where="t.removed_at IS NULL",
    props=(
        Prop("village_code", "v.code", "string", "所属村代码", "v.code = :v"),
        Prop("grid_code", "g.code", "string", "所属网格代码", "g.code = :v"),
        Prop("hamlet", "t.hamlet", "string", "自然村/村民小组", "t.hamlet = :v"),
        Prop("size", "t.size", "integer", "户人数"),
        Prop("tags", "t.tags", "array", "重点人群标签", ":v = ANY(t.tags)"),
        Prop(
            "flags",
            "t.flags",
            "array",
            "数据标记（如 outside_grid 不在任何网格内）",
            ":v = ANY(t.flags)",
        ),
        UPDATED,
    ),
    geometry_type="point",
    tables=("households", "admin_units", "grids"),
    cluster_below=14,
    # Written by the triggers of the statements that write households (their change notes
    # version it); counts households with removed_at IS NULL, this layer's ``where``.
    clusters="household_clusters",
)

LAYERS: dict[str, Layer] = {
    layer.id: layer
    for layer in (
        _unit_layer("counties", "county", "县"),
        _unit_layer("townships", "township", "乡镇"),
        _unit_layer("villages", "village", "行政村"),
        GRIDS,
        HOUSEHOLDS,
    )
}
LAYER_IDS = tuple(LAYERS)


def _qa_layer(check: qa.Check) -> Layer:
    threshold = {
        "area": f"；默认 min_area = {check.default:g} 平方米",
        "distance": f"；默认 max_distance = {check.default:g} 米",
    }.get(check.threshold, "")
    from_sql = f"({check.sql}) t"
    return Layer(
        id=f"qa_{check.id}",
        title=f"质检：{check.title}",
        description=f"空间质检（同 /api/v1/qa/{check.id}）：{check.description}{threshold}",
        scope_kind=check.scope_kind,
        table_sql=from_sql,
        from_sql=from_sql,
        where="true",
        props=tuple(
            Prop(a.name, f"t.{a.name}", a.type, a.title, f"t.{a.name} = :v" if a.filter else None)
            for a in check.attrs
        ),
        geometry_type=check.geometry_type,
        tables=(),
        scope_aliases=check.scope_aliases,
        params=(("threshold", check.default),),
    )


# Spatial QA findings as OGC collections (qa_grid_overlaps, …): the same query per check as
# /api/v1/qa/{check}, paged and filtered like the layers above.
QA_LAYERS: dict[str, Layer] = {f"qa_{c.id}": _qa_layer(c) for c in qa.CHECKS.values()}
# Every OGC API collection: the map layers, then the QA layers.
COLLECTIONS: dict[str, Layer] = LAYERS | QA_LAYERS
COLLECTION_IDS = tuple(COLLECTIONS)
