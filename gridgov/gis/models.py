"""The data version of each map layer, for tile ETags and the tile cache.

Triggers on the tables the layers read append one row per write statement (migration 0005);
a layer's version is the newest id and the number of rows of its tables. Append-only, so
concurrent writers never wait on each other, and transactional, so a version is seen only
together with its data. Old rows may be pruned (say, older than a day), never recent ones.

Also the tiles' work done in advance (grid_tile_geoms, household_clusters), derived data
written only by triggers.
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    func,
)
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


class GridTileGeom(Base):
    """A current grid's geometry prepared for the tiles of one zoom below the grids layer's
    ``TileGeoms.below`` (kept by the triggers of migration 0013 on every write of grids).

    ``geom``: EPSG:3857, simplified by one MVT unit of the zoom with preserveCollapsed — what
    the tile query used to compute per request. ``tile_geom``: that geometry as ST_AsMVTGeom
    makes it (snapped to the pixel grid, validated), in the zoom's whole-world pixel grid
    (4096 per tile, y down, SRID 0; NULL if it collapses): inside a tile it only needs moving
    by the tile's origin."""

    __tablename__ = "grid_tile_geoms"

    zoom: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    grid_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    geom = mapped_column(Geometry("GEOMETRY", srid=3857, spatial_index=False), nullable=False)
    tile_geom = mapped_column(Geometry("GEOMETRY", spatial_index=False), nullable=True)


class HouseholdCluster(Base):
    """The cluster pyramid of households (kept by the triggers of migration 0014): per level
    (the tile grid of zoom z + 4, for every zoom below the households layer's cluster zoom),
    cell, village and grid (``NO_GRID`` 0: none), the number of visible households and the
    sums of their EPSG:3857 offsets from the cell's north-west corner (x east, y south). A
    cluster tile sums these per cell instead of grouping every point.

    Offsets rather than coordinates: sums of values of a cell's size keep their precision
    through years of additions and subtractions, sums of ~10⁷ m coordinates would not. A
    count of 0 (every household moved away) keeps its row with zero sums."""

    __tablename__ = "household_clusters"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    cx: Mapped[int] = mapped_column(Integer, primary_key=True)
    cy: Mapped[int] = mapped_column(Integer, primary_key=True)
    village_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    sx: Mapped[float] = mapped_column(Float)
    sy: Mapped[float] = mapped_column(Float)
