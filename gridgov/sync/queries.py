"""SQL of the sync pull: the change page, then the current state of what changed."""

from __future__ import annotations

# The horizon: the oldest transaction of *this* database that was still running when the
# statement's snapshot was taken (or, with none, the snapshot's xmax). Every change below it is
# final and visible now, and no later change can sort before it, so a cursor never passes a
# running writer. pg_snapshot_xmin alone would do, but it is cluster-wide: a long transaction
# in another database on the same server (a benchmark, a report) would stall every phone.
# Only xids positively known to belong to other databases are discounted — one that committed
# meanwhile, or is not visible in pg_stat_activity, still counts (safe: only later, never lost).
CHANGES_SQL = """
WITH snap AS (SELECT pg_current_snapshot() AS s),
elsewhere AS (
    SELECT backend_xid::text::bigint AS x FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()
),
horizon AS (
    SELECT COALESCE(
        (SELECT min(x::text::bigint) FROM snap, pg_snapshot_xip(snap.s) AS x
         WHERE x::text::bigint % 4294967296 NOT IN (SELECT x FROM elsewhere)),
        (SELECT pg_snapshot_xmax(s)::text::bigint FROM snap)
    ) AS xid
)
SELECT c.xid, c.seq, c.entity, c.entity_id
FROM sync_changes c, horizon
WHERE {where}
  AND (c.xid, c.seq) > (:c_xid, :c_seq)
  AND c.xid < horizon.xid
ORDER BY c.xid, c.seq
LIMIT :limit_plus
"""

GRIDS_SQL = """
SELECT g.id, g.code, g.name, g.village_id, g.kind, g.version,
       ST_AsGeoJSON(g.geom, 7) AS geometry
FROM grids g
WHERE g.id = ANY(:ids) AND g.valid_to IS NULL AND {where}
"""

HOUSEHOLDS_SQL = """
SELECT h.id, h.village_id, h.grid_id, h.head_name, h.phone, h.address, h.hamlet, h.size,
       h.tags, h.flags, h.version, ST_AsGeoJSON(h.geom, 7) AS geometry
FROM households h
WHERE h.id = ANY(:ids) AND h.removed_at IS NULL AND {where}
"""

CONTACTS_SQL = """
SELECT c.id, c.member_id, c.household_id, c.role, c.valid_from
FROM contacts c JOIN households h ON h.id = c.household_id
WHERE c.id = ANY(:ids) AND c.valid_to IS NULL AND h.removed_at IS NULL AND {where}
"""

# After a user is rebound: ids in the old scope ({old}) and not in the new one ({new}).
# COALESCE: a household in no grid is outside a grid-bound scope (the test is NULL there).
LEFT_SCOPE = [
    ("grids", "grid", "SELECT g.id FROM grids g WHERE {old} AND NOT COALESCE({new}, false)"),
    (
        "households",
        "household",
        "SELECT h.id FROM households h WHERE {old} AND NOT COALESCE({new}, false)",
    ),
    (
        "contacts",
        "household",
        "SELECT c.id FROM contacts c JOIN households h ON h.id = c.household_id "
        "WHERE c.valid_to IS NULL AND {old} AND NOT COALESCE({new}, false)",
    ),
    ("visits", "visit", "SELECT v.id FROM visits v WHERE {old} AND NOT COALESCE({new}, false)"),
]
