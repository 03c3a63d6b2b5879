"""事件 payloads: reporting, transitions, reads, KPIs."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from gridgov.geojson import PointGeometry
from gridgov.inputs import EntityId, InputModel
from gridgov.issues.workflow import Action
from gridgov.wire import UtcDatetime


class IssueCreate(InputModel):
    client_uuid: uuid.UUID = Field(description="客户端生成的 UUID：重复提交返回已存记录")
    category_code: str = Field(pattern=r"^[0-9]{4}$", description="事件分类 MMNN")
    description: str = Field(min_length=1, max_length=2000)
    location: PointGeometry = Field(description="事件位置（GeoJSON 点，按 coord_sys）")
    grid_code: str | None = Field(
        None, pattern=r"^[0-9]{15}$", description="上报人确认或更正的网格（边界附近）"
    )
    address: str | None = Field(None, max_length=200)
    household_id: EntityId | None = None
    photo_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)


class TransitionCreate(InputModel):
    action: Action
    version: int = Field(ge=1, le=2**31 - 1, description="客户端看到的版本号（乐观并发）")
    note: str | None = Field(None, max_length=500, description="说明；驳回、合并、撤销等必填")
    rating: int | None = Field(None, ge=1, le=5, description="结案时的满意度 1–5")
    photo_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)


class IssueEventRead(BaseModel):
    at: UtcDatetime
    user_id: int | None
    action: str
    from_state: str | None
    to_state: str
    from_level: int | None
    to_level: int
    note: str | None
    photo_ids: list[uuid.UUID] = Field(default_factory=list, description="办理时附的照片")
    missing_attachments: list[uuid.UUID] = Field(description="本条引用但尚未上传的照片")


class IssueRead(BaseModel):
    id: int
    client_uuid: uuid.UUID
    category_code: str
    priority: int
    description: str
    address: str | None
    location: list[float] = Field(description="[经度, 纬度]（WGS84）")
    village_code: str
    grid_code: str | None
    flags: list[str]
    photo_ids: list[uuid.UUID]
    missing_attachments: list[uuid.UUID] = Field(
        description="上报及办理时引用但尚未上传的照片（PUT /api/v1/attachments/{uuid} 补传）"
    )
    reporter_id: int
    household_id: int | None
    duplicate_ids: list[int]
    state: str
    level: int
    handler_id: int | None
    sla_hours: int
    due_at: UtcDatetime
    escalate_at: UtcDatetime
    resolved_at: UtcDatetime | None
    closed_at: UtcDatetime | None
    on_time: bool | None
    extended: bool
    rework_count: int
    rating: int | None
    close_reason: str | None
    version: int
    created_at: UtcDatetime
    allowed_actions: list[str] = Field(description="当前用户可执行的动作")
    timeline: list[IssueEventRead] = Field(default_factory=list)


class IssuePage(BaseModel):
    items: list[IssueRead]
    next: str | None = None


class CategoryRead(BaseModel):
    code: str
    name: str
    priority: int
    sla_hours: int
    public: bool
    photo_required: bool


class IssueKpis(BaseModel):
    unit_code: str | None
    period_from: UtcDatetime | None
    period_to: UtcDatetime | None
    total: int = Field(description="期内上报且未被驳回、合并、撤销的事件数")
    closed: int
    closed_on_time: int
    reworked: int
    extended: int
    closed_in_grid: int
    rated: int
    closure_rate: float | None = Field(description="结案率 = closed / total")
    on_time_rate: float | None = Field(description="按期结案率 = closed_on_time / closed")
    rework_rate: float | None = Field(description="返工率 = reworked / closed")
    extension_rate: float | None = Field(description="延期率 = extended / total")
    in_grid_rate: float | None = Field(description="网格内解决率 = closed_in_grid / closed")
    satisfaction: float | None = Field(description="满意度：已结案评价的平均分（1–5）")
