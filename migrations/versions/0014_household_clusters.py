"""a cluster pyramid of households for the households layer's cluster tiles
(household_clusters), kept current by statement-level triggers on households

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 17:30:00

Per level (the tile grid of zoom z + 4 for the clustered zooms 0–13: 16 × 16 cells per tile),
cell (cx, cy counted from the world's north-west corner), village and grid (0: none): the
number of visible (not removed) households and the sums of their EPSG:3857 offsets from the
cell's north-west corner (x east, y south). Offsets rather than coordinates: their sums stay
of a cell's size, so adding and subtracting them over years of edits keeps the precision that
a centroid within a pixel needs; sums of ~10⁷ m coordinates would not.

The triggers add each statement's households with their sign (an update: only those whose
visibility, village, grid or location changed, out of the old cell and into the new), one
INSERT … ON CONFLICT per statement from the transition tables, rows in key order so that
concurrent writers lock shared rows in the same order. A cell emptied keeps its row with a
count and sums of 0. The rows of a statement are summed per finest cell first and those sums
carried up the levels (a 150,000-household import: 24,000 fine cells instead of 2.1 million
rows to group).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Half the Web-Mercator world width in metres (gridgov.geo.tiles.ORIGIN_SHIFT), as float8.
H = "20037508.342789244::float8"
# Levels zoom + 4 (gridgov.gis.queries.CLUSTER_CELLS = 16) for the zooms below the households
# layer's cluster zoom 14 (gridgov.gis.layers.HOUSEHOLDS.cluster_below).
LEVELS = (4, 17)

# Adds the signed households of {delta} (village_id, grid_id, x, y, sign) to every level: first
# summed per cell of the finest level (one pass over the rows, a few per cell), then those sums
# carried to the coarser cells that contain them. A coarse cell index is the fine one shifted
# right (the cell sizes halve exactly), and a fine cell's offset within it is its index's low
# bits times the fine cell size, so the sums are the per-household sums added in another order.
FINEST = LEVELS[1]
SIZE = f"(2 * {H} / (1 << {FINEST}))"
ROWS = f"""
WITH fine AS (
    SELECT d.village_id, d.grid_id, f.cx, f.cy, sum(d.sign)::int AS n,
           sum(d.sign * (d.x + {H} - f.cx * {SIZE})) AS sx,
           sum(d.sign * ({H} - d.y - f.cy * {SIZE})) AS sy
    FROM ({{delta}}) d
    CROSS JOIN LATERAL (
        SELECT floor((d.x + {H}) / {SIZE})::int AS cx, floor(({H} - d.y) / {SIZE})::int AS cy
    ) f
    GROUP BY d.village_id, d.grid_id, f.cx, f.cy
)
INSERT INTO household_clusters AS c (level, cx, cy, village_id, grid_id, n, sx, sy)
SELECT l.level, f.cx >> ({FINEST} - l.level), f.cy >> ({FINEST} - l.level), f.village_id,
       f.grid_id, sum(f.n)::int,
       sum(f.sx + f.n * ((f.cx & ((1 << ({FINEST} - l.level)) - 1)) * {SIZE})),
       sum(f.sy + f.n * ((f.cy & ((1 << ({FINEST} - l.level)) - 1)) * {SIZE}))
FROM fine f CROSS JOIN generate_series({LEVELS[0]}, {FINEST}) AS l(level)
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5
ON CONFLICT (level, cx, cy, village_id, grid_id) DO UPDATE
SET n = c.n + excluded.n,
    sx = CASE WHEN c.n + excluded.n = 0 THEN 0 ELSE c.sx + excluded.sx END,
    sy = CASE WHEN c.n + excluded.n = 0 THEN 0 ELSE c.sy + excluded.sy END
"""


def _visible(rows: str, sign: int) -> str:
    return (
        "SELECT village_id, coalesce(grid_id, 0) AS grid_id, ST_X(geom_3857) AS x,"
        f" ST_Y(geom_3857) AS y, {sign} AS sign FROM {rows} WHERE removed_at IS NULL"
    )


MOVED = """
SELECT e.village_id, e.grid_id, e.x, e.y, e.sign
FROM old_rows o JOIN new_rows n ON n.id = o.id
CROSS JOIN LATERAL (
    SELECT o.village_id, coalesce(o.grid_id, 0), ST_X(o.geom_3857), ST_Y(o.geom_3857), -1
    WHERE o.removed_at IS NULL
    UNION ALL
    SELECT n.village_id, coalesce(n.grid_id, 0), ST_X(n.geom_3857), ST_Y(n.geom_3857), 1
    WHERE n.removed_at IS NULL
) e (village_id, grid_id, x, y, sign)
WHERE (o.removed_at IS NULL) <> (n.removed_at IS NULL) OR o.village_id <> n.village_id
   OR o.grid_id IS DISTINCT FROM n.grid_id OR o.geom_3857 IS DISTINCT FROM n.geom_3857
"""

FUNCTION = f"""
CREATE FUNCTION gis_household_clusters() RETURNS trigger LANGUAGE plpgsql
-- An import's ~80,000 cells per 150,000 households then aggregate in memory, not in 33 spilled
-- batches (work_mem 4 MB); only while the trigger runs.
SET work_mem = '16MB' AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE household_clusters;
    ELSIF TG_OP = 'INSERT' THEN
        {ROWS.format(delta=_visible("new_rows", 1))};
    ELSIF TG_OP = 'DELETE' THEN
        {ROWS.format(delta=_visible("old_rows", -1))};
    ELSE
        {ROWS.format(delta=MOVED)};
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
        "household_clusters",
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("cx", sa.Integer(), nullable=False),
        sa.Column("cy", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("sx", sa.Float(), nullable=False),
        sa.Column("sy", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "level", "cx", "cy", "village_id", "grid_id", name=op.f("pk_household_clusters")
        ),
    )
    op.execute(FUNCTION)
    for suffix, event, referencing in EVENTS:
        op.execute(
            f"CREATE TRIGGER gis_household_clusters_{suffix} AFTER {event} ON households"
            f" {referencing} FOR EACH STATEMENT EXECUTE FUNCTION gis_household_clusters()"
        )
    # The households there are already.
    op.execute(ROWS.format(delta=_visible("households", 1)))


def downgrade() -> None:
    for suffix, _event, _referencing in EVENTS:
        op.execute(f"DROP TRIGGER gis_household_clusters_{suffix} ON households")
    op.execute("DROP FUNCTION gis_household_clusters()")
    op.drop_table("household_clusters")
