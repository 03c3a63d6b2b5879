"""Login (OAuth2 password flow), token refresh, who am I, users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from gridgov.auth import service as auth_service
from gridgov.auth.permissions import Perm
from gridgov.auth.schemas import MeRead, RefreshRequest, TokenResponse, UserCreate, UserRead
from gridgov.deps import Allowed, ReadScope, SessionDep
from gridgov.openapi_problems import problems

router = APIRouter(tags=["auth"])
users_router = APIRouter(prefix="/users", tags=["users"])


# Public routes: their 401 (a wrong password, a spent refresh token) and the login limit's
# 429 are not derived from a credential dependency, so they are declared here.
@router.post(
    "/auth/token",
    response_model=TokenResponse,
    summary="登录（OAuth2 密码模式）",
    responses=problems(401, 429),
)
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep, request: Request
) -> TokenResponse:
    client = request.client.host if request.client else "unknown"
    pair = auth_service.login(
        session, username=form.username, password=form.password, client=client
    )
    return TokenResponse(**pair.__dict__)


@router.post(
    "/auth/refresh",
    response_model=TokenResponse,
    summary="刷新令牌（轮换）",
    responses=problems(401),
)
def refresh(body: RefreshRequest, session: SessionDep) -> TokenResponse:
    pair = auth_service.refresh(session, token=body.refresh_token)
    return TokenResponse(**pair.__dict__)


@router.get("/me", response_model=MeRead, summary="当前用户及其权限范围")
def me(session: SessionDep, scope: ReadScope) -> MeRead:
    return auth_service.describe(session, scope)


@users_router.post("", response_model=UserRead, status_code=201, summary="创建用户")
def create_user(
    body: UserCreate, session: SessionDep, scope: Allowed(Perm.users_write)
) -> UserRead:
    user = auth_service.create_user(session, scope, **body.model_dump())
    return UserRead.model_validate(user)


@users_router.get("", response_model=list[UserRead], summary="权限范围内的用户")
def list_users(session: SessionDep, scope: Allowed(Perm.users_write)) -> list[UserRead]:
    return [UserRead.model_validate(u) for u in auth_service.list_users(session, scope)]
