"""Opaque keyset cursors: base64url of a small JSON array of the last row's sort key."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gridgov.errors import FieldError, PayloadInvalid

BIGINT_MAX = 2**63 - 1


def invalid_cursor() -> PayloadInvalid:
    return PayloadInvalid([FieldError(["query", "cursor"], "分页游标无效", "invalid_cursor")])


def encode_cursor(*key: Any) -> str:
    raw = json.dumps(list(key), separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(key, list) or len(key) != arity:
            raise ValueError
        if not all(isinstance(k, str | int) for k in key):
            raise ValueError
        return key
    except ValueError as exc:
        raise invalid_cursor() from exc


def encode_key(value: Any) -> Any:
    """One sort-key value as a cursor holds it: timestamps as ISO 8601 text, ids as numbers."""
    return value.isoformat() if isinstance(value, datetime) else value


def decode_keys(cursor: str, kinds: Sequence[type]) -> list[Any]:
    """The sort key of a cursor of ``encode_cursor``, each value checked against its kind
    (``int``: a bigint id ≥ 0; ``datetime``: ISO 8601 text). A well-formed cursor carrying
    anything else is as invalid as garbage: it must never reach the database as a 500."""
    values = decode_cursor(cursor, len(kinds))
    out: list[Any] = []
    for kind, value in zip(kinds, values, strict=True):
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise invalid_cursor()
            if not 0 <= value <= BIGINT_MAX:
                raise invalid_cursor()
            out.append(value)
        elif kind is datetime:
            if not isinstance(value, str):
                raise invalid_cursor()
            try:
                out.append(datetime.fromisoformat(value))
            except ValueError as exc:
                raise invalid_cursor() from exc
        else:  # pragma: no cover - a programming error, not a client's
            raise TypeError(f"no cursor rule for {kind}")
    return out


def decode_id_cursor(cursor: str | None) -> int:
    """The last id of the previous page (0 before the first), from a cursor of ``encode_cursor``.

    A well-formed cursor carrying something other than a bigint id is as invalid as garbage.
    """
    if not cursor:
        return 0
    (key,) = decode_keys(cursor, (int,))
    return key
