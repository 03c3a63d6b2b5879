"""Limits every request input shares, checked at the edge so PostgreSQL never sees them.

PostgreSQL text cannot hold a NUL character and its ``bigint`` stops at 2⁶³−1: a body, path or
query value breaking either would otherwise reach the database and fail there as a 500.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

MAX_ID = 2**63 - 1  # PostgreSQL bigint
NO_NUL = r"^[^\x00]*$"  # pattern for free-text query parameters

IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="编号")]
EntityId = Annotated[int, Field(ge=1, le=MAX_ID)]


# Validation context of a caller that has already checked its whole input for NUL (one scan of
# a 500-visit batch instead of a recursive walk per field of every item).
NUL_FREE: dict[str, bool] = {"nul_free": True}


def has_nul(value: Any) -> bool:
    """Whether any text anywhere in a parsed JSON value holds a NUL character."""
    try:
        return b"\\u0000" in orjson.dumps(value)
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits: walk it instead
        return _has_nul(value)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


class InputModel(BaseModel):
    """Base of request bodies: unknown fields refused, no NUL character in any text."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any, info: ValidationInfo) -> Any:
        if info.context is NUL_FREE:
            return value
        if _has_nul(value):
            raise PydanticCustomError("nul_character", "文本中不能包含空字符（\\0）")
        return value
