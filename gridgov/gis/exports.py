"""Layer downloads: GeoJSON (RFC 7946), NDJSON and CSV streamed straight from PostgreSQL;
GeoPackage, Shapefile, KML, FlatGeobuf and XLSX written batch by batch to a temp file
(gridgov.gis.files) and streamed out.

GeoJSON and NDJSON rows are features PostGIS has already written (server-side cursor); CSV is
PostgreSQL's own COPY output. Python only forwards bytes in ~64 KB chunks, so memory stays flat
whatever the size. Households carry no identity (layer registry). Every export is audited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from gridgov.audit import service as audit
from gridgov.auth.permissions import Perm
from gridgov.auth.scope import Scope
from gridgov.db import get_stream_pool
from gridgov.errors import Forbidden
from gridgov.gis import files, queries
from gridgov.gis.service import (
    GEOJSON,
    check_parameters,
    get_layer,
    no_jit,
    parse_selection,
    stream_rows,
)

MEDIA_TYPES = {
    "geojson": GEOJSON,
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    **{name: f.media_type for name, f in files.FILE_FORMATS.items()},
}
EXPORT_PARAMS = frozenset({"bbox", "datetime"})
CHUNK = 64 * 1024
# Excel and WPS read CSV as the local code page (GBK) unless a UTF-8 byte-order mark leads.
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass
class Export:
    filename: str
    media_type: str
    chunks: Iterator[bytes]


def export(
    session: Session,
    scope: Scope,
    layer_id: str,
    fmt: str,
    query: Sequence[tuple[str, str]],
    progress: Callable[[int], None] | None = None,
) -> Export:
    """The API's and the CLI's export. ``progress`` (file formats) hears rows written so far."""
    layer = get_layer(layer_id)
    is_file = fmt in files.FILE_FORMATS
    allowed = EXPORT_PARAMS | set(layer.filters) | {"pii"}
    params = check_parameters(query, allowed | (files.FILE_PARAMS if is_file else set()))
    selection = parse_selection(layer, {k: v for k, v in params.items() if k in allowed})
    where, sql_params = queries.where_sql(layer, scope, **selection)
    options = files.parse_options(fmt, params) if is_file else None
    if files.parse_pii(params):
        if not scope.can(Perm.pii_read):
            raise Forbidden("您的角色无权导出个人信息（pii=true）")
        layer = files.with_pii(layer)
    audit.record(
        session,
        scope,
        action="export",
        entity=layer.id,
        after={"format": fmt, "query": params},
    )
    if options is not None:
        path, directory = files.write_file(layer, fmt, where, sql_params, options, progress)
        chunks = files.stream_file(path, directory)
    elif fmt == "csv":
        sql = queries.to_psycopg(queries.export_csv_sql(layer, where))
        chunks = _copy_out(sql, sql_params)
    else:
        sql = queries.to_psycopg(queries.export_features_sql(layer, where))
        batches = stream_rows(sql, sql_params)
        chunks = _ndjson(batches) if fmt == "ndjson" else _geojson(layer.id, batches)
    return Export(f"{layer.id}.{fmt}", MEDIA_TYPES[fmt], chunks)


def _geojson(name: str, batches: Iterator[list[Any]]) -> Iterator[bytes]:
    yield b'{"type":"FeatureCollection","name":"' + name.encode() + b'","features":['
    first = True
    for rows in batches:
        if rows:
            yield (b"" if first else b",") + b",".join(r[0] for r in rows)
            first = False
    yield b"]}\n"


def _ndjson(batches: Iterator[list[Any]]) -> Iterator[bytes]:
    for rows in batches:
        if rows:
            yield b"\n".join(r[0] for r in rows) + b"\n"


def _copy_out(sql: str, params: dict[str, Any]) -> Iterator[bytes]:
    chunks = _copy_chunks(sql, params)
    next(chunks)  # COPY has started: a failing statement raises here, before any byte is sent
    return chunks


def _copy_chunks(sql: str, params: dict[str, Any]) -> Iterator[bytes]:
    pool = get_stream_pool()
    conn = pool.getconn()
    try:
        no_jit(conn)
        with conn.cursor() as cursor, cursor.copy(sql, params) as copy:
            yield b""
            buffer = bytearray(UTF8_BOM)
            for data in copy:
                buffer += data
                if len(buffer) >= CHUNK:
                    yield bytes(buffer)
                    buffer.clear()
            if buffer:
                yield bytes(buffer)
    finally:
        conn.rollback()
        pool.putconn(conn)
