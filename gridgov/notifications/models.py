"""站内提醒: what the background jobs tell a person (an issue nearly due, overdue, escalated to
their unit). The in-app inbox is the channel every deployment has; SMS or 政务微信 gateways
can later read the same rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.columns import created_at_column, id_column
from gridgov.db import Base


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[int] = id_column()
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    county_code: Mapped[str] = mapped_column(String(6))
    kind: Mapped[str] = mapped_column(String(30))
    entity: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(String(1000))
    # What makes a reminder the same reminder (e.g. "issue:42:due_soon:3"): a job run twice,
    # or two runs at once, notify once.
    dedupe_key: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = created_at_column()
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("user_id", "dedupe_key", name="uq_notifications_user_id_dedupe_key"),
        Index("ix_notifications_user_id_id", "user_id", "id"),
    )
