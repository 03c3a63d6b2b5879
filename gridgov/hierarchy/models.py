"""Admin units (county → township → village), their Party organizations, and grids."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.columns import (
    created_at_column,
    geometry,
    id_column,
    mercator,
    updated_at_column,
    valid_from_column,
)
from gridgov.db import Base
from gridgov.scoping import scoped_by

LEVEL_CODE_LENGTH = {"county": 6, "township": 9, "village": 12}
LEVEL_PARENT = {"county": None, "township": "county", "village": "township"}


class AdminUnit(Base):
    __tablename__ = "admin_units"
    __scope__ = scoped_by(__tablename__, "unit", unit="id", audit=("admin_unit",), audit_key="code")

    id: Mapped[int] = id_column()
    code: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10))
    parent_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("admin_units.id", ondelete="RESTRICT")
    )
    county_code: Mapped[str] = mapped_column(String(6))
    geom = geometry("MULTIPOLYGON", nullable=True)
    geom_3857 = mercator("MULTIPOLYGON")
    valid_from: Mapped[date] = valid_from_column()
    valid_to: Mapped[date | None] = mapped_column(Date)
    # The edition (year) of the official 统计用区划代码 list that last confirmed this code;
    # NULL for a code no imported list holds.
    code_edition: Mapped[str | None] = mapped_column(String(10))
    # A retired unit merged (撤并) into another: the unit that carries on.
    successor_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("admin_units.id", ondelete="RESTRICT")
    )
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("level IN ('county', 'township', 'village')", name="level"),
        CheckConstraint(
            "code ~ '^[0-9]+$' AND length(code) = CASE level WHEN 'county' THEN 6 "
            "WHEN 'township' THEN 9 ELSE 12 END",
            name="code_format",
        ),
        CheckConstraint("left(code, 6) = county_code", name="county_prefix"),
        CheckConstraint("(level = 'county') = (parent_id IS NULL)", name="parent_by_level"),
        # Codes are reused over the years (villages merge): unique only among current units.
        Index(
            "uq_admin_units_current_code",
            "code",
            unique=True,
            postgresql_where=text("valid_to IS NULL"),
        ),
        Index("ix_admin_units_parent_id", "parent_id"),
        Index("ix_admin_units_county_code_level", "county_code", "level"),
        Index("ix_admin_units_geom", "geom", postgresql_using="gist"),
        Index("ix_admin_units_geom_3857", "geom_3857", postgresql_using="gist"),
    )


class DivisionCode(Base):
    """One entry of an official 统计用区划代码 list (国家统计局), as imported for a county.

    Kept per edition so that a newer list can be compared with the older one and with the
    units on record: codes that appeared, disappeared (撤并) or were renamed.
    """

    __tablename__ = "division_codes"

    edition: Mapped[str] = mapped_column(String(10), primary_key=True)
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10))
    county_code: Mapped[str] = mapped_column(String(6))
    # 城乡分类代码 (111 主城区 … 220 村庄), as published; optional.
    urban_rural_code: Mapped[str | None] = mapped_column(String(3))
    imported_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint("level IN ('county', 'township', 'village')", name="level"),
        CheckConstraint("left(code, 6) = county_code", name="county_prefix"),
        Index("ix_division_codes_county_code_edition", "county_code", "edition"),
    )


class PartyOrg(Base):
    """A village's (or township's) Party organization: 党委 / 党总支 / 党支部."""

    __tablename__ = "party_orgs"
    __scope__ = scoped_by(__tablename__, "party_org", unit="unit_id", audit=("party_org",))

    id: Mapped[int] = id_column()
    unit_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("admin_units.id"))
    parent_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("party_orgs.id"))
    county_code: Mapped[str] = mapped_column(String(6))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    secretary_name: Mapped[str | None] = mapped_column(String(50))
    secretary_phone: Mapped[str | None] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("kind IN ('committee', 'general_branch', 'branch')", name="kind"),
        Index("ix_party_orgs_unit_id", "unit_id"),
        Index("ix_party_orgs_county_code", "county_code"),
    )


class Grid(Base):
    """网格: code = village code + 3-digit serial (001–899 general, 900–999 dedicated)."""

    __tablename__ = "grids"
    __scope__ = scoped_by(__tablename__, "grid", village="village_id", grid="id", audit=("grid",))

    id: Mapped[int] = id_column()
    code: Mapped[str] = mapped_column(String(15))
    name: Mapped[str] = mapped_column(String(100))
    village_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("admin_units.id"))
    county_code: Mapped[str] = mapped_column(String(6))
    kind: Mapped[str] = mapped_column(String(10))
    chief_member_id: Mapped[int | None] = mapped_column(
        BigInteger,
        ForeignKey("party_members.id", ondelete="SET NULL", use_alter=True),
    )
    geom = geometry("MULTIPOLYGON")
    geom_3857 = mercator("MULTIPOLYGON")
    valid_from: Mapped[date] = valid_from_column()
    valid_to: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{15}$'", name="code_format"),
        CheckConstraint("left(code, 6) = county_code", name="county_prefix"),
        CheckConstraint(
            "kind = CASE WHEN substr(code, 13, 3)::int >= 900 THEN 'dedicated' ELSE 'general' END"
            " AND substr(code, 13, 3) <> '000'",
            name="kind_by_serial",
        ),
        Index(
            "uq_grids_current_code", "code", unique=True, postgresql_where=text("valid_to IS NULL")
        ),
        Index("ix_grids_village_id", "village_id"),
        Index("ix_grids_county_code", "county_code"),
        Index("ix_grids_geom", "geom", postgresql_using="gist"),
        Index("ix_grids_geom_3857", "geom_3857", postgresql_using="gist"),
    )
