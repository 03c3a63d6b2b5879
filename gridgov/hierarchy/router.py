"""Units, Party organizations and grids over HTTP."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

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
from gridgov.geo import CoordSys
from gridgov.hierarchy import service as hierarchy_service
from gridgov.hierarchy.schemas import (
    GridCreate,
    GridPage,
    GridRead,
    GridUpdate,
    PartyOrgCreate,
    PartyOrgPage,
    PartyOrgRead,
    PartyOrgUpdate,
    UnitCreate,
    UnitPage,
    UnitRead,
    UnitUpdate,
)
from gridgov.inputs import NO_NUL, IdPath
from gridgov.listing import render_page

router = APIRouter()
CODE_PATH = r"^[0-9]{6}([0-9]{3}){0,2}$"
UnitCodePath = Annotated[str, Path(pattern=CODE_PATH, description="6/9/12 位区划代码")]


# -- units --------------------------------------------------------------------------------------


@router.get("/units", tags=["units"], response_model=UnitPage, summary="行政单位列表")
def list_units(
    request: Request,
    session: SessionDep,
    scope: ReadScope,
    page: PageDep,
    coord_sys: CoordSysDep,
    bbox: BBoxDep,
    level: Literal["county", "township", "village"] | None = None,
    parent_code: str | None = Query(None, pattern=CODE_PATH),
    q: str | None = Query(None, max_length=50, pattern=NO_NUL, description="名称或代码前缀"),
    include_retired: bool = False,
    has_boundary: bool | None = Query(None, description="只列出有（true）或没有（false）边界的"),
    geometry: bool = Query(False, description="是否返回边界"),
) -> Response:
    result = hierarchy_service.list_units(
        session,
        scope,
        level=level,
        has_boundary=has_boundary,
        parent_code=parent_code,
        q=q,
        bbox=bbox,
        include_retired=include_retired,
        limit=page[0],
        cursor=page[1],
        with_geometry=geometry,
        coord_sys=coord_sys,
    )
    return json_bytes(render_page(result, coord_sys=coord_sys, next_url=next_url(request)))


@router.get("/units/{code}", tags=["units"], response_model=UnitRead, summary="行政单位详情")
def get_unit(
    code: UnitCodePath, session: SessionDep, scope: ReadScope, coord_sys: CoordSysDep
) -> UnitRead:
    return hierarchy_service.get_unit(session, scope, code, coord_sys=coord_sys)


@router.post(
    "/units", tags=["units"], response_model=UnitRead, status_code=201, summary="新建乡镇或村"
)
def create_unit(
    body: UnitCreate, session: SessionDep, scope: Allowed(Perm.units_write), coord_sys: CoordSysDep
) -> UnitRead:
    return hierarchy_service.create_unit(session, scope, body, coord_sys=coord_sys)


@router.patch("/units/{code}", tags=["units"], response_model=UnitRead, summary="修改名称或边界")
def update_unit(
    code: UnitCodePath,
    body: UnitUpdate,
    session: SessionDep,
    scope: Allowed(Perm.units_write),
    coord_sys: CoordSysDep,
) -> UnitRead:
    return hierarchy_service.update_unit(session, scope, code, body, coord_sys=coord_sys)


@router.delete("/units/{code}", tags=["units"], status_code=204, summary="撤销（保留历史）")
def retire_unit(
    code: UnitCodePath,
    session: SessionDep,
    scope: Allowed(Perm.units_write),
    successor: str | None = Query(
        None, pattern=CODE_PATH, description="撤并：并入的同级单位代码（记为承继单位）"
    ),
) -> Response:
    hierarchy_service.retire_unit(session, scope, code, successor_code=successor)
    return Response(status_code=204)


# -- party organizations --------------------------------------------------------------------------


@router.get("/party-orgs", tags=["party-orgs"], response_model=PartyOrgPage, summary="党组织列表")
def list_party_orgs(
    request: Request,
    session: SessionDep,
    scope: ReadScope,
    page: PageDep,
    unit_code: str | None = Query(None, pattern=CODE_PATH),
    q: str | None = Query(None, max_length=50, pattern=NO_NUL),
    pii: bool = Query(False, description="显示书记姓名、电话明文（需角色许可，并记入审计）"),
) -> Response:
    result = hierarchy_service.list_party_orgs(
        session, scope, unit_code=unit_code, q=q, limit=page[0], cursor=page[1], pii=pii
    )
    return json_bytes(render_page(result, coord_sys=CoordSys.wgs84, next_url=next_url(request)))


@router.get(
    "/party-orgs/{org_id}", tags=["party-orgs"], response_model=PartyOrgRead, summary="党组织详情"
)
def get_party_org(
    org_id: IdPath,
    session: SessionDep,
    scope: ReadScope,
    pii: bool = Query(False, description="显示书记姓名、电话明文（需角色许可，并记入审计）"),
) -> PartyOrgRead:
    return hierarchy_service.get_party_org(session, scope, org_id, pii=pii)


@router.post(
    "/party-orgs",
    tags=["party-orgs"],
    response_model=PartyOrgRead,
    status_code=201,
    summary="新建党组织",
)
def create_party_org(
    body: PartyOrgCreate, session: SessionDep, scope: Allowed(Perm.party_orgs_write)
) -> PartyOrgRead:
    return hierarchy_service.create_party_org(session, scope, body)


@router.patch(
    "/party-orgs/{org_id}", tags=["party-orgs"], response_model=PartyOrgRead, summary="修改党组织"
)
def update_party_org(
    org_id: IdPath, body: PartyOrgUpdate, session: SessionDep, scope: Allowed(Perm.party_orgs_write)
) -> PartyOrgRead:
    return hierarchy_service.update_party_org(session, scope, org_id, body)


@router.delete(
    "/party-orgs/{org_id}", tags=["party-orgs"], status_code=204, summary="删除党组织（无党员时）"
)
def delete_party_org(
    org_id: IdPath, session: SessionDep, scope: Allowed(Perm.party_orgs_write)
) -> Response:
    hierarchy_service.delete_party_org(session, scope, org_id)
    return Response(status_code=204)


# -- grids --------------------------------------------------------------------------------------


@router.get("/grids", tags=["grids"], response_model=GridPage, summary="网格列表")
def list_grids(
    request: Request,
    session: SessionDep,
    scope: ReadScope,
    page: PageDep,
    coord_sys: CoordSysDep,
    bbox: BBoxDep,
    unit_code: str | None = Query(None, pattern=CODE_PATH, description="所属乡镇/村代码"),
    kind: Literal["general", "dedicated"] | None = None,
    q: str | None = Query(None, max_length=50, pattern=NO_NUL),
    include_retired: bool = False,
    geometry: bool = Query(True, description="是否返回边界"),
    pii: bool = Query(False, description="显示网格长姓名明文（需角色许可，并记入审计）"),
) -> Response:
    result = hierarchy_service.list_grids(
        session,
        scope,
        unit_code=unit_code,
        q=q,
        bbox=bbox,
        kind=kind,
        include_retired=include_retired,
        limit=page[0],
        cursor=page[1],
        with_geometry=geometry,
        coord_sys=coord_sys,
        pii=pii,
    )
    return json_bytes(render_page(result, coord_sys=coord_sys, next_url=next_url(request)))


@router.get("/grids/{grid_id}", tags=["grids"], response_model=GridRead, summary="网格详情")
def get_grid(
    grid_id: IdPath,
    session: SessionDep,
    scope: ReadScope,
    coord_sys: CoordSysDep,
    pii: bool = Query(False, description="显示网格长姓名明文（需角色许可，并记入审计）"),
) -> GridRead:
    return hierarchy_service.get_grid(session, scope, grid_id, coord_sys=coord_sys, pii=pii)


@router.post("/grids", tags=["grids"], response_model=GridRead, status_code=201, summary="新建网格")
def create_grid(
    body: GridCreate, session: SessionDep, scope: Allowed(Perm.grids_write), coord_sys: CoordSysDep
) -> GridRead:
    return hierarchy_service.create_grid(session, scope, body, coord_sys=coord_sys)


@router.patch("/grids/{grid_id}", tags=["grids"], response_model=GridRead, summary="修改网格")
def update_grid(
    grid_id: IdPath,
    body: GridUpdate,
    session: SessionDep,
    scope: Allowed(Perm.grids_write),
    coord_sys: CoordSysDep,
) -> GridRead:
    return hierarchy_service.update_grid(session, scope, grid_id, body, coord_sys=coord_sys)


@router.delete("/grids/{grid_id}", tags=["grids"], status_code=204, summary="撤销网格（保留历史）")
def retire_grid(grid_id: IdPath, session: SessionDep, scope: Allowed(Perm.grids_write)) -> Response:
    hierarchy_service.retire_grid(session, scope, grid_id)
    return Response(status_code=204)
