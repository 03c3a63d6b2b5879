"""Column helpers shared by the domain models."""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, Computed, Date, DateTime, Identity, func
from sqlalchemy.orm import Mapped, mapped_column


def id_column() -> Mapped[int]:
    return mapped_column(BigInteger, Identity(always=False), primary_key=True)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def updated_at_column() -> Mapped[datetime]:
    return mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


def valid_from_column() -> Mapped[date]:
    return mapped_column(Date, server_default=func.current_date(), nullable=False)


def geometry(kind: str, *, nullable: bool = False) -> Mapped:
    # spatial_index=False: GiST indexes are declared explicitly in __table_args__ so that
    # Alembic autogenerate sees exactly what the migrations create.
    return mapped_column(Geometry(kind, srid=4326, spatial_index=False), nullable=nullable)


def mercator(kind: str) -> Mapped:
    """A stored EPSG:3857 copy of ``geom``, kept by PostgreSQL itself, for vector tiles."""
    return mapped_column(
        Geometry(kind, srid=3857, spatial_index=False),
        Computed("ST_Transform(geom, 3857)", persisted=True),
        nullable=True,
    )
