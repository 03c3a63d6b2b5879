"""SQL of the sync pull: the change page, then the current state of what changed."""

from __future__ import annotations

# The horizon: the oldest transaction of *this* database that was still running when the
# statement's snapshot was taken (or, with none, the snapshot's xmax). Every change below it is
# final and visible now, and no later change can sort before it, so a cursor never passes a
# running writer. pg_snapshot_xmin alone would do, but it is cluster-wide: a long transaction
# in another database on the same server (a benchmark, a report) would stall every phone.
# Only xids positively known to belong to other databases are discounted — one that committed
# meanwhile, or is not visible in pg_stat_activity, still counts (safe: only later, never lost).
HORIZON_CTE = """
snap AS (SELECT pg_current_snapshot() AS s),
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
"""

HORIZON_SQL = "WITH " + HORIZON_CTE + "SELECT xid FROM horizon"

CHANGES_SQL = (
    "WITH "
    + HORIZON_CTE
    + """SELECT horizon.xid AS horizon, c.xid, c.seq, c.entity, c.entity_id
FROM horizon LEFT JOIN LATERAL (
    SELECT c.xid, c.seq, c.entity, c.entity_id
    FROM sync_changes c
    WHERE {where}
      AND (c.xid, c.seq) > (:c_xid, :c_seq)
      AND c.xid < horizon.xid
    ORDER BY c.xid, c.seq
    LIMIT :limit_plus
) AS c ON true
ORDER BY c.xid, c.seq
"""
)

# A first pull is a snapshot of the scope, not a replay of the log (which holds every past
# change of an entity, and tombstones of what the phone never had): the ids of what is there
# now, one kind after another, keyset by id; the rows then come from the *_SQL reads below.
SNAPSHOT_KINDS = ("grid", "household", "contact", "visit")
SNAPSHOT_IDS_SQL = {
    "grid": "SELECT g.id FROM grids g WHERE g.valid_to IS NULL AND {where}"
    " AND g.id > :after ORDER BY g.id LIMIT :limit",
    "household": "SELECT h.id FROM households h WHERE h.removed_at IS NULL AND {where}"
    " AND h.id > :after ORDER BY h.id LIMIT :limit",
    "contact": "SELECT c.id FROM contacts c JOIN households h ON h.id = c.household_id"
    " WHERE c.valid_to IS NULL AND h.removed_at IS NULL AND {where}"
    " AND c.id > :after ORDER BY c.id LIMIT :limit",
    "visit": "SELECT v.id FROM visits v WHERE {where} AND v.id > :after ORDER BY v.id LIMIT :limit",
}
# The scope rule (``Scope.sql`` kind, alias) each snapshot read filters by — the same as the
# reads of current state.
SNAPSHOT_SCOPE = {
    "grid": ("grid", "g"),
    "household": ("household", "h"),
    "contact": ("household", "h"),
    "visit": ("visit", "v"),
}

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

# Pruning the change log (``gridgov jobs run``). A change is superseded when the same entity is
# logged again later in the same place (village, grid): a pull reads current state, so the
# later row tells a phone everything the earlier one would have — deleting the earlier one is
# invisible to every cursor, however old.
PRUNE_SUPERSEDED_SQL = """
DELETE FROM sync_changes c
USING (
    SELECT seq FROM (
        SELECT seq, row_number() OVER (
            PARTITION BY entity, entity_id, village_id, grid_id ORDER BY xid DESC, seq DESC
        ) AS newer
        FROM sync_changes
    ) AS ranked
    WHERE newer > 1
) AS old
WHERE c.seq = old.seq
"""

# A remaining change whose entity is no longer there (deleted, retired, ended, moved away) is a
# tombstone; past the retention it goes, and the horizon moves past it: a cursor from before
# the horizon might have missed it, so its pull answers ``reset``. Changes of live entities
# stay (a cursor from before them still needs them).
PRUNE_TOMBSTONES_SQL = """
WITH gone AS (
    DELETE FROM sync_changes c
    WHERE c.logged_at < now() - make_interval(days => :days)
      AND NOT CASE c.entity
        WHEN 'grid' THEN EXISTS (
            SELECT 1 FROM grids g
            WHERE g.id = c.entity_id AND g.valid_to IS NULL AND g.village_id = c.village_id)
        WHEN 'household' THEN EXISTS (
            SELECT 1 FROM households h
            WHERE h.id = c.entity_id AND h.removed_at IS NULL AND h.village_id = c.village_id
              AND h.grid_id IS NOT DISTINCT FROM c.grid_id)
        WHEN 'contact' THEN EXISTS (
            SELECT 1 FROM contacts ct JOIN households h ON h.id = ct.household_id
            WHERE ct.id = c.entity_id AND ct.valid_to IS NULL AND ct.village_id = c.village_id
              AND h.grid_id IS NOT DISTINCT FROM c.grid_id)
        WHEN 'visit' THEN EXISTS (
            SELECT 1 FROM visits v
            WHERE v.id = c.entity_id AND v.village_id = c.village_id
              AND v.grid_id IS NOT DISTINCT FROM c.grid_id)
        ELSE false
      END
    RETURNING c.xid, c.seq
),
newest AS (SELECT xid, seq FROM gone ORDER BY xid DESC, seq DESC LIMIT 1),
moved AS (
    UPDATE sync_horizon h SET xid = newest.xid, seq = newest.seq, pruned_at = now()
    FROM newest
    WHERE h.id = 1 AND (newest.xid, newest.seq) > (h.xid, h.seq)
)
SELECT count(*) AS tombstones FROM gone
"""
