"""OGC API – Features reads: landing, conformance, collections, item pages streamed from PostGIS.

Item pages are one SQL statement whose rows are ready-made GeoJSON features (bytes), read through
a server-side cursor on a connection of the stream pool and written out batch by batch; no ORM
or shapely object is made per feature, and memory stays flat whatever the page size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov import wire
from gridgov.auth.scope import Scope
from gridgov.db import get_stream_pool, to_psycopg
from gridgov.errors import DomainError, FieldError, NotFound, PayloadInvalid
from gridgov.gis import html as html_doc
from gridgov.gis import queries
from gridgov.gis.layers import COLLECTIONS, LAYERS, Layer
from gridgov.listing import parse_bbox
from gridgov.pagination import decode_id_cursor, encode_cursor

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON = "application/geo+json"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
LIMIT_DEFAULT = 100
LIMIT_MAX = 10_000
BATCH = 1000  # rows per fetch from the server-side cursor and per chunk written out
# Query parameters every items request may carry; a layer adds its property filters.
# api_key: map clients may authenticate in the URL (gridgov.deps.query_api_key).
ITEMS_PARAMS = frozenset({"f", "limit", "bbox", "bbox-crs", "datetime", "cursor", "crs", "api_key"})


def bad_parameter(name: str, msg: str, code: str) -> DomainError:
    """OGC API answers a bad query parameter with 400 (not the API's usual 422)."""
    return DomainError(
        code=code,
        title="查询参数不正确",
        detail=msg,
        errors=[FieldError(["query", name], msg, code)],
    )


def check_parameters(
    query: Sequence[tuple[str, str]], allowed: frozenset[str] | set[str]
) -> dict[str, str]:
    """The query as a dict; unknown or repeated parameters are refused (OGC: 400)."""
    out: dict[str, str] = {}
    for name, value in query:
        if name not in allowed:
            raise bad_parameter(
                name,
                f"不支持的查询参数“{name}”；可用：{'、'.join(sorted(allowed))}",
                "unknown_parameter",
            )
        if name in out:
            raise bad_parameter(name, f"查询参数“{name}”只能出现一次", "repeated_parameter")
        out[name] = value
    return out


def get_layer(layer_id: str) -> Layer:
    """A map layer (tiles, exports)."""
    layer = LAYERS.get(layer_id)
    if layer is None:
        raise NotFound("图层")
    return layer


def get_collection(layer_id: str, scope: Scope) -> Layer:
    """An OGC API collection (a map layer or a QA layer), bound to the caller's scope."""
    layer = COLLECTIONS.get(layer_id)
    if layer is None:
        raise NotFound("图层")
    return queries.bind_scope(layer, scope)


# -- parameters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemsQuery:
    limit: int = LIMIT_DEFAULT
    after_id: int = 0
    bbox: queries.BBox | None = None
    datetime_range: queries.DatetimeRange | None = None
    filters: dict[str, str] | None = None


def _parse_limit(value: str | None) -> int:
    if value is None:
        return LIMIT_DEFAULT
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= LIMIT_MAX:
        raise bad_parameter("limit", f"limit 应为 1–{LIMIT_MAX} 的整数", "invalid_limit")
    return limit


def _parse_instant(value: str) -> datetime | None:
    if value in ("", ".."):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise bad_parameter(
            "datetime",
            "datetime 应为 RFC 3339 时间或区间（如 2026-01-01T00:00:00Z/..）",
            "invalid_datetime",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_datetime(value: str | None) -> queries.DatetimeRange | None:
    if value is None:
        return None
    if "/" in value:
        start_text, _, end_text = value.partition("/")
        start, end = _parse_instant(start_text), _parse_instant(end_text)
        if start is not None and end is not None and start > end:
            raise bad_parameter("datetime", "datetime 区间的开始晚于结束", "invalid_datetime")
        return (start, end)
    instant = _parse_instant(value)
    if instant is None:
        raise bad_parameter("datetime", "datetime 不能为空", "invalid_datetime")
    return (instant, instant)


def parse_selection(layer: Layer, params: dict[str, str]) -> dict[str, Any]:
    """bbox, datetime and property filters, checked."""
    if params.get("crs", CRS84) != CRS84 or params.get("bbox-crs", CRS84) != CRS84:
        raise bad_parameter("crs", f"仅支持 {CRS84}", "unsupported_crs")
    filters = {k: v for k, v in params.items() if k in layer.filters}
    for name, value in filters.items():
        if len(value) > 100 or "\x00" in value:
            raise bad_parameter(name, f"{name} 的取值不正确", "invalid_filter")
    return {
        "bbox": parse_bbox(params["bbox"]) if "bbox" in params else None,
        "datetime_range": _parse_datetime(params.get("datetime")),
        "filters": filters,
    }


def items_query(layer: Layer, query: Sequence[tuple[str, str]]) -> ItemsQuery:
    params = check_parameters(query, ITEMS_PARAMS | set(layer.filters))
    try:
        after_id = decode_id_cursor(params.get("cursor"))
    except DomainError:
        raise bad_parameter("cursor", "分页游标无效", "invalid_cursor") from None
    try:
        selection = parse_selection(layer, params)
    except PayloadInvalid as exc:
        # The API's bbox parser and its words; but OGC API Features answers an invalid
        # parameter value with 400 (/req/core/query-param-invalid), not the API's 422.
        (error,) = exc.errors
        raise bad_parameter(str(error.loc[-1]), error.msg, error.code) from None
    return ItemsQuery(limit=_parse_limit(params.get("limit")), after_id=after_id, **selection)


# -- documents -------------------------------------------------------------------------------


def _link(href: str, rel: str, type_: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": type_, "title": title}


def landing(base: str) -> dict[str, Any]:
    return {
        "title": "gridgov 网格治理地图服务",
        "description": "OGC API – Features：行政区划、网格、住户（脱敏），以及空间质检结果（qa_…）",
        "links": [
            _link(f"{base}/ogc", "self", "application/json", "本页"),
            _link(f"{base}/ogc?f=html", "alternate", "text/html", "本页（HTML）"),
            _link(
                f"{base}/openapi.json",
                "service-desc",
                "application/vnd.oai.openapi+json;version=3.0",
                "接口定义（OpenAPI）",
            ),
            _link(f"{base}/docs", "service-doc", "text/html", "接口文档"),
            _link(f"{base}/ogc/conformance", "conformance", "application/json", "符合的标准"),
            _link(f"{base}/ogc/collections", "data", "application/json", "图层列表"),
        ],
    }


def conformance() -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}


def _collection_doc(layer: Layer, base: str, extent: Sequence[float | None]) -> dict[str, Any]:
    href = f"{base}/ogc/collections/{layer.id}"
    doc: dict[str, Any] = {
        "id": layer.id,
        "title": layer.title,
        "description": layer.description + "。可按属性筛选：" + ("、".join(layer.filters) or "无"),
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            _link(href, "self", "application/json", layer.title),
            _link(f"{href}?f=html", "alternate", "text/html", f"{layer.title}（HTML）"),
            _link(f"{href}/items", "items", GEOJSON, f"{layer.title}要素"),
            _link(f"{href}/items?f=html", "items", "text/html", f"{layer.title}要素（HTML）"),
        ],
    }
    if extent[0] is not None:
        doc["extent"] = {"spatial": {"bbox": [list(extent)], "crs": CRS84}}
    return doc


def _extent(session: Session, scope: Scope, layer: Layer) -> Sequence[float | None]:
    if layer.derived:  # the extent of QA findings would cost running the check
        return (None, None, None, None)
    where, params = queries.where_sql(layer, scope)
    return tuple(session.execute(text(queries.extent_sql(layer, where)), params).one())


def collections(session: Session, scope: Scope, base: str) -> dict[str, Any]:
    return {
        "links": [
            _link(f"{base}/ogc/collections", "self", "application/json", "图层列表"),
            _link(f"{base}/ogc/collections?f=html", "alternate", "text/html", "图层列表（HTML）"),
        ],
        "collections": [
            _collection_doc(layer, base, _extent(session, scope, layer))
            for layer in (get_collection(layer_id, scope) for layer_id in COLLECTIONS)
        ],
    }


def collection(session: Session, scope: Scope, layer_id: str, base: str) -> dict[str, Any]:
    layer = get_collection(layer_id, scope)
    return _collection_doc(layer, base, _extent(session, scope, layer))


def item(session: Session, scope: Scope, layer_id: str, feature_id: str) -> bytes:
    layer = get_collection(layer_id, scope)
    if not (feature_id.isascii() and feature_id.isdigit()) or len(feature_id) > 18:
        raise NotFound("要素")
    where, params = queries.where_sql(layer, scope)
    feature = session.execute(
        text(queries.item_sql(layer, where)), {**params, "id": int(feature_id)}
    ).scalar()
    if feature is None:
        raise NotFound("要素")
    return feature.encode()


# -- item pages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageLinks:
    """How the page refers to itself and its successor (built by the router from the URL)."""

    self_url: str
    next_url: Callable[[str], str]  # cursor → URL of the next page
    html_base: str = ""  # prefix of a feature's HTML link (items/…)
    html_query: str = "?f=html"  # its query string (HTML-escaped)


def stream_items(
    session: Session,
    scope: Scope,
    layer_id: str,
    query: Sequence[tuple[str, str]],
    *,
    links: PageLinks,
    html: bool = False,
) -> Iterator[bytes]:
    """An item page as chunks of bytes. The statement has run before this returns, so bad input
    and database errors surface as ordinary errors, not as a broken 200 half-way."""
    layer = get_collection(layer_id, scope)
    q = items_query(layer, query)
    where, params = queries.where_sql(
        layer, scope, bbox=q.bbox, datetime_range=q.datetime_range, filters=q.filters
    )
    params.update(
        after_id=q.after_id,
        fetch=q.limit + 1,
        href_base=links.html_base,
        href_query=links.html_query,
    )
    sql = to_psycopg(queries.items_sql(layer, where, html=html))
    writer = _html_page if html else _geojson_page
    return writer(layer, links, _limited(stream_rows(sql, params), q.limit))


def stream_rows(sql: str, params: dict[str, Any]) -> Iterator[list[Any]]:
    """Batches of rows of one statement, read through a server-side cursor on a stream-pool
    connection. The statement runs before this returns, so bad input and database errors
    surface as ordinary errors, not as a broken 200 half-way; the connection goes back to the
    pool when the batches are exhausted or dropped (client gone)."""
    batches = _rows(sql, params)
    next(batches)
    return batches


def no_jit(conn: psycopg.Connection) -> None:
    """Turn JIT off for this transaction. A million-row export's plan costs far above
    jit_above_cost, so PostgreSQL compiles it with inlining and optimisation; for this per-row
    work (building JSON) that costs more than it saves: the 1,000,000-household export of
    bench/exports.py ran in 5.8 s without JIT against 8.6 s with it (EXPLAIN ANALYZE)."""
    conn.execute("SET LOCAL jit = off")


def _rows(sql: str, params: dict[str, Any]) -> Iterator[list[Any]]:
    pool = get_stream_pool()
    conn = pool.getconn()
    try:
        no_jit(conn)
        # A named cursor streams from the server; binary rows hand over bytea as bytes.
        cursor = conn.cursor(name="gis_stream", binary=True)
        cursor.execute(sql, params)
        rows = cursor.fetchmany(BATCH)
        yield []
        while rows:
            yield rows
            rows = cursor.fetchmany(BATCH)
    finally:
        conn.rollback()  # read-only work: ends the transaction and closes the cursor
        pool.putconn(conn)


@dataclass
class PageState:
    returned: int = 0
    last_id: int | None = None
    more: bool = False


def _limited(batches: Iterator[list[Any]], limit: int) -> tuple[Iterator[list[bytes]], PageState]:
    """The page's feature bytes; the statement reads one row past the page to know if more
    follow, and that row is held back."""
    state = PageState()

    def take() -> Iterator[list[bytes]]:
        for rows in batches:
            room = limit - state.returned
            page = rows[:room]
            if len(rows) > room:
                state.more = True
            if page:
                state.returned += len(page)
                state.last_id = page[-1][0]
                yield [r[1] for r in page]

    return take(), state


def _page_links(links: PageLinks, state: PageState, type_: str) -> list[dict[str, str]]:
    out = [_link(links.self_url, "self", type_, "本页")]
    if state.more:
        out.append(_link(links.next_url(encode_cursor(state.last_id)), "next", type_, "下一页"))
    return out


def _geojson_page(
    layer: Layer, links: PageLinks, page: tuple[Iterator[list[bytes]], PageState]
) -> Iterator[bytes]:
    batches, state = page
    yield b'{"type":"FeatureCollection","features":['
    first = True
    for features in batches:
        yield (b"" if first else b",") + b",".join(features)
        first = False
    tail = {
        "numberReturned": state.returned,
        "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "links": _page_links(links, state, GEOJSON),
    }
    yield b"]," + wire.dumps(tail)[1:]


def _html_page(
    layer: Layer, links: PageLinks, page: tuple[Iterator[list[bytes]], PageState]
) -> Iterator[bytes]:
    batches, state = page
    head = ["编号", *(p.title for p in layer.props), "几何类型"]
    yield html_doc.page_start(f"{layer.title}要素").encode()
    yield html_doc.table_start(head).encode()
    for rows in batches:
        yield b"".join(rows)
    yield html_doc.table_end(_page_links(links, state, "text/html")).encode()


def compact_changes(session: Session) -> int:
    """Keep only the newest noted change per table (``gridgov jobs run``); rows removed. The
    listeners re-read the versions (the strings change, the data did not: tiles re-render)."""
    removed = session.execute(text(queries.COMPACT_CHANGES_SQL)).rowcount
    if removed:
        session.execute(text("SELECT pg_notify('gridgov_layer_changes', 'compacted')"))
    return removed
