"""Limits every request input shares, checked at the edge so PostgreSQL never sees them.

PostgreSQL text cannot hold a NUL character and its ``bigint`` stops at 2⁶³−1: a body, path or
query value breaking either would otherwise reach the database and fail there as a 500.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

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


def _out_of_range(value: Any) -> bool:
    """Whether an integer anywhere in a value lies beyond PostgreSQL's ``bigint``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return not -MAX_ID - 1 <= value <= MAX_ID
    if isinstance(value, list | tuple):
        return any(_out_of_range(v) for v in value)
    if isinstance(value, dict):
        return any(_out_of_range(v) for v in value.values())
    return False


def _drop_null(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """OpenAPI: a PATCH field over a NOT NULL column may be left out, never null."""
    for name in getattr(cls, "not_null_fields", ()):
        prop = schema.get("properties", {}).get(name)
        if prop is None or "anyOf" not in prop:
            continue
        kept = [s for s in prop["anyOf"] if s.get("type") != "null"]
        del prop["anyOf"]
        if len(kept) == 1:
            prop.update(kept[0])
        else:
            prop["anyOf"] = kept
        if prop.get("default", 0) is None:
            del prop["default"]


class InputModel(BaseModel):
    """Base of request bodies: unknown fields refused, no NUL character in any text, no
    integer beyond ``bigint``, and (``PatchModel``) no null for a NOT NULL column."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_null)

    # Fields that may be left out but never sent as null (filled in by PatchModel).
    not_null_fields: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _checked(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            if info.field_name in cls.not_null_fields:
                raise PydanticCustomError("null_not_allowed", "该字段不能为空（不修改请省略）")
            return value
        if info.context is NUL_FREE:
            return value
        if _has_nul(value):
            raise PydanticCustomError("nul_character", "文本中不能包含空字符（\\0）")
        if _out_of_range(value):
            raise PydanticCustomError("int_out_of_range", "整数超出允许范围")
        return value


class PatchModel(InputModel):
    """Base of PATCH bodies over one table (``orm_model``): a field left out is not changed,
    null clears a nullable column and is refused (422 ``null_not_allowed``) for a NOT NULL
    one. Which fields are NOT NULL is read from the table itself, so a schema cannot drift
    from it. ``columns`` maps fields named differently (``location`` → ``geom``); control
    fields such as ``version`` are not columns to write."""

    orm_model: ClassVar[Any] = None
    columns: ClassVar[dict[str, str]] = {}
    control_fields: ClassVar[frozenset[str]] = frozenset({"version"})

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.orm_model is None:
            return
        table = cls.orm_model.__table__
        not_null = set()
        for name in cls.model_fields:
            if name in cls.control_fields:
                continue
            column = table.columns.get(cls.columns.get(name, name))
            if column is not None and not column.nullable:
                not_null.add(name)
        cls.not_null_fields = frozenset(not_null)
