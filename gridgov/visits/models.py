"""走访记录 (visits) logged on the phone, and the photos they refer to.

A visit is identified by the UUID the phone gave it: uploading it again is a no-op, so a batch
retried after a dropped connection stores nothing twice. ``content_hash`` is the SHA-256 of the
visit's canonical content; the same UUID with another hash is a conflict.

Scale (DESIGN §10): ~2 million visits a county-year. This is a plain table with the indexes the
reads need. Monthly partitioning by ``visited_at`` is the next step; a partitioned table's
unique indexes must contain the partition key, so ``client_uuid`` would then move to a small
unpartitioned key table (client_uuid → id, visited_at) that the batch insert claims first.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY as PG_ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.columns import created_at_column, geometry, id_column
from gridgov.db import Base
from gridgov.scoping import scoped_by

METHODS = ("door", "phone", "video", "meeting", "other")
REVIEW_STATES = ("clean", "pending", "accepted", "rejected")
MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp")


class Visit(Base):
    __tablename__ = "visits"
    __scope__ = scoped_by(
        __tablename__, "visit", village="village_id", grid="grid_id", audit=("visit",)
    )

    id: Mapped[int] = id_column()
    client_uuid: Mapped[uuid.UUID] = mapped_column(Uuid)
    content_hash: Mapped[str] = mapped_column(String(64))
    county_code: Mapped[str] = mapped_column(String(6))
    village_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("admin_units.id"))
    # The household's grid when the visit arrived (NULL for a household outside every grid).
    grid_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grids.id"))
    household_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("households.id"))
    # The caller's linked Party member; NULL when the user has none (they still log visits).
    member_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("party_members.id"))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    visited_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = created_at_column()
    geom = geometry("POINT", nullable=True)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(10))
    notes: Mapped[str | None] = mapped_column(String(2000))
    needs: Mapped[list[str]] = mapped_column(ARRAY(String(200)), server_default="{}")
    attachment_ids: Mapped[list[uuid.UUID]] = mapped_column(PG_ARRAY(Uuid), server_default="{}")
    # Computed by the server (never sent by the phone); non-empty flags make the visit pending.
    flags: Mapped[list[str]] = mapped_column(ARRAY(String(30)), server_default="{}")
    review_status: Mapped[str] = mapped_column(String(10), server_default="clean")
    reviewed_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_reason: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint("method IN (" + ", ".join(f"'{m}'" for m in METHODS) + ")", name="method"),
        CheckConstraint(
            "review_status IN (" + ", ".join(f"'{s}'" for s in REVIEW_STATES) + ")",
            name="review_status",
        ),
        Index("uq_visits_client_uuid", "client_uuid", unique=True),
        # Histories per household and per person, the due list's "last counted visit", and the
        # neighbour lookups of the speed and burst checks.
        Index("ix_visits_household_id_visited_at", "household_id", "visited_at"),
        Index("ix_visits_user_id_visited_at", "user_id", "visited_at"),
        Index("ix_visits_member_id_visited_at", "member_id", "visited_at"),
        Index("ix_visits_village_id_visited_at", "village_id", "visited_at"),
        Index("ix_visits_grid_id_visited_at", "grid_id", "visited_at"),
        Index("ix_visits_county_code", "county_code"),
        Index("ix_visits_attachment_ids", "attachment_ids", postgresql_using="gin"),
        Index(
            "ix_visits_pending",
            "village_id",
            postgresql_where=text("review_status = 'pending'"),
        ),
    )


class Attachment(Base):
    """A photo, stored by content (SHA-256) in the blob store; its id is the phone's UUID."""

    __tablename__ = "attachments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(6))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(
            "media_type IN (" + ", ".join(f"'{m}'" for m in MEDIA_TYPES) + ")", name="media_type"
        ),
        Index("ix_attachments_sha256", "sha256"),
        Index("ix_attachments_user_id", "user_id"),
    )
