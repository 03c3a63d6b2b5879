"""The change log the phones pull from (DESIGN §5).

Every insert, update and delete of grids, households, contacts and visits appends one row per
scope it touches (statement-level triggers, see migration 0005): a household that moves from
grid A to grid B is logged under both, so the phone of A learns that it left. A row says only
*what* changed; a pull reads the entity's current state, or answers a tombstone when it is gone
or out of the caller's scope.

``xid`` is the writing transaction's id (``pg_current_xact_id()``, xid8 as bigint). A pull only
hands out rows whose transaction is older than the oldest one still running
(``pg_snapshot_xmin``), in (xid, seq) order: a transaction that began before a pull and commits
after it can therefore never fall behind a cursor already given out.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.columns import created_at_column, id_column
from gridgov.db import Base
from gridgov.scoping import scoped_by

ENTITIES = ("grid", "household", "contact", "visit")


class SyncChange(Base):
    __tablename__ = "sync_changes"
    __scope__ = scoped_by(
        __tablename__, "sync_change", village="village_id", grid="grid_id", key="seq"
    )

    seq: Mapped[int] = id_column()
    xid: Mapped[int] = mapped_column(
        BigInteger, server_default=text("(pg_current_xact_id()::text)::bigint")
    )
    entity: Mapped[str] = mapped_column(String(10))
    entity_id: Mapped[int] = mapped_column(BigInteger)
    county_code: Mapped[str] = mapped_column(String(6))
    village_id: Mapped[int] = mapped_column(BigInteger)
    grid_id: Mapped[int | None] = mapped_column(BigInteger)
    logged_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        Index("ix_sync_changes_xid_seq", "xid", "seq"),
        Index("ix_sync_changes_village_id_xid", "village_id", "xid"),
        Index("ix_sync_changes_grid_id_xid", "grid_id", "xid"),
    )


class SyncHorizon(Base):
    """One row: (xid, seq) of the newest tombstone pruned from ``sync_changes``. A cursor
    before it might have missed that tombstone: its pull answers ``reset`` and the phone
    downloads its scope afresh."""

    __tablename__ = "sync_horizon"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    xid: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    pruned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)
