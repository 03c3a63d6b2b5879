"""The dashboard's response bodies (what the page and other clients read)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Colour = Literal["green", "yellow", "red"]
PeriodKind = Literal["day", "week", "month", "range"]


class UnitRef(BaseModel):
    code: str
    name: str
    level: Literal["county", "township", "village", "grid"]
    level_label: str


class PeriodRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    kind: PeriodKind
    from_: str = Field(alias="from", description="起始日期（含，Asia/Shanghai）")
    to: str = Field(description="截止日期（不含）")
    label: str


class ContactFigures(BaseModel):
    households: int = Field(description="在册户数")
    with_primary: int = Field(description="已落实主联系党员的户数")
    uncovered: int = Field(description="尚无主联系党员的户数")
    coverage: float | None = Field(description="联系户覆盖率 with_primary / households")
    members: int = Field(description="在册党员")
    members_over_normal: int
    members_over_capacity: int


class VisitFigures(BaseModel):
    visits: int = Field(description="本期走访记录数（含待核、驳回）")
    counted: int = Field(description="计入的走访（无标记或审核通过）")
    pending: int
    accepted: int
    rejected: int
    flagged: int = Field(description="被系统标记的走访")
    households_visited: int = Field(description="本期有计入走访的户数")
    coverage: float | None = Field(description="走访覆盖率 households_visited / households")
    overdue: int = Field(description="当前超期未访户数（应访日已过）")
    due_soon: int = Field(description="7 天内到期户数")
    never_visited: int


class IssueFigures(BaseModel):
    reported: int = Field(description="本期上报（含驳回、合并、撤销）")
    total: int = Field(description="本期上报且计入考核的事件")
    closed: int
    closed_on_time: int
    closure_rate: float | None
    on_time_rate: float | None
    rework_rate: float | None
    extension_rate: float | None
    in_grid_rate: float | None
    satisfaction: float | None
    open: int = Field(description="当前未办结")
    open_overdue: int = Field(description="当前已超期（红色预警）")
    open_due_soon: int = Field(description="当前即将到期（黄色预警）")


class Warning(BaseModel):
    colour: Colour = Field(description="三色预警：取各项中最严重者")
    parts: dict[str, Colour]
    overdue_share: float | None
    contact_coverage: float | None


class Figures(BaseModel):
    contacts: ContactFigures
    visits: VisitFigures
    issues: IssueFigures
    warning: Warning


class DashboardSummary(Figures):
    unit: UnitRef
    period: PeriodRead
    as_of: str | None = Field(description="数据汇总时间（最早的一个村）")


class ChildFigures(Figures):
    code: str | None = Field(description="下级单位或网格代码；未入网格为空")
    name: str
    level: str


class DashboardChildren(BaseModel):
    unit: UnitRef
    period: PeriodRead
    level: str | None = Field(description="下级层级；网格没有下级")
    items: list[ChildFigures]


class FlagRow(BaseModel):
    flag: str
    pending: int
    accepted: int
    rejected: int
    reviewed: int
    total: int


class FlagBreakdown(BaseModel):
    unit: UnitRef
    period: PeriodRead
    items: list[FlagRow]


class CountRow(BaseModel):
    key: Any
    issues: int
    name: str | None = None


class IssueBreakdown(BaseModel):
    unit: UnitRef
    period: PeriodRead
    by_state: list[CountRow]
    by_category: list[CountRow]
    by_level: list[CountRow]


class TrendPoint(BaseModel):
    start: str
    counted: int
    households: int
    flagged: int
    rejected: int
    issues_reported: int
    issues_closed: int


class Trend(BaseModel):
    unit: UnitRef
    kind: Literal["day", "week", "month"]
    series: list[TrendPoint]


class ScoreParts(BaseModel):
    assigned: int = Field(description="联系户数（网格：户数）")
    households_visited: int
    coverage: float | None
    issues_reported: int
    issues_closed_on_time: int
    overdue: int
    rejected_visits: int


class ScoreRow(BaseModel):
    id: int
    name: str | None
    village_code: str
    grid_code: str | None
    score: float
    parts: ScoreParts


class ScoreFormula(BaseModel):
    text: str
    weights: dict[str, float]


class Scores(BaseModel):
    unit: UnitRef
    period: PeriodRead
    of: Literal["member", "grid"]
    formula: ScoreFormula
    items: list[ScoreRow]


class FileEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    at: str
    kind: Literal["contact_start", "contact_end", "visit", "issue"]
    title: str
    ref: dict[str, int]


class HouseholdFile(BaseModel):
    household: dict[str, Any]
    events: list[FileEvent]
