"""Login, token refresh, users."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from gridgov import trail  # the audit log sits above auth: entries go through gridgov.trail
from gridgov.auth import security
from gridgov.auth.models import LoginAttempt, RefreshToken, User
from gridgov.auth.permissions import ROLE_LABELS, ROLE_PERMS, Role
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


# A transaction-level advisory lock per username: concurrent logins for one name run one after
# another, from counting the failures to recording this attempt (released at commit), so 30 at
# once are counted like 30 in a row. Different names never wait for each other.
_LOGIN_LOCK_SQL = text("SELECT pg_advisory_xact_lock(hashtextextended('gridgov.login:' || :u, 0))")

# In the window: failures of this name from this address since its last success here; failures
# of this name from any address; failures from this address for any name; the newest failure
# of this name; whether this address has logged in as this name lately (a known client).
_LOGIN_STATE_SQL = text(
    """
    WITH mine AS (
        SELECT max(at) FILTER (WHERE success) AS last_success
        FROM login_attempts WHERE username = :u AND client = :c AND at > :known_since
    )
    SELECT
        (SELECT count(*) FROM login_attempts a, mine
         WHERE a.username = :u AND a.client = :c AND NOT a.success AND a.at > :since
           AND a.at > COALESCE(mine.last_success, '-infinity')) AS pair_failures,
        (SELECT count(*) FROM login_attempts
         WHERE username = :u AND NOT success AND at > :since) AS user_failures,
        (SELECT count(*) FROM login_attempts
         WHERE client = :c AND NOT success AND at > :since) AS client_failures,
        (SELECT max(at) FROM login_attempts
         WHERE username = :u AND NOT success AND at > :since) AS last_failure,
        (SELECT last_success IS NOT NULL FROM mine) AS known
    """
)


def _check_rate(session: Session, username: str, client: str) -> None:
    """The login policy (README, Security). Failures count per (username, client address):
    ``login_max_failures`` of them in the window stop that address for that name. A name
    attacked from many addresses (``login_user_max_failures`` failures from all of them) is
    not locked: addresses that logged in as it before (within ``login_known_client_days``)
    go on as usual, new ones get an exponential back-off (one try per 2ᵏ seconds after the
    name's newest failure, at most the window). So nobody can lock an owner out by guessing;
    and one address trying many names is stopped at 4 × ``login_max_failures``."""
    auth = get_settings().auth
    now = datetime.now(UTC)
    since = now - timedelta(seconds=auth.login_window_seconds)
    session.execute(_LOGIN_LOCK_SQL, {"u": username})
    state = session.execute(
        _LOGIN_STATE_SQL,
        {
            "u": username,
            "c": client,
            "since": since,
            "known_since": now - timedelta(days=auth.login_known_client_days),
        },
    ).one()
    window = auth.login_window_seconds
    if state.pair_failures >= auth.login_max_failures:
        oldest = session.scalar(
            select(func.min(LoginAttempt.at)).where(
                LoginAttempt.username == username,
                LoginAttempt.client == client,
                ~LoginAttempt.success,
                LoginAttempt.at > since,
            )
        )
        wait = window - int((now - oldest).total_seconds()) if oldest else window
        raise _too_many(max(wait, 1))
    if state.client_failures >= auth.login_max_failures * 4:
        raise _too_many(window)
    excess = state.user_failures - auth.login_user_max_failures
    if excess >= 0 and not state.known and state.last_failure is not None:
        backoff = min(2 ** min(excess, 20), window)
        wait = backoff - (now - state.last_failure).total_seconds()
        if wait > 0:
            raise _too_many(max(int(wait + 0.999), 1))


def _too_many(retry_after: int) -> TooManyRequests:
    minutes = max(retry_after // 60, 1)
    detail = (
        f"登录失败次数过多，请在 {minutes} 分钟后再试"
        if retry_after >= 60
        else f"登录失败次数过多，请在 {retry_after} 秒后再试"
    )
    return TooManyRequests(detail, retry_after=retry_after)


def login(session: Session, *, username: str, password: str, client: str) -> TokenPair:
    """Rate-limited password login. Failed attempts are committed by the caller even on error."""
    username, client = username[:64], client[:64]
    _check_rate(session, username, client)
    user = session.scalar(select(User).where(User.username == username))
    ok = security.verify_password(user.password_hash if user else None, password)
    ok = ok and user is not None and user.is_active
    session.add(LoginAttempt(username=username, client=client, success=ok))
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
        unit = _bound_to(session, scope, "unit", unit_code)
        if unit is None:
            raise NotFound(f"行政单位 {unit_code} ")
    else:
        grid = _bound_to(session, scope, "grid", grid_code)
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
    trail.record(
        session,
        scope,
        action="create",
        entity="user",
        entity_id=user.id,
        county_code=user.county_code,
        after=trail.snapshot(user),
    )
    return user


def _bound_to(session: Session, scope: Scope | None, kind: str, code: str | None) -> Any:
    """The current unit or grid a new user is bound to (id, county) if the caller's scope
    holds it. Read by table name: auth sits below the hierarchy in the import order (every
    domain imports the scope), so it does not import the hierarchy's models."""
    table = "admin_units" if kind == "unit" else "grids"
    where, params = scope.sql(kind, "t") if scope is not None else ("true", {})
    return session.execute(
        text(
            f"SELECT t.id, t.county_code FROM {table} t "
            f"WHERE t.code = :code AND t.valid_to IS NULL AND {where}"
        ),
        {**params, "code": code},
    ).first()


def list_users(session: Session, scope: Scope) -> list[User]:
    return list(session.scalars(scope.select(User).order_by(User.id)))


def describe(session: Session, scope: Scope) -> MeRead:
    user = session.get(User, scope.user_id)
    assert user is not None
    unit_code = session.scalar(
        text("SELECT code FROM admin_units WHERE id = :id"), {"id": user.unit_id}
    )
    grid_code = session.scalar(text("SELECT code FROM grids WHERE id = :id"), {"id": user.grid_id})
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
