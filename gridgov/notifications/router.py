"""站内提醒 over HTTP: the caller's own inbox (every signed-in role has one)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gridgov.deps import PageDep, ReadScope, SessionDep, next_url
from gridgov.inputs import IdPath
from gridgov.notifications import service as notifications_service
from gridgov.notifications.schemas import NotificationPage, NotificationRead, ReadAllResult

router = APIRouter(prefix="/me/notifications", tags=["notifications"])


@router.get("", response_model=NotificationPage, summary="我的站内提醒（最新在前）")
def list_notifications(
    request: Request,
    session: SessionDep,
    scope: ReadScope,
    page: PageDep,
    unread: bool = False,
) -> NotificationPage:
    rows, cursor, unread_count = notifications_service.list_inbox(
        session, scope.user_id, unread=unread, limit=page[0], cursor=page[1]
    )
    return NotificationPage(
        items=[NotificationRead.model_validate(r, from_attributes=True) for r in rows],
        next=next_url(request)(cursor) if cursor else None,
        unread_count=unread_count,
    )


@router.post("/read-all", response_model=ReadAllResult, summary="全部标为已读")
def read_all(session: SessionDep, scope: ReadScope) -> ReadAllResult:
    return ReadAllResult(marked=notifications_service.mark_all_read(session, scope.user_id))


@router.post("/{notification_id}/read", response_model=NotificationRead, summary="标为已读")
def read_one(notification_id: IdPath, session: SessionDep, scope: ReadScope) -> Any:
    row = notifications_service.mark_read(session, scope.user_id, notification_id)
    return NotificationRead.model_validate(row, from_attributes=True)
