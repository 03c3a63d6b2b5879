"""Users, refresh tokens and login attempts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.columns import created_at_column, id_column
from gridgov.db import Base
from gridgov.scoping import scoped_by

ROLES = (
    "grid_member",
    "village_admin",
    "township_admin",
    "county_admin",
    "gis_editor",
    "auditor",
)


class User(Base):
    __tablename__ = "users"
    __scope__ = scoped_by(
        __tablename__,
        "user",
        unit="unit_id",
        own="id",
        through=("grid_id", "grid"),
        audit=("user",),
    )

    id: Mapped[int] = id_column()
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(50))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    # Bound to exactly one admin unit or one grid: the root of everything the user may see.
    unit_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("admin_units.id"))
    grid_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grids.id"))
    member_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("party_members.id"))
    county_code: Mapped[str] = mapped_column(String(6))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = created_at_column()
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(
            "role IN ('grid_member', 'village_admin', 'township_admin', 'county_admin', "
            "'gis_editor', 'auditor')",
            name="role",
        ),
        CheckConstraint("(unit_id IS NULL) <> (grid_id IS NULL)", name="bound_once"),
        CheckConstraint("(role = 'grid_member') = (grid_id IS NOT NULL)", name="grid_role"),
        Index("ix_users_county_code", "county_code"),
    )


class RefreshToken(Base):
    """One refresh token (by its jti). Rotated on use; reuse of a used token revokes the family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    family: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        Index("ix_refresh_tokens_user_id", "user_id"),
        Index("ix_refresh_tokens_family", "family"),
    )


class LoginAttempt(Base):
    __tablename__ = "login_attempts"

    id: Mapped[int] = id_column()
    username: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    success: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_client_at", "client", "at"),
    )


class ApiKey(Base):
    """A long-lived key for machines (QGIS, GDAL, another department's system, an Open311
    client). It acts as its ``user``: that user's role and scope, nothing more. Only the SHA-256
    of the secret is stored (the secret is 32 random bytes, so a slow hash adds nothing); the
    ``prefix`` lets people tell their keys apart without revealing them."""

    __tablename__ = "api_keys"
    __scope__ = scoped_by(__tablename__, "api_key", through=("user_id", "user"), audit=("api_key",))

    id: Mapped[int] = id_column()
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    county_code: Mapped[str] = mapped_column(String(6))
    created_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_api_keys_user_id", "user_id"),
        Index("ix_api_keys_county_code", "county_code"),
    )
