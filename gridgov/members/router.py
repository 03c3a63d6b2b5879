"""Party members over HTTP."""

from __future__ import annotations

from typing import Literal

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
from gridgov.inputs import NO_NUL, IdPath
from gridgov.listing import render_page
from gridgov.members import service as members_service
from gridgov.members.schemas import MemberCreate, MemberLeave, MemberRead, MemberUpdate

router = APIRouter(prefix="/members", tags=["members"])

PII_QUERY = Query(False, description="显示姓名、电话、身份证号明文（需角色许可，并记入审计）")


class MemberPage(BaseModel):
    items: list[MemberRead]
    next: str | None = None


@router.get("", response_model=MemberPage, summary="党员列表")
def list_members(
    request: Request,
    session: SessionDep,
    scope: ReadScope,
    page: PageDep,
    coord_sys: CoordSysDep,
    bbox: BBoxDep,
    unit_code: str | None = Query(None, pattern=r"^[0-9]{6}([0-9]{3}){0,2}$"),
    grid_code: str | None = Query(None, pattern=r"^[0-9]{15}$"),
    status: Literal["full", "probationary"] | None = None,
    flowing: bool | None = None,
    q: str | None = Query(None, max_length=50, pattern=NO_NUL),
    include_left: bool = False,
    geometry: bool = False,
    pii: bool = PII_QUERY,
) -> Response:
    result = members_service.list_members(
        session,
        scope,
        unit_code=unit_code,
        grid_code=grid_code,
        status=status,
        flowing=flowing,
        q=q,
        bbox=bbox,
        include_left=include_left,
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


@router.get("/{member_id}", response_model=MemberRead, summary="党员详情")
def get_member(
    member_id: IdPath,
    session: SessionDep,
    scope: ReadScope,
    coord_sys: CoordSysDep,
    pii: bool = PII_QUERY,
) -> MemberRead:
    return members_service.get_member(session, scope, member_id, coord_sys=coord_sys, pii=pii)


@router.post("", response_model=MemberRead, status_code=201, summary="登记党员")
def create_member(
    body: MemberCreate,
    session: SessionDep,
    scope: Allowed(Perm.members_write),
    coord_sys: CoordSysDep,
) -> MemberRead:
    return members_service.create_member(session, scope, body, coord_sys=coord_sys)


@router.patch("/{member_id}", response_model=MemberRead, summary="修改党员信息")
def update_member(
    member_id: IdPath,
    body: MemberUpdate,
    session: SessionDep,
    scope: Allowed(Perm.members_write),
    coord_sys: CoordSysDep,
) -> MemberRead:
    return members_service.update_member(session, scope, member_id, body, coord_sys=coord_sys)


@router.post("/{member_id}/leave", status_code=204, summary="党员离开（迁出、去世、转出）")
def leave(
    member_id: IdPath, body: MemberLeave, session: SessionDep, scope: Allowed(Perm.members_write)
) -> Response:
    members_service.leave(session, scope, member_id, reason=body.reason)
    return Response(status_code=204)
