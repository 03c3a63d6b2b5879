from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from gridgov.inputs import EntityId, InputModel
from gridgov.wire import Sql, UtcDatetime

ContactRole = Literal["primary", "secondary"]
UNIT_CODE = r"^[0-9]{6}([0-9]{3}){0,2}$"

MemberChange = Literal["member_left", "member_moved", "member_died"]
HouseholdChange = Literal["household_split", "household_moved", "household_removed"]
EndReason = Literal[
    "manual",
    "member_left",
    "member_moved",
    "member_died",
    "household_split",
    "household_moved",
    "household_removed",
]


class ContactCreate(InputModel):
    member_id: EntityId = Field(description="党员")
    household_id: EntityId = Field(description="户")
    role: ContactRole = Field("primary", description="primary 主要联系人 / secondary 协助联系人")
    valid_from: date | None = Field(None, description="开始负责的日期（默认今天，不能晚于今天）")
    replace_primary: bool = Field(
        False, description="该户已有主要联系人时，结束原联系人并由此人接替（同一日交接）"
    )
    note: str | None = Field(None, max_length=200, description="备注（接替时记入原联系记录）")


class ContactEnd(InputModel):
    reason: EndReason = Field("manual", description="结束原因")
    note: str | None = Field(None, max_length=200)
    on: date | None = Field(None, description="不再负责的第一天（默认今天）")


class ContactRead(BaseModel):
    """A 联系户 assignment. Each field's SQL (over ``contacts c`` and the joins of
    ``queries.CONTACT_FROM``) sits next to its type: one declaration for the document and
    the SQL of every contact read (``gridgov.wire``)."""

    id: Annotated[int, Sql("c.id")]
    county_code: Annotated[str, Sql("c.county_code")]
    village_code: Annotated[str, Sql("v.code")]
    household_id: Annotated[int, Sql("c.household_id")]
    household_head: Annotated[str | None, Sql("h.head_name")]
    grid_code: Annotated[str | None, Sql("g.code")]
    member_id: Annotated[int, Sql("c.member_id")]
    member_name: Annotated[str | None, Sql("m.name")]
    role: Annotated[ContactRole, Sql("c.role")]
    valid_from: Annotated[date, Sql("c.valid_from")]
    valid_to: Annotated[
        date | None,
        Sql("c.valid_to"),
        Field(description="不再负责的第一天（不含）；空表示仍在负责"),
    ]
    active: Annotated[bool, Sql("(c.valid_to IS NULL)")]
    source: Annotated[Literal["manual", "auto"], Sql("c.source")]
    ended_reason: Annotated[str | None, Sql("c.ended_reason")]
    ended_note: Annotated[str | None, Sql("c.ended_note")]
    distance_m: Annotated[
        float | None,
        Sql("round(ST_Distance(m.geom::geography, h.geom::geography, false)::numeric, 1)::float"),
        Field(description="党员住址到户的直线距离（米）"),
    ]
    created_at: Annotated[UtcDatetime, Sql("c.created_at")]


class ContactPage(BaseModel):
    items: list[ContactRead]
    next: str | None = None


class HouseholdContacts(BaseModel):
    """Who looked after one household: on a given day, and the whole history."""

    household_id: int
    on: date | None
    primary: ContactRead | None = Field(description="该日（或当前）的主要联系人")
    secondary: list[ContactRead]
    history: list[ContactRead] = Field(description="全部联系记录，按开始日期排列")


class CoverageRow(BaseModel):
    level: Literal["grid", "village", "township"]
    code: str | None = Field(description="网格/村/乡镇代码；未入格的户归入 code 为空的一行")
    name: str
    village_code: str | None
    households: int
    covered: int = Field(description="有主要联系人的户")
    uncovered: int
    coverage: float = Field(description="covered / households，无户时为 1")
    members: int = Field(description="在册党员")
    members_contacting: int = Field(description="正在联系户的党员")
    members_over_normal: int = Field(description="联系户数超过常规上限的党员")
    members_over_capacity: int = Field(description="联系户数超过本人上限的党员（上限后来被调低）")
    members_under_min: int = Field(description="联系户数在 1 到常规下限之间的党员")
    hubs: int = Field(description="党员中心户")
    avg_distance_m: float | None = Field(description="主要联系人到户的平均直线距离（米）")


class CoverageReport(BaseModel):
    unit_code: str
    by: Literal["grid", "village", "township"]
    items: list[CoverageRow]


class UncoveredHousehold(BaseModel):
    id: int
    head_name: str | None
    village_code: str
    grid_code: str | None
    hamlet: str | None
    address: str | None


class UncoveredPage(BaseModel):
    items: list[UncoveredHousehold]
    next: str | None = None


class MemberRelease(InputModel):
    reason: MemberChange = Field(
        description="member_left 离开 / member_moved 迁居 / member_died 去世"
    )
    note: str | None = Field(None, max_length=200)


class HouseholdRelease(InputModel):
    reason: HouseholdChange = Field(
        description="household_split 分户 / household_moved 搬迁 / household_removed 注销"
    )
    note: str | None = Field(None, max_length=200)
    related_household_ids: list[EntityId] = Field(
        default_factory=list, max_length=20, description="分户新登记的户（一并列出是否缺联系人）"
    )


class Reconcile(InputModel):
    unit_code: str = Field(pattern=UNIT_CODE, description="县、乡镇或村代码")


class EndedContact(BaseModel):
    id: int
    member_id: int
    household_id: int
    role: ContactRole
    reason: str


class ReleaseResult(BaseModel):
    ended: list[EndedContact]
    uncovered_household_ids: list[int] = Field(description="因此没有主要联系人的户")


class Preferences(InputModel):
    same_grid: bool = Field(True, description="优先本网格党员")
    same_hamlet: bool = Field(True, description="优先同村民小组党员")
    balance: bool = Field(True, description="均衡负担：超过常规户数逐户加价")


class AutoAssign(InputModel):
    unit_code: str = Field(pattern=UNIT_CODE, description="县、乡镇或村代码")
    mode: Literal["dry_run", "apply"] = Field(
        "dry_run", description="dry_run 只出方案 / apply 写入"
    )
    rebalance: bool = Field(False, description="重新分配已有主要联系人（默认保留）")
    preferences: Preferences = Field(default_factory=Preferences)
    include_pairs: bool = Field(True, description="返回逐户方案（大范围时可关闭，只看汇总）")


class PlanPair(BaseModel):
    household_id: int
    member_id: int
    distance_m: float
    previous_member_id: int | None = Field(description="重新分配前的主要联系人")


class PlanLoad(BaseModel):
    member_id: int
    kept: int = Field(description="保留的联系户（含协助联系）")
    proposed: int
    total: int
    normal_max: int
    capacity: int


class PlanUncovered(BaseModel):
    household_id: int
    reason: Literal["no_eligible_member", "no_member_within_reach", "capacity_exhausted"]
    message: str


class PlanEnded(BaseModel):
    contact_id: int
    household_id: int
    member_id: int
    reason: Literal["rebalance", "invalid"]


class PlanSummary(BaseModel):
    villages: int
    households: int
    kept: int = Field(description="保留原主要联系人的户")
    proposed: int = Field(description="新安排（或改派）的户")
    uncovered: int
    ended: int = Field(description="将结束的原联系记录（改派或已失效）")
    total_distance_m: float = Field(description="新安排的直线距离之和（米）")
    avg_distance_m: float | None
    members_used: int
    members_over_normal: int
    max_load: int


class AutoAssignPlan(BaseModel):
    unit_code: str
    mode: Literal["dry_run", "apply"]
    applied: bool
    batch_id: str | None
    summary: PlanSummary
    pairs: list[PlanPair] | None
    loads: list[PlanLoad] | None
    uncovered: list[PlanUncovered]
    ended: list[PlanEnded]
    seconds: dict[str, float]
