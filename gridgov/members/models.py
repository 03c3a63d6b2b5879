"""党员: a Party member of a village organization, who may contact households."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.columns import created_at_column, geometry, id_column, updated_at_column
from gridgov.db import Base
from gridgov.scoping import scoped_by


class PartyMember(Base):
    __tablename__ = "party_members"
    __scope__ = scoped_by(
        __tablename__, "member", village="village_id", grid="grid_id", audit=("party_member",)
    )

    id: Mapped[int] = id_column()
    county_code: Mapped[str] = mapped_column(String(6))
    party_org_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("party_orgs.id"))
    village_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("admin_units.id"))
    grid_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("grids.id"))
    name: Mapped[str] = mapped_column(String(50))
    gender: Mapped[str | None] = mapped_column(String(1))
    phone: Mapped[str | None] = mapped_column(String(20))
    id_number: Mapped[str | None] = mapped_column(String(18))
    status: Mapped[str] = mapped_column(String(15), server_default="full")
    flowing: Mapped[bool] = mapped_column(Boolean, server_default="false")
    is_hub: Mapped[bool] = mapped_column(Boolean, server_default="false")  # 党员中心户
    capacity: Mapped[int | None] = mapped_column(SmallInteger)
    joined_year: Mapped[int | None] = mapped_column(SmallInteger)
    geom = geometry("POINT", nullable=True)
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    left_reason: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("status IN ('full', 'probationary')", name="status"),
        CheckConstraint("gender IN ('M', 'F')", name="gender"),
        Index("ix_party_members_village_id", "village_id"),
        Index("ix_party_members_grid_id", "grid_id"),
        Index("ix_party_members_party_org_id", "party_org_id"),
        Index("ix_party_members_county_code", "county_code"),
        Index("ix_party_members_geom", "geom", postgresql_using="gist"),
    )
