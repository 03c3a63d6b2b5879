"""Read the audit log (auditors and county admins)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query

from gridgov.audit import service as audit_service
from gridgov.audit.schemas import AuditPage
from gridgov.deps import Allowed, SessionDep
from gridgov.permissions import Perm

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=AuditPage, summary="审计日志")
def list_audit(
    session: SessionDep,
    scope: Allowed(Perm.audit_read),
    entity: str | None = Query(None, max_length=40),
    entity_id: str | None = Query(None, max_length=64),
    since: datetime | None = None,
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = Query(None, max_length=200),
    pii: bool = Query(
        False, description="前后快照中的姓名、电话、身份证号显示明文（需个人信息权限，并记入审计）"
    ),
) -> AuditPage:
    return audit_service.list_(
        session,
        scope,
        entity=entity,
        entity_id=entity_id,
        since=since,
        limit=limit,
        cursor=cursor,
        pii=pii,
    )
