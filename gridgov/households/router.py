"""Households over HTTP."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from gridgov.auth.permissions import Perm
from gridgov.deps import (
    Allowed,
    BBoxDep,
    CoordSysDep,
    PageDep,
    ReadScope,
    SessionDep,
    json_bytes,
    next_url,
)
from gridgov.households import service as households_service
from gridgov.households.schemas import (
    HouseholdCreate,
    HouseholdRead,
    HouseholdRemove,
    HouseholdUpdate,
)
from gridgov.inputs import NO_NUL, IdPath
from gridgov.listing import render_page

router = APIRouter(prefix="/households", tags=["households"])

PII_QUERY = Query(False, description="显示姓名、电话、身份证号明文（需角色许可，并记入审计）")


class HouseholdPage(BaseModel):
    items: list[HouseholdRead]
    next: str | None = None


@router.get("", response_model=HouseholdPage, summary="户列表")
def list_households(
    request: Request,
    session: SessionDep,
    scope: ReadScope,
    page: PageDep,
    coord_sys: CoordSysDep,
    bbox: BBoxDep,
    unit_code: str | None = Query(None, pattern=r"^[0-9]{6}([0-9]{3}){0,2}$"),
    grid_code: str | None = Query(None, pattern=r"^[0-9]{15}$"),
    tag: str | None = Query(None, max_length=20, pattern=NO_NUL, description="重点人群标签"),
    flag: str | None = Query(None, max_length=30, pattern=NO_NUL, description="如 outside_grid"),
    q: str | None = Query(None, max_length=50, pattern=NO_NUL, description="户主、地址或台账编号"),
    include_removed: bool = False,
    geometry: bool = True,
    pii: bool = PII_QUERY,
) -> Response:
    result = households_service.list_households(
        session,
        scope,
        unit_code=unit_code,
        grid_code=grid_code,
        tag=tag,
        flag=flag,
        q=q,
        bbox=bbox,
        include_removed=include_removed,
        limit=page[0],
        cursor=page[1],
        with_geometry=geometry,
        coord_sys=coord_sys,
        pii=pii,
    )
    return json_bytes(
        render_page(
            result, coord_sys=coord_sys, next_url=next_url(request), geometry_key="location"
        )
    )


@router.get("/{household_id}", response_model=HouseholdRead, summary="户详情")
def get_household(
    household_id: IdPath,
    session: SessionDep,
    scope: ReadScope,
    coord_sys: CoordSysDep,
    pii: bool = PII_QUERY,
) -> HouseholdRead:
    return households_service.get_household(
        session, scope, household_id, coord_sys=coord_sys, pii=pii
    )


@router.post("", response_model=HouseholdRead, status_code=201, summary="登记一户")
def create_household(
    body: HouseholdCreate,
    session: SessionDep,
    scope: Allowed(Perm.households_write),
    coord_sys: CoordSysDep,
) -> HouseholdRead:
    return households_service.create_household(session, scope, body, coord_sys=coord_sys)


@router.patch("/{household_id}", response_model=HouseholdRead, summary="修改户信息或位置")
def update_household(
    household_id: IdPath,
    body: HouseholdUpdate,
    session: SessionDep,
    scope: Allowed(Perm.households_write),
    coord_sys: CoordSysDep,
) -> HouseholdRead:
    return households_service.update_household(
        session, scope, household_id, body, coord_sys=coord_sys
    )


@router.post("/{household_id}/remove", status_code=204, summary="注销（迁出、合户等，保留记录）")
def remove_household(
    household_id: IdPath,
    body: HouseholdRemove,
    session: SessionDep,
    scope: Allowed(Perm.households_write),
) -> Response:
    households_service.remove_household(session, scope, household_id, reason=body.reason)
    return Response(status_code=204)
