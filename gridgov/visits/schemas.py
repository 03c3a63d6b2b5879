"""走访 payloads: what the phone uploads and what it gets back."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from gridgov.geojson import PointGeometry
from gridgov.inputs import EntityId, InputModel

MAX_BATCH = 500

VisitMethod = Literal["door", "phone", "video", "meeting", "other"]
ItemStatus = Literal["created", "duplicate", "conflict", "rejected"]


class VisitIn(InputModel):
    """One visit as recorded on the phone (possibly offline, uploaded later)."""

    client_uuid: UUID = Field(description="手机端生成的 UUID；重复上传同一条不会重复保存")
    household_id: EntityId = Field(description="走访的户")
    visited_at: AwareDatetime = Field(description="走访时间（ISO 8601，带时区）")
    location: PointGeometry | None = Field(None, description="走访时的位置（GeoJSON 点）")
    accuracy_m: float | None = Field(None, ge=0, le=100_000, description="定位精度（米）")
    method: VisitMethod = Field(
        "door", description="door 入户、phone 电话、video 视频、meeting 集中座谈、other 其他"
    )
    notes: str | None = Field(None, max_length=2000, description="走访情况")
    needs: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="群众诉求（每条不超过 200 字）",
    )
    attachment_ids: list[UUID] = Field(
        default_factory=list, max_length=20, description="照片的 UUID（可在走访之后上传）"
    )

    @field_validator("visited_at")
    @classmethod
    def _plausible_time(cls, value: datetime) -> datetime:
        # Far-off years would overflow on conversion to UTC; no real visit is outside these.
        if not 2000 <= value.year <= 2100:
            raise PydanticCustomError("visited_at_out_of_range", "走访时间应在 2000–2100 年之间")
        return value

    @field_validator("needs")
    @classmethod
    def _needs(cls, value: list[str]) -> list[str]:
        for need in value:
            if not need.strip() or len(need) > 200:
                raise PydanticCustomError("invalid_need", "每条诉求应为 1–200 字")
        return value


class VisitBatch(InputModel):
    """``POST /api/v1/visits/batch``: up to 500 visits; each item succeeds or fails on its own."""

    visits: list[VisitIn] = Field(min_length=1, max_length=MAX_BATCH)


class VisitRead(BaseModel):
    id: int
    client_uuid: UUID
    household_id: int
    member_id: int | None
    user_id: int
    county_code: str
    village_id: int
    grid_id: int | None
    visited_at: datetime
    received_at: datetime
    location: dict[str, Any] | None
    accuracy_m: float | None
    method: str
    notes: str | None
    needs: list[str]
    attachment_ids: list[UUID]
    missing_attachments: list[UUID] = Field(description="已引用但尚未上传的照片")
    flags: list[str] = Field(description="服务器核验标记；有标记的走访须经审核通过才计入")
    review_status: Literal["clean", "pending", "accepted", "rejected"]
    reviewed_at: datetime | None
    review_reason: str | None


class ItemError(BaseModel):
    loc: list[str | int]
    msg: str
    code: str


class VisitOutcome(BaseModel):
    index: int = Field(description="该条在上传数组中的位置")
    client_uuid: UUID | None
    status: ItemStatus
    visit: VisitRead | None = Field(None, description="created / duplicate 时为已保存的记录")
    errors: list[ItemError] = Field(default_factory=list)


class VisitBatchResult(BaseModel):
    items: list[VisitOutcome]
    created: int
    duplicate: int
    conflict: int
    rejected: int


class VisitReview(InputModel):
    decision: Literal["accept", "reject"]
    reason: str = Field(min_length=1, max_length=200, description="审核意见")


class AttachmentRead(BaseModel):
    id: UUID
    sha256: str
    size: int
    media_type: str
    created_at: datetime


class DueHousehold(BaseModel):
    household_id: int
    head_name: str
    address: str | None
    tags: list[str]
    interval_days: int
    last_visited_at: datetime | None
    due_at: datetime
    overdue_days: int = Field(description="已超期天数（0 为今日到期）")
    distance_m: float | None = Field(None, description="与所给位置的距离（米）")
    location: dict[str, Any] | None = None
