"""Mobile delta pull over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gridgov.deps import PAGE_LIMIT_RULE, CoordSysDep, ReadScope, SessionDep, checked_limit
from gridgov.sync import service as sync_service
from gridgov.sync.schemas import SyncPage

router = APIRouter(tags=["sync"])

SYNC_PAGE_DEFAULT = 500


@router.get("/sync", response_model=SyncPage, summary="增量同步（从游标之后的全部变化）")
def pull(
    session: SessionDep,
    scope: ReadScope,
    coord_sys: CoordSysDep,
    cursor: Annotated[str | None, Query(max_length=500, description="上次返回的 next")] = None,
    limit: Annotated[
        int | None, Query(ge=1, description=f"每页变化条数（默认 500；{PAGE_LIMIT_RULE}）")
    ] = None,
    pii: Annotated[
        bool,
        Query(
            description="户主姓名、电话明文（需角色许可；网格员本网格的户始终为明文；均记入审计）"
        ),
    ] = False,
) -> SyncPage:
    return sync_service.pull(
        session,
        scope,
        cursor=cursor,
        limit=checked_limit(limit, SYNC_PAGE_DEFAULT),
        coord_sys=coord_sys,
        pii=pii,
    )
