"""联系户: which Party member keeps in touch with which household, and since/until when.

Assignments are never deleted: ending one sets ``valid_to``. Dates are half-open —
``valid_from`` is the first day in charge and ``valid_to`` the first day no longer in charge — so
a hand-over on day D closes the old assignment and opens the new one on the same date without
overlap, and "who looked after H on D" has one answer.

The database, not only the code, guarantees the central rule: one active primary contact per
household (a partial unique index, which two racing requests cannot both pass), and no two
primary periods of one household that overlap in time (an exclusion constraint over date
ranges, so back-dated entries cannot contradict the history either).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.columns import created_at_column, id_column, updated_at_column, valid_from_column
from gridgov.db import Base
from gridgov.scoping import scoped_by

ROLES = ("primary", "secondary")
SOURCES = ("manual", "auto")
# Why an assignment ended (the code; a free-text note goes to ended_note).
END_REASONS = (
    "manual",
    "replaced",
    "rebalance",
    "invalid",
    "member_left",
    "member_moved",
    "member_died",
    "household_split",
    "household_moved",
    "household_removed",
)


class Contact(Base):
    __tablename__ = "contacts"
    __scope__ = scoped_by(__tablename__, "contact", village="village_id", audit=("contact",))

    id: Mapped[int] = id_column()
    county_code: Mapped[str] = mapped_column(String(6))
    # The household's village: the scope key, and the unit every coverage figure groups by.
    village_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("admin_units.id"))
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("party_members.id"))
    household_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("households.id"))
    role: Mapped[str] = mapped_column(String(10))
    valid_from: Mapped[date] = valid_from_column()
    valid_to: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(10), server_default="manual")
    batch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # one auto-assign run
    created_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    ended_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    ended_reason: Mapped[str | None] = mapped_column(String(20))
    ended_note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __table_args__ = (
        CheckConstraint("role IN ('primary', 'secondary')", name="role"),
        CheckConstraint("source IN ('manual', 'auto')", name="source"),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_range"),
        CheckConstraint(
            "ended_reason IS NULL OR ended_reason IN ("
            + ", ".join(f"'{r}'" for r in END_REASONS)
            + ")",
            name="ended_reason",
        ),
        CheckConstraint("(valid_to IS NULL) = (ended_reason IS NULL)", name="ended_with_reason"),
        # The rule of DESIGN §2: at most one active primary contact per household.
        Index(
            "uq_contacts_active_primary",
            "household_id",
            unique=True,
            postgresql_where=text("role = 'primary' AND valid_to IS NULL"),
        ),
        # A member holds a household once (as primary or secondary) at any one time; also the
        # index that counts a member's current load.
        Index(
            "uq_contacts_active_member_household",
            "member_id",
            "household_id",
            unique=True,
            postgresql_where=text("valid_to IS NULL"),
        ),
        # History: who looked after a household, and when.
        Index("ix_contacts_household_id_valid_from", "household_id", "valid_from"),
        Index("ix_contacts_member_id_valid_from", "member_id", "valid_from"),
        Index(
            "ix_contacts_village_id_active",
            "village_id",
            postgresql_where=text("valid_to IS NULL"),
        ),
        Index("ix_contacts_county_code", "county_code"),
        Index("ix_contacts_batch_id", "batch_id", postgresql_where=text("batch_id IS NOT NULL")),
        # Primary periods of one household never overlap ('[)' ranges; open end = today on).
        ExcludeConstraint(
            ("household_id", "="),
            (func.daterange(text("valid_from"), text("valid_to")), "&&"),
            name="ex_contacts_primary_overlap",
            using="gist",
            where=text("role = 'primary'"),
        ),
    )
