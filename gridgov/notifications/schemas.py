"""站内提醒 payloads: the inbox page and one reminder."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gridgov.wire import UtcDatetime


class NotificationRead(BaseModel):
    id: int
    kind: str = Field(
        description="due_soon（即将到期）、overdue（已超期）、escalated（上报至本单位）"
    )
    entity: str = Field(description="所指对象的类型，如 issue")
    entity_id: int
    title: str
    body: str | None
    created_at: UtcDatetime
    read_at: UtcDatetime | None = Field(description="已读时间；未读为空")


class NotificationPage(BaseModel):
    items: list[NotificationRead]
    next: str | None = Field(None, description="下一页地址；最后一页为空")
    unread_count: int = Field(description="本人全部未读提醒数（不受分页影响）")


class ReadAllResult(BaseModel):
    marked: int = Field(description="本次标为已读的条数")
