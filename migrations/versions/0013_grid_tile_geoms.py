"""grid geometries prepared per zoom for the grids layer's tiles (grid_tile_geoms), kept current
by statement-level triggers on grids

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 17:00:00

For each current grid and each zoom 0–12 (the grids layer's tiles below z13): its EPSG:3857
geometry simplified by one MVT unit of that zoom with preserveCollapsed (what the tile query
computed per request), and that geometry as ST_AsMVTGeom puts it into a tile — snapped to the
pixel grid, straight-line points dropped, validated — but in the zoom's whole-world pixel grid
(4096 per tile, y down, SRID 0), so that a grid lying inside a tile and its buffer needs only a
translation by the tile's origin at request time. Whole-world ST_AsMVTGeom with an extent of
4096·2^z scales exactly as a tile's does (both by 4096·2^z / world width), so only the rounding
of coordinates at exactly half a pixel could differ.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Half the Web-Mercator world width in metres (gridgov.geo.tiles.ORIGIN_SHIFT), as float8.
H = "20037508.342789244::float8"
# Zooms prepared: the grids layer's tiles below z13 (gridgov.gis.layers.GRIDS.tile_geoms).
ZOOMS = (0, 12)

# Rows for the grids of {grids} (id, geom_3857), every zoom. The tolerance is one MVT unit:
# the world width / 2^z / 4096, as the tile query computes it from the tile's bounds.
ROWS = f"""
INSERT INTO grid_tile_geoms (zoom, grid_id, geom, tile_geom)
SELECT z.zoom, g.id, s.geom,
       ST_SetSRID(ST_AsMVTGeom(s.geom, ST_MakeEnvelope(-{H}, -{H}, {H}, {H}, 3857),
                               4096 << z.zoom, 0, false), 0)
FROM ({{grids}}) g
CROSS JOIN generate_series({ZOOMS[0]}, {ZOOMS[1]}) AS z(zoom)
CROSS JOIN LATERAL (
    SELECT ST_Simplify(g.geom_3857, 2 * {H} / (1 << z.zoom) / 4096, true) AS geom
) s
{{conflict}}
"""
# By (zoom, grid_id), the primary key's order (a tile reads one zoom).
DELETED = f"""
DELETE FROM grid_tile_geoms s
USING {{grids}} g, generate_series({ZOOMS[0]}, {ZOOMS[1]}) AS z(zoom)
WHERE s.zoom = z.zoom AND s.grid_id = g.id
"""

FUNCTION = f"""
CREATE FUNCTION gis_grid_tile_geoms() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE grid_tile_geoms;
    ELSIF TG_OP = 'DELETE' THEN
        {DELETED.format(grids="old_rows")};
    ELSIF TG_OP = 'INSERT' THEN
        {
    ROWS.format(grids="SELECT id, geom_3857 FROM new_rows WHERE valid_to IS NULL", conflict="")
};
    ELSE
        -- Only grids whose boundary changed or that became current or were retired (a
        -- statement setting every grid's chief touches nothing here).
        WITH changed AS MATERIALIZED (
            SELECT n.id, n.geom_3857, n.valid_to
            FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE o.geom IS DISTINCT FROM n.geom OR (o.valid_to IS NULL) <> (n.valid_to IS NULL)
        ), retired AS (
            {DELETED.format(grids="(SELECT id FROM changed WHERE valid_to IS NOT NULL)")}
        )
        {
    ROWS.format(
        grids="SELECT id, geom_3857 FROM changed WHERE valid_to IS NULL",
        conflict="ON CONFLICT (zoom, grid_id) DO UPDATE"
        " SET geom = excluded.geom, tile_geom = excluded.tile_geom",
    )
};
    END IF;
    RETURN NULL;
END $$
"""

EVENTS = (
    ("insert", "INSERT", "REFERENCING NEW TABLE AS new_rows"),
    ("update", "UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("delete", "DELETE", "REFERENCING OLD TABLE AS old_rows"),
    ("truncate", "TRUNCATE", ""),
)


def upgrade() -> None:
    op.create_table(
        "grid_tile_geoms",
        sa.Column("zoom", sa.SmallInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="GEOMETRY",
                srid=3857,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=False,
        ),
        sa.Column(
            "tile_geom",
            Geometry(
                geometry_type="GEOMETRY",
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("zoom", "grid_id", name=op.f("pk_grid_tile_geoms")),
    )
    op.execute(FUNCTION)
    for suffix, event, referencing in EVENTS:
        op.execute(
            f"CREATE TRIGGER gis_grid_tile_geoms_{suffix} AFTER {event} ON grids {referencing}"
            " FOR EACH STATEMENT EXECUTE FUNCTION gis_grid_tile_geoms()"
        )
    # The grids there are already.
    op.execute(
        ROWS.format(grids="SELECT id, geom_3857 FROM grids WHERE valid_to IS NULL", conflict="")
    )


def downgrade() -> None:
    for suffix, _event, _referencing in EVENTS:
        op.execute(f"DROP TRIGGER gis_grid_tile_geoms_{suffix} ON grids")
    op.execute("DROP FUNCTION gis_grid_tile_geoms()")
    op.drop_table("grid_tile_geoms")
