"""户: a household, located by a point; its grid is derived from that point."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.columns import created_at_column, geometry, id_column, mercator, updated_at_column
from gridgov.db import Base
from gridgov.scoping import scoped_by


class Household(Base):
    __tablename__ = "households"
    __scope__ = scoped_by(
        __tablename__,
        "household",
        village="village_id",
        grid="grid_id",
        audit=("household", "household_file"),
    )

    id: Mapped[int] = id_column()
    county_code: Mapped[str] = mapped_column(String(6))
    village_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("admin_units.id"))
    # NULL with the flag "outside_grid" when the point lies in no grid of its village.
    grid_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grids.id"))
    external_id: Mapped[str | None] = mapped_column(String(64))
    head_name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(String(20))
    id_number: Mapped[str | None] = mapped_column(String(18))
    address: Mapped[str | None] = mapped_column(String(200))
    hamlet: Mapped[str | None] = mapped_column(String(50))
    size: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(20)), server_default="{}")
    flags: Mapped[list[str]] = mapped_column(ARRAY(String(30)), server_default="{}")
    geom = geometry("POINT")
    geom_3857 = mercator("POINT")
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    removed_reason: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_households_village_id", "village_id"),
        Index("ix_households_grid_id", "grid_id"),
        Index("ix_households_county_code", "county_code"),
        Index("ix_households_tags", "tags", postgresql_using="gin"),
        Index("ix_households_geom", "geom", postgresql_using="gist"),
        Index("ix_households_geom_3857", "geom_3857", postgresql_using="gist"),
        Index(
            "uq_households_county_external_id",
            "county_code",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
        ),
    )
