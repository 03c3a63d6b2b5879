"""The wire format: one way to write JSON, one datetime format, and SQL-built JSON that comes
from the same declaration as the pydantic model (so the OpenAPI document and the bytes agree).

Times on the wire are RFC 3339 in UTC with ``Z``, with six fractional digits only when there
is a fraction: ``2026-05-01T08:30:00Z``, ``2026-05-01T08:30:00.250000Z``. That is exactly what
pydantic writes for a UTC datetime; response models declare their times as ``UtcDatetime`` so
that a value holding another offset is written in UTC too (the database session runs in UTC,
so values read from it already are). ``dumps`` makes orjson write the same, and ``sql_time``
makes PostgreSQL's JSON (which would write ``+00:00`` and trim the fraction) write the same.

A response model whose items PostgreSQL builds declares each field's SQL next to its type::

    class VisitRead(BaseModel):
        id: Annotated[int, Sql("v.id")]
        visited_at: Annotated[UtcDatetime, Sql("v.visited_at")]
        location: Annotated[dict[str, Any] | None, Sql("ST_AsGeoJSON(v.geom, 7)", geometry=True)]

``select_list(VisitRead)`` and ``json_object(VisitRead)`` are then the only SQL of its body:
a field added to the model is in the SQL too, and a field without ``Sql`` fails at import.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Union, get_args, get_origin

import orjson
from pydantic import BaseModel, PlainSerializer

# Z for UTC (as pydantic writes it); integer keys allowed (counts by id).
JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """JSON bytes as every answer of the API writes them (times as RFC 3339 UTC ``Z``)."""
    return orjson.dumps(value, option=JSON_OPTIONS)


def time_text(value: datetime | None) -> str | None:
    """A datetime as the wire writes it (for bodies put together by hand as strings)."""
    if value is None:
        return None
    return orjson.dumps(value.astimezone(UTC), option=JSON_OPTIONS)[1:-1].decode()


def _in_utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo is not None else value


# The datetime of every response model: written in UTC (``Z``) whatever offset the value holds —
# a deadline computed in Asia/Shanghai, an expiry as the client sent it — before it is reloaded.
UtcDatetime = Annotated[datetime, PlainSerializer(_in_utc, return_type=datetime, when_used="json")]


def sql_time(expr: str) -> str:
    """SQL text of a ``timestamptz`` exactly as ``dumps`` and pydantic write it (NULL stays
    NULL). For SQL-built JSON: PostgreSQL's own JSON of a timestamptz is ``…+00:00``."""
    utc = f"(({expr}) AT TIME ZONE 'UTC')"
    return f"replace(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '.000000Z', 'Z')"


@dataclass(frozen=True)
class Sql:
    """A response field's SQL expression (over the query's own aliases).

    ``geometry``: the expression is GeoJSON text (``ST_AsGeoJSON``); a row carries it as its
    ``geometry`` column (``listing.render_page`` splices it unparsed, or converts it to the
    caller's ``coord_sys``), SQL-built JSON embeds it as JSON."""

    expr: str
    geometry: bool = False


@dataclass(frozen=True)
class SqlField:
    name: str
    sql: Sql
    is_time: bool


def _is_datetime(annotation: Any) -> bool:
    if annotation is datetime:
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_is_datetime(a) for a in get_args(annotation))
    return False


def sql_fields(model: type[BaseModel]) -> list[SqlField]:
    """The model's fields with their SQL, in declaration order; every field must have one."""
    out = []
    for name, info in model.model_fields.items():
        found = [m for m in info.metadata if isinstance(m, Sql)]
        if not found:
            raise TypeError(f"{model.__name__}.{name} has no Sql(...) declaration")
        out.append(
            SqlField(info.serialization_alias or name, found[0], _is_datetime(info.annotation))
        )
    geometries = [f.name for f in out if f.sql.geometry]
    if len(geometries) > 1:
        raise TypeError(f"{model.__name__}: at most one geometry field ({geometries})")
    return out


def select_list(model: type[BaseModel]) -> str:
    """``expr AS name, …`` of the model's fields: rows whose keys are the model's properties
    (the geometry field's as ``geometry``, see ``Sql``)."""
    return ", ".join(
        f"{f.sql.expr} AS {'geometry' if f.sql.geometry else f.name}" for f in sql_fields(model)
    )


def json_object(model: type[BaseModel]) -> str:
    """One ``json_build_object`` of the model's fields: the model's JSON, built in PostgreSQL
    (times as ``sql_time``, geometry as JSON)."""
    pairs = []
    for f in sql_fields(model):
        expr = f.sql.expr
        if f.sql.geometry:
            expr = f"({expr})::json"
        elif f.is_time:
            expr = sql_time(expr)
        pairs.append(f"'{f.name}', {expr}")
    if len(pairs) > 50:  # json_build_object takes at most 100 arguments
        raise TypeError(f"{model.__name__}: too many fields for one json_build_object")
    return f"json_build_object({', '.join(pairs)})"


def item_keys(model: type[BaseModel]) -> set[str]:
    """The keys of the model's JSON (its properties), for tests comparing them to SQL rows."""
    return {info.serialization_alias or name for name, info in model.model_fields.items()}
