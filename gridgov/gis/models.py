"""The data version of each map layer, for tile ETags and the tile cache.

Triggers on the tables the layers read append one row per write statement (migration 0005);
a layer's version is the newest id and the number of rows of its tables. Append-only, so
concurrent writers never wait on each other, and transactional, so a version is seen only
together with its data. Old rows may be pruned (say, older than a day), never recent ones.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.db import Base

# Tables whose writes are noted (the union of every layer's ``tables``).
NOTED_TABLES = ("admin_units", "grids", "households", "contacts")


class LayerChange(Base):
    __tablename__ = "layer_changes"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(63))
    changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )

    __table_args__ = (Index("ix_layer_changes_table_name_id", "table_name", "id"),)
