"""事件 over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request, Response

from gridgov.auth.permissions import Perm
from gridgov.deps import Allowed, CoordSysDep, PageDep, ReadScope, SessionDep, next_url
from gridgov.inputs import IdPath
from gridgov.issues import service as issues_service
from gridgov.issues.schemas import (
    CategoryRead,
    IssueCreate,
    IssueKpis,
    IssuePage,
    IssueRead,
    TransitionCreate,
)
from gridgov.issues.workflow import State

router = APIRouter(prefix="/issues", tags=["issues"])


@router.get("/categories", response_model=list[CategoryRead], summary="事件分类")
def list_categories(session: SessionDep, scope: ReadScope) -> Any:
    return issues_service.list_categories(session)


@router.get("/kpis", response_model=IssueKpis, summary="事件考核指标")
def get_kpis(
    session: SessionDep,
    scope: ReadScope,
    unit_code: str | None = Query(None, pattern=r"^[0-9]{6}([0-9]{3}){0,3}$"),
    period_from: datetime | None = Query(None, alias="from", description="上报时间起（含）"),
    period_to: datetime | None = Query(None, alias="to", description="上报时间止（不含）"),
) -> IssueKpis:
    return issues_service.kpis(
        session, scope, unit_code=unit_code, start=period_from, end=period_to
    )


@router.get("", response_model=IssuePage, summary="事件列表（mine=true 为我的待办）")
def list_issues(
    request: Request,
    session: SessionDep,
    scope: ReadScope,
    page: PageDep,
    state: State | None = None,
    level: int | None = Query(None, ge=1, le=4),
    category_code: str | None = Query(None, pattern=r"^[0-9]{2}([0-9]{2})?$"),
    mine: bool = False,
) -> IssuePage:
    items, cursor = issues_service.list_issues(
        session,
        scope,
        state=state.value if state else None,
        level=level,
        category_code=category_code,
        mine=mine,
        limit=page[0],
        cursor=page[1],
    )
    return IssuePage(items=items, next=next_url(request)(cursor) if cursor else None)


@router.post(
    "",
    response_model=IssueRead,
    status_code=201,
    summary="上报事件（按 client_uuid 幂等）",
    responses={200: {"model": IssueRead, "description": "重复提交：返回已存的记录，未作改动"}},
)
def report_issue(
    body: IssueCreate,
    response: Response,
    session: SessionDep,
    scope: Allowed(Perm.issues_report),
    coord_sys: CoordSysDep,
) -> Any:
    issue, created = issues_service.report(session, scope, body, coord_sys=coord_sys)
    if not created:
        response.status_code = 200  # a resubmission: the stored record, unchanged
    return issue


@router.get("/{issue_id}", response_model=IssueRead, summary="事件详情（含处置时间线）")
def get_issue(issue_id: IdPath, session: SessionDep, scope: ReadScope) -> Any:
    return issues_service.get_issue(session, scope, issue_id)


@router.post("/{issue_id}/transitions", response_model=IssueRead, summary="办理：状态流转")
def transition_issue(
    issue_id: IdPath,
    body: TransitionCreate,
    session: SessionDep,
    scope: Allowed(Perm.issues_handle),
) -> Any:
    return issues_service.apply_transition(session, scope, issue_id, body)
