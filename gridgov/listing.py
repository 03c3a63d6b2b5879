"""The keyset-read kit: every list's SQL is composed from it, and its pages rendered by it.

A list is one statement: ``SELECT <columns> FROM <joins> WHERE <clauses> ORDER BY <key> LIMIT
n + 1``. Each filter is a small function returning one ``Clause`` (SQL text plus its bound
parameters, never a value spliced into the text) or ``None`` when the filter is not asked for;
``and_`` joins them. The extra row tells whether a next page exists without a count; the cursor
is the last row's sort key (``gridgov.pagination``). In the spirit of tipg's clause functions
(tipg/collections.py ``_where``/``_sortby``); rows stay plain mappings, no ORM object per row.

Rows are plain mappings; a ``geometry`` column holds the GeoJSON text PostGIS produced, which is
spliced into the output unparsed (``orjson.Fragment``) unless the caller asked for GCJ-02/BD-09.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict, cast

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov import privacy, wire
from gridgov.errors import FieldError, PayloadInvalid
from gridgov.geo import CoordSys, convert
from gridgov.geojson import to_geojson
from gridgov.pagination import decode_keys, encode_cursor, encode_key

if TYPE_CHECKING:
    from gridgov.auth.scope import Scope

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class PageRequest:
    limit: int
    cursor: str | None = None
    coord_sys: CoordSys = CoordSys.wgs84
    with_geometry: bool = True


@dataclass
class PageResult:
    rows: Sequence[dict[str, Any]]
    next_cursor: str | None


# -- clauses ------------------------------------------------------------------------------------


class Clause(NamedTuple):
    """A boolean SQL fragment and the parameters it binds (read-only; a tuple because a list
    builds a dozen per request and a tuple is the cheapest immutable thing to build)."""

    sql: str
    params: Mapping[str, Any] = MappingProxyType({})


TRUE = Clause("true")
FALSE = Clause("false")


def _join(op: str, clauses: Iterable[Clause | None]) -> Clause | None:
    parts: list[str] = []
    params: dict[str, Any] = {}
    for c in clauses:
        if c is None:
            continue
        for name, value in c.params.items():
            # One name bound to two values would silently answer the wrong question.
            if params.setdefault(name, value) is not value and params[name] != value:
                raise ValueError(f"parameter :{name} bound twice with different values")
        parts.append(c.sql)
    if not parts:
        return None
    if len(parts) == 1:
        return Clause(parts[0], params)
    return Clause(f" {op} ".join(f"({p})" for p in parts), params)


def and_(*clauses: Clause | None) -> Clause:
    """All of the given clauses; ``None`` (a filter not asked for) is skipped; none is true."""
    return _join("AND", clauses) or TRUE


def or_(*clauses: Clause | None) -> Clause:
    """Any of the given clauses; ``None`` is skipped; none is false (never "everything")."""
    return _join("OR", clauses) or FALSE


def _asked(value: Any) -> bool:
    # A query parameter left empty (``?tag=``) filters nothing, like one not given; False and 0
    # are real values (``flowing=false``).
    return value is not None and value != ""


def when(condition: Any, sql: str, **params: Any) -> Clause | None:
    """A fixed predicate, only when ``condition`` holds."""
    return Clause(sql, params) if condition else None


def equal(column: str, name: str, value: Any) -> Clause | None:
    """``column = :name``."""
    return Clause(f"{column} = :{name}", {name: value}) if _asked(value) else None


def compare(column: str, op: str, name: str, value: Any) -> Clause | None:
    """``column <op> :name`` for a range bound (``>=``, ``<`` …)."""
    if op not in ("<", "<=", ">", ">="):
        raise ValueError(op)
    return Clause(f"{column} {op} :{name}", {name: value}) if _asked(value) else None


def has_label(column: str, name: str, value: str | None) -> Clause | None:
    """A varchar[] column (tags, flags) holds ``value``; ``@>`` so its GIN index serves it."""
    if not _asked(value):
        return None
    return Clause(f"{column} @> ARRAY[CAST(:{name} AS varchar)]", {name: value})


def code_prefix(column: str, code: str | None, name: str = "unit_prefix") -> Clause | None:
    """A division code below ``code`` (the subtree of a unit, by its 6/9/12-digit prefix)."""
    return Clause(f"{column} LIKE :{name}", {name: f"{code}%"}) if _asked(code) else None


def scope_clause(scope: Scope, kind: str, alias: str) -> Clause:
    """The caller's subtree on the table ``alias`` (a ``Scope.sql`` kind): every list starts
    from it, so a row out of scope is never read."""
    sql, params = scope.sql(kind, alias)
    return Clause(sql, params)


def within_unit(
    session: Session, scope: Scope, column: str, unit_code: str | None
) -> Clause | None:
    """Rows whose division code ``column`` lies below the unit ``unit_code`` (by prefix). The
    unit must be a current one of the caller's scope (``Scope.check_unit_filter``): a filter
    outside the subtree or unknown is 404 everywhere, as ``/units/{code}`` would be."""
    scope.check_unit_filter(session, unit_code)
    return code_prefix(column, unit_code)


# -- bbox ---------------------------------------------------------------------------------------

WORLD: BBox = (-180.0, -90.0, 180.0, 90.0)


def _invalid_bbox(msg: str) -> PayloadInvalid:
    return PayloadInvalid([FieldError(["query", "bbox"], msg, "invalid_bbox")])


def parse_bbox(value: str) -> BBox:
    """The one bbox parser of the API and the OGC API: ``minLon,minLat,maxLon,maxLat``, or six
    numbers with heights (OGC API Features allows them; heights do not matter here).

    Numbers must be finite and each minimum at most its maximum; a box reaching beyond the world
    is clipped to it (map clients send a view larger than the world), so an extreme box means
    "everything" rather than an error. Raises ``PayloadInvalid`` naming ``bbox`` (the API's
    422); the OGC routes answer the same error as 400, as their standard requires."""
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or not all(math.isfinite(v) for v in numbers):
        raise _invalid_bbox("bbox 应为 4 个数：最小经度,最小纬度,最大经度,最大纬度")
    minx, miny, maxx, maxy = numbers
    if minx > maxx or miny > maxy:
        raise _invalid_bbox("bbox 的最小值不能大于最大值")
    wx0, wy0, wx1, wy1 = WORLD
    return (
        min(max(minx, wx0), wx1),
        min(max(miny, wy0), wy1),
        min(max(maxx, wx0), wx1),
        min(max(maxy, wy0), wy1),
    )


def bbox_clause(column: str, bbox: BBox | None, coord_sys: CoordSys) -> Clause | None:
    """``column`` meets the box (GiST ``&&``); a GCJ-02/BD-09 box is converted to WGS84 first."""
    if bbox is None:
        return None
    minx, miny, maxx, maxy = bbox
    if coord_sys != CoordSys.wgs84:
        (minx, maxx), (miny, maxy) = convert([minx, maxx], [miny, maxy], coord_sys, CoordSys.wgs84)
    return Clause(
        f"{column} && ST_MakeEnvelope(:bx0, :by0, :bx1, :by1, 4326)",
        {"bx0": float(minx), "by0": float(miny), "bx1": float(maxx), "by1": float(maxy)},
    )


# -- keyset -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Key:
    """One column of a sort key: its SQL expression, its name in the row, its kind."""

    column: str
    name: str
    kind: type = int


@dataclass(frozen=True)
class Keyset:
    """A unique sort key, all ascending or all descending (so that one row comparison
    ``(a, b) > (:a, :b)`` walks one index)."""

    keys: tuple[Key, ...]
    descending: bool = False

    @cached_property
    def _names(self) -> tuple[str, ...]:
        return tuple(f"key_{i}" for i in range(len(self.keys)))

    @cached_property
    def _after_sql(self) -> str:
        columns = ", ".join(k.column for k in self.keys)
        marks = ", ".join(f":{n}" for n in self._names)
        if len(self.keys) > 1:
            columns, marks = f"({columns})", f"({marks})"
        return f"{columns} {'<' if self.descending else '>'} {marks}"

    def after(self, cursor: str | None) -> Clause | None:
        """Rows past the cursor's key; ``None`` before the first page. A bad cursor is a 422."""
        if not cursor:
            return None
        values = decode_keys(cursor, [k.kind for k in self.keys])
        return Clause(self._after_sql, dict(zip(self._names, values, strict=True)))

    @cached_property
    def _order_by(self) -> str:
        direction = " DESC" if self.descending else ""
        return "ORDER BY " + ", ".join(k.column + direction for k in self.keys)

    def order_by(self) -> str:
        return self._order_by

    def cursor(self, row: Mapping[str, Any]) -> str:
        return encode_cursor(*(encode_key(row[k.name]) for k in self.keys))


def by_id(alias: str) -> Keyset:
    """Oldest first by the table's bigint id: the key of most lists."""
    return Keyset((Key(f"{alias}.id", "id"),))


# A list's statement text depends only on which filters are asked for, so there are few of them:
# SQLAlchemy's text() scans a statement for bind names each time it is built (most of the cost
# of composing a page's statement); a built one is immutable and can be executed again.
_text = lru_cache(maxsize=1024)(text)


def select_sql(
    columns: str, from_: str, *, geometry: str | None = None, geometry_key: bool = False
) -> str:
    """``SELECT columns [, geometry as GeoJSON text] FROM …``; ``geometry_key``: a null
    geometry column when the geometry is not asked for (every item has its schema's keys)."""
    if geometry:
        geojson = f", ST_AsGeoJSON({geometry}, 7) AS geometry"
    else:
        geojson = ", NULL AS geometry" if geometry_key else ""
    return f"SELECT {columns}{geojson} {from_}"


def fetch_page(
    session: Session,
    select: str,
    where: Clause,
    keyset: Keyset,
    *,
    cursor: str | None,
    limit: int,
) -> PageResult:
    """One page: ``limit + 1`` rows fetched, the extra one only says a next page exists."""
    where = and_(where, keyset.after(cursor))
    sql = f"{select} WHERE {where.sql} {keyset.order_by()} LIMIT :limit_plus"
    result = session.execute(_text(sql), {**where.params, "limit_plus": limit + 1})
    # _asdict, not dict(row._mapping): the mapping builds a key view per row
    rows = [r._asdict() for r in result]
    more = len(rows) > limit
    rows = rows[:limit]
    return PageResult(rows, keyset.cursor(rows[-1]) if more else None)


class PageQuery(TypedDict):
    """What every list takes besides its filters."""

    limit: int
    cursor: str | None


class MapQuery(PageQuery):
    """What a list of located things takes besides its filters."""

    bbox: BBox | None
    with_geometry: bool
    coord_sys: CoordSys


class PersonalQuery(TypedDict):
    pii: bool


class UnitFilter(TypedDict):
    unit_code: str | None


class PlaceFilter(UnitFilter):
    grid_code: str | None


@dataclass(frozen=True)
class Listing:
    """One list's statement, declared once, and the filters every list of its kind shares.

    ``scope``: the ``Scope.sql`` kind and the alias it applies to (every page starts from the
    caller's scope); ``keyset``: the sort key; ``geometry``: the column ``bbox`` filters and
    ``with_geometry`` returns as GeoJSON; ``unit_code``: the division-code column a
    ``unit_code`` filter takes the subtree of; ``grid_code``: the grid-code column a
    ``grid_code`` filter matches; ``personal``: the ``gridgov.privacy`` read path (``PATHS``) whose
    personal fields the rows carry (masked unless ``pii`` asked for and allowed, and audited
    when shown). The query's own filters come as clauses to ``page``."""

    columns: str
    from_: str
    scope: tuple[str, str]
    keyset: Keyset
    geometry: str | None = None
    unit_code: str | None = None
    grid_code: str | None = None
    personal: str | None = None

    def page(
        self,
        session: Session,
        scope: Scope,
        query: PageQuery,
        *filters: Clause | None,
        in_scope: Clause | None = None,
    ) -> PageResult:
        """A page of rows in the caller's scope (``in_scope`` where a list widens it) meeting
        the declared filters the query asks for and ``filters``; a personal list's rows pass
        through the personal-data rule."""
        asked = cast(Mapping[str, Any], query)
        # pii=true without the permission is 403 before anything is read.
        shown = privacy.shown(scope, self.personal, asked["pii"]) if self.personal else False
        clauses = [in_scope or scope_clause(scope, *self.scope)]
        if self.unit_code is not None:
            clauses.append(within_unit(session, scope, self.unit_code, asked["unit_code"]))
        if self.grid_code is not None:
            clauses.append(equal(self.grid_code, "grid_code", asked["grid_code"]))
        geometry = None
        if self.geometry is not None:
            clauses.append(bbox_clause(self.geometry, asked["bbox"], asked["coord_sys"]))
            geometry = self.geometry if asked["with_geometry"] else None
        select = select_sql(
            self.columns, self.from_, geometry=geometry, geometry_key=self.geometry is not None
        )
        where = and_(*clauses, *filters)
        page = fetch_page(
            session, select, where, self.keyset, cursor=query["cursor"], limit=query["limit"]
        )
        if self.personal:
            resource = privacy.resource_of(self.personal)
            for row in page.rows:
                privacy.mask(resource, row, shown=shown)  # fresh dicts: masked in place
            if shown:
                privacy.record_read(session, scope, resource, f"list:{len(page.rows)}")
        return page

    def one(
        self,
        session: Session,
        row_id: int,
        *,
        coord_sys: CoordSys = CoordSys.wgs84,
        geometry_key: str = "geometry",
    ) -> dict[str, Any]:
        """The row ``row_id`` (by the key's last column, the id) as a list shows it, with its
        geometry as GeoJSON in ``coord_sys``. The caller has checked that it is in scope."""
        select = select_sql(self.columns, self.from_, geometry=self.geometry)
        sql = f"{select} WHERE {self.keyset.keys[-1].column} = :row_id"
        data = session.execute(_text(sql), {"row_id": row_id}).one()._asdict()
        if self.geometry is not None:
            data[geometry_key] = to_geojson(data.pop("geometry"), coord_sys)
        return data


# -- rendering ----------------------------------------------------------------------------------


def personal_row(
    session: Session, scope: Scope, path: str, data: dict[str, Any], row_id: Any, *, pii: bool
) -> dict[str, Any]:
    """One row of the read ``path`` (``privacy.PATHS``) through the personal-data rule: masked,
    or in clear and audited."""
    resource = privacy.resource_of(path)
    shown = privacy.shown(scope, path, pii)
    if shown:
        privacy.record_read(session, scope, resource, row_id)
    return privacy.mask(resource, data, shown=shown)


def render_page(
    result: PageResult,
    *,
    coord_sys: CoordSys,
    next_url: Callable[[str], str],
    geometry_key: str = "geometry",
) -> bytes:
    items = []
    for row in result.rows:
        item = dict(row)
        if "geometry" in item:
            geometry = item.pop("geometry")
            if geometry is None:
                item[geometry_key] = None
            elif coord_sys == CoordSys.wgs84:
                item[geometry_key] = orjson.Fragment(geometry)
            else:
                item[geometry_key] = to_geojson(geometry, coord_sys)
        items.append(item)
    body: dict[str, Any] = {"items": items}
    body["next"] = next_url(result.next_cursor) if result.next_cursor else None
    return wire.dumps(body)
