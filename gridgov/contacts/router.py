"""联系户 over HTTP: assignments, history, coverage, people changes, automatic assignment."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, Query, Request, Response

from gridgov.auth.permissions import Perm
from gridgov.contacts import planner
from gridgov.contacts import service as contacts_service
from gridgov.contacts.schemas import (
    UNIT_CODE,
    AutoAssign,
    AutoAssignPlan,
    ContactCreate,
    ContactEnd,
    ContactPage,
    ContactRead,
    CoverageReport,
    HouseholdContacts,
    HouseholdRelease,
    MemberRelease,
    Reconcile,
    ReleaseResult,
    UncoveredPage,
)
from gridgov.deps import Allowed, PageDep, ReadScope, SessionDep, json_bytes, next_url
from gridgov.geo import CoordSys
from gridgov.inputs import MAX_ID, IdPath
from gridgov.listing import render_page

router = APIRouter(prefix="/contacts", tags=["contacts"])

PII_QUERY = Query(False, description="显示姓名明文（需角色许可，并记入审计）")
ON_QUERY = Query(None, description="某一天（YYYY-MM-DD）：当天负责的联系关系")


@router.get("", response_model=ContactPage, summary="联系户列表（当前或历史）")
def list_contacts(
    request: Request,
    session: SessionDep,
    scope: ReadScope,
    page: PageDep,
    unit_code: str | None = Query(None, pattern=UNIT_CODE),
    grid_code: str | None = Query(None, pattern=r"^[0-9]{15}$"),
    member_id: int | None = Query(None, ge=1, le=MAX_ID),
    household_id: int | None = Query(None, ge=1, le=MAX_ID),
    role: Literal["primary", "secondary"] | None = None,
    status: Literal["active", "ended", "all"] = Query(
        "active", description="active 当前 / ended 已结束 / all 全部（给出 on 时忽略）"
    ),
    on: date | None = ON_QUERY,
    pii: bool = PII_QUERY,
) -> Response:
    result = contacts_service.list_contacts(
        session,
        scope,
        unit_code=unit_code,
        grid_code=grid_code,
        member_id=member_id,
        household_id=household_id,
        role=role,
        status=status,
        on=on,
        limit=page[0],
        cursor=page[1],
        pii=pii,
    )
    return json_bytes(render_page(result, coord_sys=CoordSys.wgs84, next_url=next_url(request)))


@router.post("", response_model=ContactRead, status_code=201, summary="指定联系人")
def create_contact(
    body: ContactCreate, session: SessionDep, scope: Allowed(Perm.contacts_write)
) -> ContactRead:
    return contacts_service.assign_contact(session, scope, body)


@router.get("/coverage", response_model=CoverageReport, summary="覆盖情况（按网格/村/乡镇）")
def get_coverage(
    session: SessionDep,
    scope: ReadScope,
    unit_code: str | None = Query(None, pattern=UNIT_CODE, description="默认为本人所属单位"),
    by: Literal["grid", "village", "township"] = "village",
) -> CoverageReport:
    return contacts_service.coverage(session, scope, unit_code=unit_code, by=by)


@router.get("/uncovered", response_model=UncoveredPage, summary="没有主要联系人的户")
def list_uncovered(
    request: Request,
    session: SessionDep,
    scope: ReadScope,
    page: PageDep,
    unit_code: str | None = Query(None, pattern=UNIT_CODE),
    grid_code: str | None = Query(None, pattern=r"^[0-9]{15}$"),
    pii: bool = PII_QUERY,
) -> Response:
    result = contacts_service.list_uncovered(
        session,
        scope,
        unit_code=unit_code,
        grid_code=grid_code,
        limit=page[0],
        cursor=page[1],
        pii=pii,
    )
    return json_bytes(render_page(result, coord_sys=CoordSys.wgs84, next_url=next_url(request)))


@router.post(
    "/auto-assign",
    response_model=AutoAssignPlan,
    summary="自动分配（试算或写入）",
    description=(
        "按村求解最小费用流（精确最优）：总直线距离最小，满足容量与同村，"
        "优先本网格、同村民小组，均衡负担。dry_run 只返回方案；apply 整体写入（全部或不写）。"
    ),
)
def auto_assign(
    body: AutoAssign, session: SessionDep, scope: Allowed(Perm.contacts_write)
) -> Response:
    return json_bytes(planner.auto_assign_json(session, scope, body))


@router.post("/reconcile", response_model=ReleaseResult, summary="结束已失效的联系关系")
def reconcile(
    body: Reconcile, session: SessionDep, scope: Allowed(Perm.contacts_write)
) -> ReleaseResult:
    return contacts_service.reconcile(session, scope, unit_code=body.unit_code)


@router.get(
    "/households/{household_id}",
    response_model=HouseholdContacts,
    summary="某户的联系人：某日由谁负责，以及全部历史",
)
def household_contacts(
    household_id: IdPath,
    session: SessionDep,
    scope: ReadScope,
    on: date | None = ON_QUERY,
    pii: bool = PII_QUERY,
) -> HouseholdContacts:
    return contacts_service.household_contacts(session, scope, household_id, on=on, pii=pii)


@router.post(
    "/households/{household_id}/release",
    response_model=ReleaseResult,
    summary="户分户、搬迁、注销：结束其联系关系",
)
def release_household(
    household_id: IdPath,
    body: HouseholdRelease,
    session: SessionDep,
    scope: Allowed(Perm.contacts_write),
) -> ReleaseResult:
    return contacts_service.release_household(
        session,
        scope,
        household_id,
        reason=body.reason,
        note=body.note,
        related_household_ids=body.related_household_ids,
    )


@router.post(
    "/members/{member_id}/release",
    response_model=ReleaseResult,
    summary="党员离开、迁居、去世：结束其全部联系关系",
)
def release_member(
    member_id: IdPath,
    body: MemberRelease,
    session: SessionDep,
    scope: Allowed(Perm.contacts_write),
) -> ReleaseResult:
    return contacts_service.release_member(
        session, scope, member_id, reason=body.reason, note=body.note
    )


@router.get("/{contact_id}", response_model=ContactRead, summary="联系记录")
def get_contact(
    contact_id: IdPath, session: SessionDep, scope: ReadScope, pii: bool = PII_QUERY
) -> ContactRead:
    return contacts_service.get_contact(session, scope, contact_id, pii=pii)


@router.post("/{contact_id}/end", response_model=ContactRead, summary="结束联系（保留记录）")
def end_contact(
    contact_id: IdPath,
    body: ContactEnd,
    session: SessionDep,
    scope: Allowed(Perm.contacts_write),
) -> ContactRead:
    return contacts_service.end_contact(session, scope, contact_id, body)
