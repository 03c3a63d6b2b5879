"""Layer downloads: GeoJSON (RFC 7946), NDJSON and CSV streamed straight from PostgreSQL;
GeoPackage, Shapefile, KML, FlatGeobuf and XLSX written batch by batch to a temp file
(gridgov.gis.files) and streamed out.

GeoJSON and NDJSON are features PostGIS has already written, read as COPY … (FORMAT binary)
(raw bytes, one message per feature, no cursor round trips; PostgreSQL streams while Python
forwards); CSV is PostgreSQL's own COPY output. Python only joins and forwards bytes in
~96 KB chunks, so memory stays flat whatever the size. Households carry no identity (layer
registry). Every export is audited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from gridgov import privacy
from gridgov.audit import service as audit
from gridgov.auth.scope import Scope
from gridgov.db import get_stream_pool, to_psycopg
from gridgov.gis import files, queries
from gridgov.gis.service import GEOJSON, check_parameters, get_layer, no_jit, parse_selection

MEDIA_TYPES = {
    "geojson": GEOJSON,
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    **{name: f.media_type for name, f in files.FILE_FORMATS.items()},
}
EXPORT_PARAMS = frozenset({"bbox", "datetime"})
# Bytes per chunk handed to the server. Each chunk of a streamed response costs a hop to a
# worker thread, so not too small; but a chunk of 128 KB or more is beyond glibc's mmap
# threshold, mapped and unmapped (page faults) every time. Server CPU per 1,000,000-point
# GeoJSON export: 1.5 s with 32 KB chunks, 1.0 s with 96 KB, 1.8 s with 256 KB, 3.2 s with 1 MB.
CHUNK = 96 * 1024
# COPY … (FORMAT binary) starts with this header (signature, no flags, no extension) and sends
# each row as its own message: field count (int16), field length (int32), then the bytes.
BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
ROW_PREFIX = 6
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
    detail = "您的角色无权导出个人信息（pii=true）"
    if privacy.shown(scope, "exports", files.parse_pii(params), detail=detail):
        layer = files.with_pii(layer)  # the export's own audit entry names pii=true
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
        sql = to_psycopg(queries.export_csv_sql(layer, where))
        chunks = _csv(_copy_out(sql, sql_params))
    else:
        select = queries.export_features_sql(layer, where)
        sql = to_psycopg(f"COPY ({select}) TO STDOUT (FORMAT binary)")
        features = _features(_copy_out(sql, sql_params))
        chunks = _ndjson(features) if fmt == "ndjson" else _geojson(layer.id, features)
    return Export(f"{layer.id}.{fmt}", MEDIA_TYPES[fmt], chunks)


def _features(messages: Iterator[Any]) -> Iterator[list[Any]]:
    """Feature bytes out of a binary COPY of one column, about CHUNK bytes of them at a time."""
    rows: list[Any] = []
    size = 0
    header = True
    for message in messages:
        data = message
        if header:  # the first message: the header, then the first row or the trailer
            if bytes(data[: len(BINARY_HEADER)]) != BINARY_HEADER:
                raise RuntimeError("COPY (FORMAT binary) sent no binary header")
            data = data[len(BINARY_HEADER) :]
            header = False
        if len(data) < ROW_PREFIX:
            # The header alone, or the trailer (int16 -1): read on to the end all the same, so
            # psycopg ends the COPY cleanly (leaving it early would cancel the statement).
            continue
        rows.append(data[ROW_PREFIX:])
        size += len(data)
        if size >= CHUNK:
            yield rows
            rows, size = [], 0
    if rows:
        yield rows


def _geojson(name: str, features: Iterator[list[Any]]) -> Iterator[bytes]:
    yield b'{"type":"FeatureCollection","name":"' + name.encode() + b'","features":['
    lead: list[Any] = []  # a separator before every chunk but the first
    for rows in features:
        yield b",".join(lead + rows)
        lead = [b""]
    yield b"]}\n"


def _ndjson(features: Iterator[list[Any]]) -> Iterator[bytes]:
    for rows in features:
        yield b"\n".join(rows) + b"\n"


def _copy_out(sql: str, params: dict[str, Any]) -> Iterator[Any]:
    """The COPY's data messages as psycopg reads them (one row each)."""
    messages = _copy_messages(sql, params)
    next(messages)  # COPY has started: a failing statement raises here, before any byte is sent
    return messages


def _copy_messages(sql: str, params: dict[str, Any]) -> Iterator[Any]:
    pool = get_stream_pool()
    conn = pool.getconn()
    try:
        no_jit(conn)
        with conn.cursor() as cursor, cursor.copy(sql, params) as copy:
            yield b""
            yield from copy
    finally:
        conn.rollback()
        pool.putconn(conn)


def _csv(messages: Iterator[Any]) -> Iterator[bytes]:
    buffer = bytearray(UTF8_BOM)
    for data in messages:
        buffer += data
        if len(buffer) >= CHUNK:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)
