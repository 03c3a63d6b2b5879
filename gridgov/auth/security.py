"""Password hashing (argon2) and signed tokens (JWT, HS256)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gridgov.config import get_settings

_hasher = PasswordHasher()
# Verifying against this keeps a login for an unknown user as slow as for a known one.
_DUMMY_HASH = _hasher.hash("gridgov-dummy-password")
ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def encode(claims: dict[str, Any], ttl: timedelta) -> tuple[str, datetime]:
    now = datetime.now(UTC)
    expires = now + ttl
    payload = {**claims, "iat": now, "exp": expires}
    payload.setdefault("jti", str(uuid.uuid4()))
    return jwt.encode(payload, get_settings().auth.secret_key, algorithm=ALGORITHM), expires


MAX_USER_ID = 2**63 - 1  # users.id is a bigint


# Tokens whose signature was verified, by (key, kind, token) → (exp, claims). A page or a map
# client sends the same access token with every request, dozens a second, and checking its
# HMAC each time was ~5 % of a dashboard read (py-spy). Only tokens that verified are kept,
# so garbage cannot fill it; the expiry is checked again on every use; a new secret key
# misses. Revocation is not decided here (user_for_access_token and the scope cache do).
_VERIFIED: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}
_VERIFIED_MAX = 10_000


def decode(token: str, *, kind: str) -> dict[str, Any] | None:
    """The claims of a valid, unexpired token of the given kind, else None.

    Strict about what the rest of the code relies on: ``exp`` must be there (a token without
    one would never expire), ``sub`` is a user id (decimal digits within ``bigint``), ``jti``
    a UUID; anything else is simply an invalid token, never an exception further on."""
    key = (get_settings().auth.secret_key, kind, token)
    known = _VERIFIED.get(key)
    if known is not None:
        expires, claims = known
        if expires > time.time():  # as PyJWT: valid while now < exp
            return dict(claims)
        _VERIFIED.pop(key, None)
        return None
    claims = _verify(token, kind)
    if claims is not None:
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[key] = (float(claims["exp"]), dict(claims))
    return claims


def _verify(token: str, kind: str) -> dict[str, Any] | None:
    try:
        claims = jwt.decode(
            token,
            get_settings().auth.secret_key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "typ"]},
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    sub, jti = claims.get("sub"), claims.get("jti")
    if claims.get("typ") != kind or not isinstance(sub, str) or not _user_id(sub):
        return None
    if kind == "refresh" or jti is not None:
        try:
            claims["jti"] = str(uuid.UUID(jti))
        except (ValueError, TypeError, AttributeError):
            return None
    return claims


def _user_id(sub: str) -> bool:
    return sub.isascii() and sub.isdigit() and len(sub) <= 19 and 1 <= int(sub) <= MAX_USER_ID
