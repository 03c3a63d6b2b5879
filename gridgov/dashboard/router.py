"""The dashboard over HTTP: /api/v1/dashboard/{unit_code}/… for a county, township, village or
grid (15 digits), scoped like every read (outside the caller's subtree: 404)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import partial
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.orm import Session

from gridgov import wire
from gridgov.dashboard import ledger
from gridgov.dashboard import service as dashboard_service
from gridgov.dashboard.schemas import (
    DashboardChildren,
    DashboardSummary,
    FlagBreakdown,
    HouseholdFile,
    IssueBreakdown,
    Scores,
    Trend,
)
from gridgov.dashboard.service import Period
from gridgov.db import read_in_thread
from gridgov.deps import ReadScope, SessionDep, json_bytes
from gridgov.inputs import IdPath

router = APIRouter(tags=["dashboard"])

UnitCode = Annotated[
    str,
    Path(
        pattern=r"^[0-9]{6}([0-9]{3}){0,3}$",
        description="县（6 位）、乡镇（9 位）、村（12 位）或网格（15 位）代码",
    ),
]
Kind = Annotated[
    Literal["day", "week", "month", "range"],
    Query(description="时段：day 日 / week 周（周一起）/ month 月 / range 自定义（from、to）"),
]
On = Annotated[date | None, Query(alias="date", description="时段内任一天（默认今天）")]
From = Annotated[date | None, Query(alias="from", description="自定义时段起始日期（含）")]
To = Annotated[date | None, Query(alias="to", description="自定义时段截止日期（含）")]


# async: arithmetic on dates, not worth a trip through the thread pool
async def _period(
    period: Kind = "month", on: On = None, start: From = None, end: To = None
) -> Period:
    return dashboard_service.period(period, on=on, start=start, end=end)


PeriodDep = Annotated[Period, Depends(_period)]


async def _read(session: Session, work: Callable[[], dict[str, Any]]) -> Response:
    """A dashboard read: the service's figures (already in the shape of the route's
    response_model, which tests/dashboard check body by body) as JSON bytes, built and the
    transaction ended in one worker-thread trip. No second pass through pydantic: a county's
    breakdown would be validated and serialised twice for nothing."""
    body = await read_in_thread(session, lambda: wire.dumps(work()))
    return json_bytes(body)


@router.get(
    "/dashboard/{unit_code}/summary", response_model=DashboardSummary, summary="看板：本单位汇总"
)
async def get_summary(
    unit_code: UnitCode,
    session: SessionDep,
    scope: ReadScope,
    period: PeriodDep,
) -> Response:
    return await _read(
        session, partial(dashboard_service.summary, session, scope, unit_code, period)
    )


@router.get(
    "/dashboard/{unit_code}/children",
    response_model=DashboardChildren,
    summary="看板：按下级单位（或网格）分列",
)
async def get_children(
    unit_code: UnitCode,
    session: SessionDep,
    scope: ReadScope,
    period: PeriodDep,
) -> Response:
    return await _read(
        session, partial(dashboard_service.children, session, scope, unit_code, period)
    )


@router.get(
    "/dashboard/{unit_code}/flags", response_model=FlagBreakdown, summary="看板：走访标记与审核"
)
async def get_flags(
    unit_code: UnitCode,
    session: SessionDep,
    scope: ReadScope,
    period: PeriodDep,
) -> Response:
    return await _read(session, partial(dashboard_service.flags, session, scope, unit_code, period))


@router.get(
    "/dashboard/{unit_code}/issues",
    response_model=IssueBreakdown,
    summary="看板：事件按状态、类别、层级",
)
async def get_issues(
    unit_code: UnitCode,
    session: SessionDep,
    scope: ReadScope,
    period: PeriodDep,
) -> Response:
    return await _read(
        session, partial(dashboard_service.issue_breakdown, session, scope, unit_code, period)
    )


@router.get("/dashboard/{unit_code}/trend", response_model=Trend, summary="看板：走访与事件趋势")
def get_trend(
    unit_code: UnitCode,
    session: SessionDep,
    scope: ReadScope,
    start: Annotated[date, Query(alias="from", description="起始日期")],
    end: Annotated[date, Query(alias="to", description="截止日期（含）")],
    kind: Literal["day", "week", "month"] = "day",
) -> Trend:
    return Trend.model_validate(
        dashboard_service.trend(session, scope, unit_code, kind=kind, start=start, end=end)
    )


@router.get("/dashboard/{unit_code}/scores", response_model=Scores, summary="看板：党员或网格积分")
def get_scores(
    unit_code: UnitCode,
    session: SessionDep,
    scope: ReadScope,
    of: Literal["member", "grid"] = "member",
    period: Literal["week", "month"] = "month",
    on: On = None,
    limit: int = Query(500, ge=1, le=5000),
    pii: bool = Query(False, description="显示党员姓名（需有个人信息权限，记入审计）"),
) -> Scores:
    return Scores.model_validate(
        dashboard_service.scores(
            session,
            scope,
            unit_code,
            dashboard_service.period(period, on=on),
            of=of,
            limit=limit,
            pii=pii,
        )
    )


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get(
    "/dashboard/{unit_code}/ledger.xlsx",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "台账（XLSX）"}},
    summary="看板：台账下载（XLSX）",
)
def get_ledger(
    unit_code: UnitCode,
    session: SessionDep,
    scope: ReadScope,
    period: PeriodDep,
) -> Response:
    body, filename = ledger.ledger(session, scope, unit_code, period)
    return Response(
        body,
        media_type=XLSX,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/households/{household_id}/file",
    response_model=HouseholdFile,
    tags=["households"],
    summary="一户一档：联系党员、走访与事件时间线",
)
def get_household_file(
    household_id: IdPath,
    session: SessionDep,
    scope: ReadScope,
    pii: bool = Query(False, description="显示姓名和电话（需有个人信息权限，记入审计）"),
) -> HouseholdFile:
    return HouseholdFile.model_validate(
        dashboard_service.household_file(session, scope, household_id, pii=pii)
    )
