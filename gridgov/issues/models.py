"""事件: issues, their append-only timeline, categories, and the working calendar.

An issue's ``state`` follows the one transition table in ``workflow.py``; its ``level`` (grid 1,
village 2, township 3, county 4) is separate and only rises. Deadlines (``due_at``,
``escalate_at``) are computed on the working calendar and moved while the issue is ON_HOLD.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.columns import created_at_column, geometry, id_column, mercator, updated_at_column
from gridgov.db import Base
from gridgov.scoping import scoped_by

# National rows of the calendar; a county's own rows (same day) override them.
NATIONAL = "000000"


class IssueCategory(Base):
    """MMNN: MM the group of DESIGN §7, NN the sub-category (00 = the group itself)."""

    __tablename__ = "issue_categories"

    code: Mapped[str] = mapped_column(String(4), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    priority: Mapped[int] = mapped_column(SmallInteger)  # 1 urgent … 4 low
    sla_hours: Mapped[int] = mapped_column(Integer)  # working hours per level
    public: Mapped[bool] = mapped_column(Boolean)
    photo_required: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{4}$'", name="code_digits"),
        CheckConstraint("priority BETWEEN 1 AND 4", name="priority"),
        CheckConstraint("sla_hours > 0", name="sla_positive"),
    )


class CalendarDay(Base):
    """An exception to "Monday–Friday work": a holiday on a weekday, or a 调休 weekend workday."""

    __tablename__ = "calendar_days"

    county_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(50))
    source: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (CheckConstraint("kind IN ('holiday', 'workday')", name="kind"),)


class Issue(Base):
    __tablename__ = "issues"
    __scope__ = scoped_by(
        __tablename__, "issue", village="village_id", grid="grid_id", audit=("issue",)
    )

    id: Mapped[int] = id_column()
    client_uuid: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    # sha256 of the reported content: the same UUID with other content is a conflict.
    content_hash: Mapped[str] = mapped_column(String(64))
    county_code: Mapped[str] = mapped_column(String(6))
    village_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("admin_units.id"))
    # NULL (flag outside_grid) when the point lies in no grid of its village.
    grid_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grids.id"))
    category_code: Mapped[str] = mapped_column(String(4), ForeignKey("issue_categories.code"))
    priority: Mapped[int] = mapped_column(SmallInteger)
    description: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(200))
    geom = geometry("POINT")
    geom_3857 = mercator("POINT")
    photo_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), server_default="{}"
    )
    reporter_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    household_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("households.id"))
    # Earlier open issues of the same category nearby: linked for the handler, never merged.
    duplicate_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default="{}")
    flags: Mapped[list[str]] = mapped_column(ARRAY(String(30)), server_default="{}")

    state: Mapped[str] = mapped_column(String(20), server_default="REPORTED")
    level: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    # The unit handling it at levels 2–4 (village, township, county); NULL at grid level.
    unit_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("admin_units.id"))
    handler_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    resolved_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    resolved_level: Mapped[int | None] = mapped_column(SmallInteger)

    sla_hours: Mapped[int] = mapped_column(Integer)
    sla_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    escalate_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    hold_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    on_time: Mapped[bool | None] = mapped_column(Boolean)  # resolved before due_at
    extended: Mapped[bool] = mapped_column(Boolean, server_default="false")
    rework_count: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    escalation_count: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    close_reason: Mapped[str | None] = mapped_column(String(200))

    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("level BETWEEN 1 AND 4", name="level"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating"),
        CheckConstraint("priority BETWEEN 1 AND 4", name="priority"),
        Index("uq_issues_client_uuid", "client_uuid", unique=True),
        Index("ix_issues_village_id_state", "village_id", "state"),
        Index("ix_issues_grid_id", "grid_id"),
        Index("ix_issues_county_code_created_at", "county_code", "created_at"),
        Index("ix_issues_geom", "geom", postgresql_using="gist"),
        Index("ix_issues_geom_3857", "geom_3857", postgresql_using="gist"),
        # The escalation job's scan: open issues by their escalation time.
        Index(
            "ix_issues_escalate_at_open",
            "escalate_at",
            postgresql_where=text(
                "state IN ('REPORTED', 'ACCEPTED', 'ASSIGNED', 'IN_PROGRESS', 'RETURNED', 'REWORK')"
            ),
        ),
    )


class IssueEvent(Base):
    """One timeline entry per transition; the table refuses UPDATE and DELETE (a trigger)."""

    __tablename__ = "issue_events"

    id: Mapped[int] = id_column()
    issue_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("issues.id"))
    at: Mapped[datetime] = created_at_column()
    user_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))  # NULL: system
    action: Mapped[str] = mapped_column(String(20))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    from_level: Mapped[int | None] = mapped_column(SmallInteger)
    to_level: Mapped[int] = mapped_column(SmallInteger)
    note: Mapped[str | None] = mapped_column(String(500))
    photo_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), server_default="{}"
    )

    __table_args__ = (Index("ix_issue_events_issue_id_id", "issue_id", "id"),)
