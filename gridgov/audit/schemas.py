from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from gridgov.wire import UtcDatetime


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: UtcDatetime
    user_id: int | None
    username: str | None
    role: str | None
    action: str
    entity: str
    entity_id: str | None
    county_code: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None


class AuditPage(BaseModel):
    items: list[AuditRead]
    next_cursor: str | None
