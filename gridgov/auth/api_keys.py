"""API keys for machines (QGIS, GDAL, other departments' systems, Open311 clients).

A key acts as its user: that user's role and scope, nothing more. The secret is shown once, when
the key is made; only its SHA-256 is stored (32 random bytes: a slow hash would add nothing) and
a short ``prefix`` lets people tell their keys apart. Unknown, revoked and expired keys and keys
of deactivated users are refused alike (401), so a caller learns nothing about which it was.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridgov import trail  # the audit log sits above auth: entries go through gridgov.trail
from gridgov.auth.models import ApiKey, User
from gridgov.auth.scope import Scope
from gridgov.errors import FieldError, NotFound, RuleViolation, Unauthenticated

KEY_PREFIX = "ggk_"
# ggk_ + 8 hex characters + _ + 43 characters of token_urlsafe(32).
KEY_LENGTH = len(KEY_PREFIX) + 8 + 1 + 43
INVALID_MESSAGE = "API 密钥无效、已吊销或已过期"

# Written at most once a minute per key: reads must not turn into writes on every request.
# SKIP LOCKED: a request never waits for another one that is noting the same key's use.
_TOUCH_SQL = text(
    "UPDATE api_keys SET last_used_at = now() WHERE id = ("
    " SELECT id FROM api_keys WHERE id = :id"
    " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
    " FOR UPDATE SKIP LOCKED)"
)


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    user: User
    secret: str  # the full key: shown once, never stored


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(value: str) -> bool:
    """An API key rather than a JWT (both can travel as ``Authorization: Bearer …``)."""
    return value.startswith(KEY_PREFIX)


def _new_secret() -> tuple[str, str]:
    prefix = secrets.token_hex(4)
    return prefix, f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


def _audit_view(key: ApiKey) -> dict[str, Any]:
    return {k: v for k, v in trail.snapshot(key).items() if k != "key_hash"}


def is_active(key: ApiKey, now: datetime | None = None) -> bool:
    now = now or datetime.now(UTC)
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > now)


def _target_user(
    session: Session, scope: Scope | None, *, username: str | None, user_id: int | None
) -> User:
    query = select(User)
    query = query.where(User.username == username) if username else query.where(User.id == user_id)
    if scope is not None:
        query = query.where(scope.where(User))
    user = session.scalar(query)
    if user is None:
        raise NotFound(f"用户 {username or user_id} ")
    return user


def create_key(
    session: Session,
    scope: Scope | None,
    *,
    name: str,
    username: str | None = None,
    user_id: int | None = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    """A new key acting as the user (by name or id) — in the caller's scope (else 404); the
    CLI passes ``scope=None`` and acts as the system."""
    user = _target_user(session, scope, username=username, user_id=user_id)
    errors: list[FieldError] = []
    if not name.strip():
        errors.append(FieldError(["name"], "名称不能为空", "name_empty"))
    if not user.is_active:
        errors.append(FieldError(["username"], "该用户已停用，不能为其创建密钥", "user_inactive"))
    if expires_at is not None and expires_at <= datetime.now(UTC):
        errors.append(FieldError(["expires_at"], "过期时间应晚于现在", "expires_in_past"))
    if errors:
        raise RuleViolation(errors)
    prefix, secret = _new_secret()
    key = ApiKey(
        name=name.strip(),
        prefix=prefix,
        key_hash=hash_key(secret),
        user_id=user.id,
        county_code=user.county_code,
        created_by=scope.user_id if scope is not None and scope.user_id else None,
        expires_at=expires_at,
    )
    session.add(key)
    session.flush()
    session.refresh(key)  # created_at from the server
    trail.record(
        session,
        scope,
        action="create",
        entity="api_key",
        entity_id=key.id,
        county_code=key.county_code,
        after=_audit_view(key),
    )
    return CreatedKey(key, user, secret)


def list_keys(
    session: Session, scope: Scope | None, *, county_code: str | None = None
) -> list[tuple[ApiKey, User]]:
    """Keys of the users in scope (revoked and expired ones too), oldest first; no secrets."""
    query = select(ApiKey, User).join(User, User.id == ApiKey.user_id)
    if scope is not None:
        query = query.where(scope.where(User))
    if county_code is not None:
        query = query.where(ApiKey.county_code == county_code)
    return [(k, u) for k, u in session.execute(query.order_by(ApiKey.id))]


def revoke_key(session: Session, scope: Scope | None, key_id: int) -> ApiKey:
    """Revoke a key of a user in scope (404 otherwise). Revoking a revoked key changes nothing."""
    query = select(ApiKey).join(User, User.id == ApiKey.user_id).where(ApiKey.id == key_id)
    if scope is not None:
        query = query.where(scope.where(User))
    key = session.scalar(query.with_for_update(of=ApiKey))
    if key is None:
        raise NotFound("API 密钥")
    if key.revoked_at is None:
        before = _audit_view(key)
        key.revoked_at = datetime.now(UTC)
        session.flush()
        trail.record(
            session,
            scope,
            action="revoke",
            entity="api_key",
            entity_id=key.id,
            county_code=key.county_code,
            before=before,
            after=_audit_view(key),
        )
    return key


def user_for_api_key(session: Session, key: str) -> User:
    """The active user an active key acts as; anything else is the same 401."""
    invalid = Unauthenticated(INVALID_MESSAGE, code="invalid_api_key")
    if not looks_like_key(key) or len(key) > 200:
        raise invalid
    row = session.execute(
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.key_hash == hash_key(key))
        .execution_options(populate_existing=True)  # never a stale copy from the session
    ).first()
    if row is None:
        raise invalid
    api_key, user = row
    if not is_active(api_key) or not user.is_active:
        raise invalid
    now = datetime.now(UTC)
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() >= 60:
        session.execute(_TOUCH_SQL, {"id": api_key.id})
    return user
