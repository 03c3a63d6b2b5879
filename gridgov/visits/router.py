"""走访 over HTTP: batch upload, photos, history, review, the caller's due list."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from gridgov.auth.permissions import Perm
from gridgov.config import get_settings
from gridgov.deps import Allowed, CoordSysDep, PageDep, ReadScope, SessionDep, json_bytes, next_url
from gridgov.errors import FieldError, PayloadInvalid, PayloadTooLarge
from gridgov.inputs import NO_NUL, EntityId, IdPath
from gridgov.listing import render_page
from gridgov.visits import service as visits_service
from gridgov.visits.schemas import (
    AttachmentRead,
    DueHousehold,
    VisitBatch,
    VisitBatchResult,
    VisitRead,
    VisitReview,
)
from gridgov.visits.storage import get_blob_store

router = APIRouter(tags=["visits"])

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


class VisitPage(BaseModel):
    items: list[VisitRead]
    next: str | None = None


@router.post(
    "/visits/batch",
    response_model=VisitBatchResult,
    summary="批量上传走访（离线补传，可安全重试）",
)
def upload_visits(
    body: VisitBatch,
    session: SessionDep,
    scope: Allowed(Perm.visits_write),
    coord_sys: CoordSysDep,
) -> Response:
    return json_bytes(visits_service.upload_batch(session, scope, body.visits, coord_sys=coord_sys))


@router.get("/visits", response_model=VisitPage, summary="走访记录（按走访时间倒序）")
def list_visits(
    request: Request,
    session: SessionDep,
    scope: ReadScope,
    page: PageDep,
    coord_sys: CoordSysDep,
    household_id: Annotated[EntityId | None, Query()] = None,
    member_id: Annotated[EntityId | None, Query()] = None,
    mine: bool = Query(False, description="只看本人上传的"),
    review_status: Literal["clean", "pending", "accepted", "rejected"] | None = None,
    flag: str | None = Query(None, max_length=30, pattern=NO_NUL, description="核验标记"),
    since: datetime | None = None,
    until: datetime | None = None,
) -> Response:
    result = visits_service.list_visits(
        session,
        scope,
        household_id=household_id,
        member_id=member_id,
        mine=mine,
        review_status=review_status,
        flag=flag,
        since=since,
        until=until,
        limit=page[0],
        cursor=page[1],
    )
    return json_bytes(
        render_page(
            result, coord_sys=coord_sys, next_url=next_url(request), geometry_key="location"
        )
    )


@router.get("/visits/{visit_id}", response_model=VisitRead, summary="一条走访记录")
def get_visit(
    visit_id: IdPath, session: SessionDep, scope: ReadScope, coord_sys: CoordSysDep
) -> VisitRead:
    return visits_service.get_visit(session, scope, visit_id, coord_sys=coord_sys)


@router.post(
    "/visits/{visit_id}/review", response_model=VisitRead, summary="审核走访（通过或驳回）"
)
def review_visit(
    visit_id: IdPath,
    body: VisitReview,
    session: SessionDep,
    scope: Allowed(Perm.visits_review),
    coord_sys: CoordSysDep,
) -> VisitRead:
    return visits_service.review_visit(
        session, scope, visit_id, decision=body.decision, reason=body.reason, coord_sys=coord_sys
    )


async def photo_bytes(request: Request) -> bytes:
    """The request body, refused as soon as it passes the size limit (never read whole first)."""
    limit = get_settings().visits.attachment_max_bytes
    message = f"照片不能超过 {limit // 1024} KB"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(message)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(message)
        chunks.append(chunk)
    return b"".join(chunks)


@router.put(
    "/attachments/{attachment_id}",
    response_model=AttachmentRead,
    summary="上传照片（JPEG/PNG/WebP，按 UUID 幂等）",
    responses={201: {"model": AttachmentRead, "description": "新保存"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "照片字节（JPEG/PNG/WebP，按文件头判断，不看 Content-Type）",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
def put_attachment(
    attachment_id: UUID,
    data: Annotated[bytes, Depends(photo_bytes)],
    response: Response,
    session: SessionDep,
    scope: Allowed(Perm.visits_write),
) -> AttachmentRead:
    attachment, created = visits_service.put_attachment(
        session, scope, attachment_id, data, store=get_blob_store()
    )
    response.status_code = 201 if created else 200
    return AttachmentRead.model_validate(attachment, from_attributes=True)


@router.get(
    "/attachments/{attachment_id}",
    summary="下载照片",
    response_class=Response,
    responses={200: {"content": {t: {} for t in IMAGE_TYPES}}},
)
def get_attachment(attachment_id: UUID, session: SessionDep, scope: ReadScope) -> Response:
    attachment, data = visits_service.get_attachment(
        session, scope, attachment_id, store=get_blob_store()
    )
    return Response(
        data,
        media_type=attachment.media_type,
        headers={"ETag": f'"{attachment.sha256}"', "Cache-Control": "private, max-age=86400"},
    )


@router.get("/me/due", response_model=list[DueHousehold], summary="我的应走访户（超期最久在前）")
def my_due(
    session: SessionDep,
    scope: Allowed(Perm.visits_write),
    coord_sys: CoordSysDep,
    lon: float | None = Query(None, ge=-180, le=180, description="当前位置经度（按 coord_sys）"),
    lat: float | None = Query(None, ge=-90, le=90, description="当前位置纬度"),
    within_days: int = Query(0, ge=0, le=365, description="同时列出这些天内将到期的户"),
    limit: int = Query(200, ge=1, le=1000),
    pii: bool = Query(False, description="户主姓名明文（网格员本网格的户始终为明文；均记入审计）"),
) -> list[DueHousehold]:
    if (lon is None) != (lat is None):
        raise PayloadInvalid(
            [FieldError(["query", "lon"], "经度和纬度须同时提供", "position_incomplete")]
        )
    position = (lon, lat) if lon is not None and lat is not None else None
    return visits_service.due_list(
        session,
        scope,
        position=position,
        coord_sys=coord_sys,
        within_days=within_days,
        limit=limit,
        pii=pii,
    )
