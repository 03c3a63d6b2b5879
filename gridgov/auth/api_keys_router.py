"""API keys over HTTP: made, listed and revoked by county administrators, for users in scope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response

from gridgov.auth import api_keys as keys_service
from gridgov.auth.models import ApiKey, User
from gridgov.auth.permissions import Perm
from gridgov.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from gridgov.deps import Allowed, SessionDep

router = APIRouter(prefix="/api-keys", tags=["api-keys"])
ManageScope = Allowed(Perm.api_keys_manage)


def _read(key: ApiKey, user: User) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "user_id": user.id,
        "username": user.username,
        "role": user.role,
        "county_code": key.county_code,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "last_used_at": key.last_used_at,
        "active": keys_service.is_active(key, datetime.now(UTC)),
    }


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=201,
    summary="创建 API 密钥（密钥仅显示这一次）",
    description="密钥代表一个权限范围内的用户：与该用户的角色和权限范围相同。"
    "使用方式：请求头 `X-API-Key: ggk_…` 或 `Authorization: Bearer ggk_…`；"
    "地图服务（/ogc、/tiles 的 GET 请求）也可用查询参数 `api_key=ggk_…`。",
)
def create_key(body: ApiKeyCreate, session: SessionDep, scope: ManageScope) -> ApiKeyCreated:
    created = keys_service.create_key(session, scope, **body.model_dump())
    return ApiKeyCreated(**_read(created.key, created.user), key=created.secret)


@router.get("", response_model=list[ApiKeyRead], summary="权限范围内用户的 API 密钥（不含密钥）")
def list_keys(session: SessionDep, scope: ManageScope) -> list[ApiKeyRead]:
    return [ApiKeyRead(**_read(k, u)) for k, u in keys_service.list_keys(session, scope)]


@router.delete("/{key_id}", status_code=204, summary="吊销 API 密钥")
def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=2**63 - 1)], session: SessionDep, scope: ManageScope
) -> Response:
    keys_service.revoke_key(session, scope, key_id)
    return Response(status_code=204)
