"""走访 payloads: what the phone uploads and what it gets back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainValidator, field_validator
from pydantic_core import PydanticCustomError

from gridgov.geojson import PointGeometry
from gridgov.inputs import EntityId, InputModel
from gridgov.wire import Sql, UtcDatetime

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


def _as_sent(value: Any) -> Any:
    return value


# An upload's item: documented as ``VisitIn`` (a ``$ref`` in the document), passed on as sent.
UncheckedVisit = Annotated[Any, PlainValidator(_as_sent, json_schema_input_type=VisitIn)]


class VisitBatch(BaseModel):
    """``POST /api/v1/visits/batch``: up to 500 visits; each item succeeds or fails on its own.

    The items are documented as ``VisitIn`` but not validated here: the service checks them one
    by one, so one malformed visit is rejected alone (its outcome names why) instead of failing
    the whole batch with a 422. A plain model for the same reason (``InputModel`` would refuse
    the whole body for a NUL in one item)."""

    model_config = ConfigDict(extra="forbid")

    visits: list[UncheckedVisit] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"至多 {MAX_BATCH} 条走访"
    )


# The missing photos of a visit: referred to, not (yet) uploaded.
_MISSING_SQL = """ARRAY(
        SELECT x FROM unnest(v.attachment_ids) AS x
        WHERE NOT EXISTS (SELECT 1 FROM attachments a WHERE a.id = x)
    )"""


class VisitRead(BaseModel):
    """A stored visit. Each field's SQL (over ``visits v``) sits next to its type: the list and
    item reads and the batch answer's PostgreSQL-built JSON come from this one declaration
    (``gridgov.wire``)."""

    id: Annotated[int, Sql("v.id")]
    client_uuid: Annotated[UUID, Sql("v.client_uuid")]
    household_id: Annotated[int, Sql("v.household_id")]
    member_id: Annotated[int | None, Sql("v.member_id")]
    user_id: Annotated[int, Sql("v.user_id")]
    county_code: Annotated[str, Sql("v.county_code")]
    village_id: Annotated[int, Sql("v.village_id")]
    grid_id: Annotated[int | None, Sql("v.grid_id")]
    visited_at: Annotated[UtcDatetime, Sql("v.visited_at")]
    received_at: Annotated[UtcDatetime, Sql("v.received_at")]
    location: Annotated[dict[str, Any] | None, Sql("ST_AsGeoJSON(v.geom, 7)", geometry=True)]
    accuracy_m: Annotated[float | None, Sql("v.accuracy_m")]
    method: Annotated[str, Sql("v.method")]
    notes: Annotated[str | None, Sql("v.notes")]
    needs: Annotated[list[str], Sql("v.needs")]
    attachment_ids: Annotated[list[UUID], Sql("v.attachment_ids")]
    missing_attachments: Annotated[
        list[UUID], Sql(_MISSING_SQL), Field(description="已引用但尚未上传的照片")
    ]
    flags: Annotated[
        list[str],
        Sql("v.flags"),
        Field(description="服务器核验标记；有标记的走访须经审核通过才计入"),
    ]
    review_status: Annotated[
        Literal["clean", "pending", "accepted", "rejected"], Sql("v.review_status")
    ]
    reviewed_at: Annotated[UtcDatetime | None, Sql("v.reviewed_at")]
    review_reason: Annotated[str | None, Sql("v.review_reason")]


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
    created_at: UtcDatetime


class DueHousehold(BaseModel):
    household_id: int
    head_name: str
    address: str | None
    tags: list[str]
    interval_days: int
    last_visited_at: UtcDatetime | None
    due_at: UtcDatetime
    overdue_days: int = Field(description="已超期天数（0 为今日到期）")
    distance_m: float | None = Field(None, description="与所给位置的距离（米）")
    location: dict[str, Any] | None = None
