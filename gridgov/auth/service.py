"""Login, token refresh, users."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gridgov.audit import service as audit
from gridgov.auth import security
from gridgov.auth.models import LoginAttempt, RefreshToken, User
from gridgov.auth.permissions import Role
from gridgov.auth.schemas import MeRead
from gridgov.auth.scope import Scope
from gridgov.config import get_settings
from gridgov.errors import (
    Conflict,
    FieldError,
    NotFound,
    RuleViolation,
    TooManyRequests,
    Unauthenticated,
)
from gridgov.hierarchy.models import AdminUnit, Grid


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def _issue(session: Session, user: User, family: uuid.UUID | None = None) -> TokenPair:
    auth = get_settings().auth
    access, _ = security.encode(
        {"sub": str(user.id), "typ": "access", "role": user.role},
        timedelta(minutes=auth.access_token_minutes),
    )
    jti = uuid.uuid4()
    refresh, expires = security.encode(
        {"sub": str(user.id), "typ": "refresh", "jti": str(jti)},
        timedelta(days=auth.refresh_token_days),
    )
    session.add(
        RefreshToken(id=jti, family=family or uuid.uuid4(), user_id=user.id, expires_at=expires)
    )
    return TokenPair(access, refresh, auth.access_token_minutes * 60)


def _check_rate(session: Session, username: str, client: str) -> None:
    auth = get_settings().auth
    since = datetime.now(UTC) - timedelta(seconds=auth.login_window_seconds)
    failures_by_user = session.scalar(
        select(func.count()).where(
            LoginAttempt.username == username, LoginAttempt.at > since, ~LoginAttempt.success
        )
    )
    failures_by_client = session.scalar(
        select(func.count()).where(
            LoginAttempt.client == client, LoginAttempt.at > since, ~LoginAttempt.success
        )
    )
    if failures_by_user >= auth.login_max_failures or (
        failures_by_client >= auth.login_max_failures * 4
    ):
        raise TooManyRequests(
            f"登录失败次数过多，请在 {auth.login_window_seconds // 60} 分钟后再试",
            retry_after=auth.login_window_seconds,
        )


def login(session: Session, *, username: str, password: str, client: str) -> TokenPair:
    """Rate-limited password login. Failed attempts are committed by the caller even on error."""
    _check_rate(session, username, client)
    user = session.scalar(select(User).where(User.username == username))
    ok = security.verify_password(user.password_hash if user else None, password)
    ok = ok and user is not None and user.is_active
    session.add(LoginAttempt(username=username[:64], client=client[:64], success=ok))
    if not ok or user is None:
        error = Unauthenticated("用户名或密码错误", code="invalid_credentials")
        error.commit = True  # the failed attempt must count towards the rate limit
        raise error
    user.last_login_at = datetime.now(UTC)
    return _issue(session, user)


def refresh(session: Session, *, token: str) -> TokenPair:
    """Rotate a refresh token. Presenting a used one again revokes its whole family."""
    claims = security.decode(token, kind="refresh")
    if claims is None:
        raise Unauthenticated("刷新令牌无效或已过期", code="invalid_refresh_token")
    row = session.get(RefreshToken, uuid.UUID(claims["jti"]), with_for_update=True)
    now = datetime.now(UTC)
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("刷新令牌无效或已过期", code="invalid_refresh_token")
    if row.used_at is not None:
        session.execute(
            update(RefreshToken)
            .where(RefreshToken.family == row.family, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        error = Unauthenticated("刷新令牌已被使用，请重新登录", code="refresh_token_reused")
        error.commit = True  # the revocation must outlive the failed request
        raise error
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise Unauthenticated("用户已停用", code="user_inactive")
    row.used_at = now
    return _issue(session, user, family=row.family)


def user_for_access_token(session: Session, token: str) -> User:
    claims = security.decode(token, kind="access")
    if claims is None:
        raise Unauthenticated("访问令牌无效或已过期", code="invalid_token")
    user = session.get(User, int(claims["sub"]))
    if user is None or not user.is_active:
        raise Unauthenticated("用户不存在或已停用", code="invalid_token")
    return user


def create_user(
    session: Session,
    scope: Scope | None,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str,
    unit_code: str | None = None,
    grid_code: str | None = None,
) -> User:
    """Create a user bound to one unit (by code) or, for grid members, one grid."""
    errors: list[FieldError] = []
    if role not in set(Role):
        errors.append(FieldError(["role"], f"未知角色：{role}", "unknown_role"))
    if len(password) < 8:
        errors.append(FieldError(["password"], "密码至少 8 位", "password_too_short"))
    if (role == Role.grid_member) != (grid_code is not None) or (unit_code is None) == (
        grid_code is None
    ):
        errors.append(
            FieldError(
                ["unit_code" if role != Role.grid_member else "grid_code"],
                "网格员须绑定一个网格，其他角色须绑定一个行政单位",
                "binding_mismatch",
            )
        )
    if errors:
        raise RuleViolation(errors)
    unit = grid = None
    if unit_code is not None:
        query = select(AdminUnit).where(AdminUnit.code == unit_code, AdminUnit.valid_to.is_(None))
        if scope is not None:
            query = query.where(scope.where(AdminUnit))
        unit = session.scalar(query)
        if unit is None:
            raise NotFound(f"行政单位 {unit_code} ")
    else:
        query = select(Grid).where(Grid.code == grid_code, Grid.valid_to.is_(None))
        if scope is not None:
            query = query.where(scope.where(Grid))
        grid = session.scalar(query)
        if grid is None:
            raise NotFound(f"网格 {grid_code} ")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"用户名 {username} 已存在", code="username_taken")
    user = User(
        username=username,
        display_name=display_name,
        password_hash=security.hash_password(password),
        role=role,
        unit_id=unit.id if unit else None,
        grid_id=grid.id if grid else None,
        county_code=(unit.county_code if unit else grid.county_code),  # type: ignore[union-attr]
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        scope,
        action="create",
        entity="user",
        entity_id=user.id,
        county_code=user.county_code,
        after=audit.snapshot(user),
    )
    return user


def list_users(session: Session, scope: Scope) -> list[User]:
    return list(session.scalars(scope.select(User).order_by(User.id)))


def describe(session: Session, scope: Scope) -> MeRead:
    from gridgov.auth.permissions import ROLE_LABELS, ROLE_PERMS

    user = session.get(User, scope.user_id)
    assert user is not None
    unit_code = session.scalar(select(AdminUnit.code).where(AdminUnit.id == user.unit_id))
    grid_code = session.scalar(select(Grid.code).where(Grid.id == user.grid_id))
    role = Role(scope.role)
    return MeRead(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=role,
        role_label=ROLE_LABELS[role],
        county_code=user.county_code,
        unit_code=unit_code,
        grid_code=grid_code,
        unit_count=len(scope.unit_ids),
        village_count=len(scope.village_ids),
        permissions=sorted(p.value for p in ROLE_PERMS[role]),
    )
