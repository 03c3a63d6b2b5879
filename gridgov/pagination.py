"""Opaque keyset cursors: base64url of a small JSON array of the last row's sort key."""

from __future__ import annotations

import base64
import json
from typing import Any

from gridgov.errors import FieldError, PayloadInvalid


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
        raise PayloadInvalid(
            [FieldError(["query", "cursor"], "分页游标无效", "invalid_cursor")]
        ) from exc


def decode_id_cursor(cursor: str | None) -> int:
    """The last id of the previous page (0 before the first), from a cursor of ``encode_cursor``.

    A well-formed cursor carrying something other than a bigint id is as invalid as garbage.
    """
    if not cursor:
        return 0
    (key,) = decode_cursor(cursor, 1)
    if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key <= 2**63 - 1:
        raise PayloadInvalid([FieldError(["query", "cursor"], "分页游标无效", "invalid_cursor")])
    return key
