"""SQL of the visit reads and of the server-side verification checks (DESIGN §6)."""

from __future__ import annotations

from datetime import datetime
from typing import Unpack

from sqlalchemy.orm import Session

from gridgov import listing as kit
from gridgov.auth.scope import Scope
from gridgov.listing import PageResult
from gridgov.visits.schemas import VisitRead
from gridgov.wire import json_object, select_list

# A visit as a row whose keys are VisitRead's (its location as ``geometry``).
VISIT_COLUMNS = select_list(VisitRead)

# The batch's new visits, of live households in the caller's scope ({scope}: the scope filter
# on ``h``); county, village and grid come from the household. A UUID already stored (a retry)
# or stored meanwhile by a concurrent upload is skipped here and sorted out by the caller.
# Inserted in client_uuid order: two uploads sharing UUIDs (a retry racing the original, in
# any order) take the unique index's entries in the same order, so one waits for the other
# instead of each holding what the other needs (a deadlock).
INSERT_SQL = """
INSERT INTO visits (
    client_uuid, content_hash, county_code, village_id, grid_id, household_id, member_id,
    user_id, visited_at, geom, accuracy_m, method, notes, needs, attachment_ids
)
SELECT r.u, r.c, h.county_code, h.village_id, h.grid_id, h.id, :member_id, :user_id, r.t,
       ST_SetSRID(ST_MakePoint(r.x, r.y), 4326), r.a, r.m, r.n,
       COALESCE(r.d, ARRAY[]::varchar[]), COALESCE(r.p, ARRAY[]::uuid[])
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
    u uuid, c varchar, h bigint, t timestamptz, x float8, y float8, a float8, m varchar,
    n varchar, d varchar[], p uuid[]
)
JOIN households h ON h.id = r.h AND h.removed_at IS NULL AND {scope}
ORDER BY r.u
ON CONFLICT (client_uuid) DO NOTHING
RETURNING client_uuid::text, id
"""

# One visit as ``VisitRead`` JSON, built where the row is (text, spliced into the response).
VISIT_JSON = f"{json_object(VisitRead)}::text"

# The checks that need only the visit, its household, its neighbours in time and the contacts
# table. Each CASE yields a flag or NULL; array_remove drops the NULLs. Speeds and distances
# give the phone the benefit of its reported accuracy (capped, so a useless fix cannot excuse
# everything — it is flagged as poor_accuracy instead).
# MATERIALIZED: the UPDATE reads the flags more than once, and an inlined CTE would evaluate
# every check each time. The repeated ``v.id = ANY(:ids)`` lets the UPDATE find its rows by
# primary key instead of joining the whole visits table.
FLAGS_SQL = """
WITH computed AS MATERIALIZED (
    SELECT n.id, array_remove(ARRAY[
        CASE WHEN n.geom IS NOT NULL
              AND ST_Distance(n.geom::geography, h.geom::geography)
                  > :distance_m + LEAST(COALESCE(n.accuracy_m, 0), :accuracy_max_m)
             THEN 'far_from_household' END,
        CASE WHEN n.geom IS NOT NULL
              AND (n.accuracy_m IS NULL OR n.accuracy_m > :accuracy_max_m)
             THEN 'poor_accuracy' END,
        CASE WHEN n.geom IS NULL AND n.method = 'door' THEN 'no_location' END,
        CASE WHEN n.visited_at > n.received_at + make_interval(mins => :future_minutes)
             THEN 'future_visited_at' END,
        CASE WHEN n.visited_at < n.received_at - make_interval(days => :delay_days)
             THEN 'late_upload' END,
        CASE WHEN n.geom IS NOT NULL AND EXISTS (
                SELECT 1 FROM (
                    (SELECT p.geom, p.accuracy_m, p.visited_at FROM visits p
                     WHERE p.user_id = n.user_id AND p.id <> n.id AND p.geom IS NOT NULL
                       AND p.visited_at <= n.visited_at
                     ORDER BY p.visited_at DESC LIMIT 1)
                    UNION ALL
                    (SELECT p.geom, p.accuracy_m, p.visited_at FROM visits p
                     WHERE p.user_id = n.user_id AND p.id <> n.id AND p.geom IS NOT NULL
                       AND p.visited_at >= n.visited_at
                     ORDER BY p.visited_at ASC LIMIT 1)
                ) AS q
                WHERE GREATEST(
                          ST_Distance(n.geom::geography, q.geom::geography)
                          - LEAST(COALESCE(n.accuracy_m, 0), :accuracy_max_m)
                          - LEAST(COALESCE(q.accuracy_m, 0), :accuracy_max_m),
                          0)
                      / GREATEST(abs(extract(epoch FROM n.visited_at - q.visited_at)), 1)
                      * 3.6 > :max_speed_kmh)
             THEN 'impossible_speed' END,
        CASE WHEN EXISTS (
                -- some burst_minutes window holding this visit holds burst_count of theirs:
                -- try each window that starts at one of their visits shortly before this one
                SELECT 1 FROM visits s
                WHERE s.user_id = n.user_id
                  AND s.visited_at BETWEEN n.visited_at - make_interval(mins => :burst_minutes)
                                       AND n.visited_at
                  AND (SELECT count(*) FROM visits b
                       WHERE b.user_id = n.user_id
                         AND b.visited_at BETWEEN s.visited_at
                             AND s.visited_at + make_interval(mins => :burst_minutes)
                      ) >= :burst_count)
             THEN 'burst' END,
        CASE WHEN n.member_id IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM contacts c
                WHERE c.member_id = n.member_id AND c.household_id = n.household_id
                  AND c.valid_from <= (n.visited_at AT TIME ZONE 'Asia/Shanghai')::date
                  AND (c.valid_to IS NULL
                       OR c.valid_to > (n.visited_at AT TIME ZONE 'Asia/Shanghai')::date))
             THEN 'not_assigned' END
    ]::varchar[], NULL) AS flags
    FROM visits n JOIN households h ON h.id = n.household_id
    WHERE n.id = ANY(CAST(:ids AS bigint[]))
)
UPDATE visits v
SET flags = c.flags, review_status = c.review_status
FROM (
    SELECT id, flags,
           CASE WHEN cardinality(flags) > 0 THEN 'pending' ELSE 'clean' END AS review_status
    FROM computed
) AS c
WHERE v.id = c.id AND v.id = ANY(CAST(:ids AS bigint[]))
  -- a clean new visit already holds these values (column defaults): no second row version
  AND (v.flags, v.review_status) IS DISTINCT FROM (c.flags, c.review_status)
"""

# The same photo (by content) on two different visits flags every visit that carries it. Run
# when a visit arrives and when a photo arrives, since either may come first.
PHOTO_REUSE_SQL = """
WITH shared AS (
    SELECT a.sha256, v.id AS visit_id
    FROM attachments a JOIN visits v ON v.attachment_ids @> ARRAY[a.id]
    WHERE a.sha256 = ANY(:hashes)
),
reused AS (
    SELECT s.visit_id FROM shared s
    WHERE EXISTS (
        SELECT 1 FROM shared t WHERE t.sha256 = s.sha256 AND t.visit_id <> s.visit_id
    )
),
-- rows locked in id order first: two of these at once (or one and a batch) never deadlock
locked AS (
    SELECT v.id FROM visits v
    WHERE v.id IN (SELECT visit_id FROM reused) AND NOT ('photo_reused' = ANY(v.flags))
    ORDER BY v.id
    FOR UPDATE
)
UPDATE visits v
SET flags = array_append(v.flags, 'photo_reused'),
    review_status = CASE WHEN v.review_status = 'clean' THEN 'pending' ELSE v.review_status END
WHERE v.id IN (SELECT id FROM locked) AND NOT ('photo_reused' = ANY(v.flags))
"""

# A household's interval is the shortest of its tags' (county overrides merged in by the
# caller); a visit counts once it is clean or accepted by a reviewer. A household never visited
# is due from the day it was registered.
DUE_SQL = """
SELECT h.id AS household_id, h.head_name, h.address, h.tags,
       ST_AsGeoJSON(h.geom, 7) AS geometry,
       iv.days AS interval_days, last.visited_at AS last_visited_at,
       COALESCE(last.visited_at + make_interval(days => iv.days), h.created_at) AS due_at,
       {distance} AS distance_m
FROM households h
CROSS JOIN LATERAL (
    SELECT COALESCE(
        (SELECT min((CAST(:intervals AS jsonb) ->> t)::int) FROM unnest(h.tags) AS t),
        :ordinary) AS days
) AS iv
LEFT JOIN LATERAL (
    SELECT max(v.visited_at) AS visited_at FROM visits v
    WHERE v.household_id = h.id AND v.review_status IN ('clean', 'accepted')
) AS last ON true
WHERE {where} AND h.removed_at IS NULL
  AND COALESCE(last.visited_at + make_interval(days => iv.days), h.created_at)
      <= now() + make_interval(days => :within_days)
ORDER BY due_at, h.id
LIMIT :limit
"""

# -- the visit list ---------------------------------------------------------------------------

# Newest visit first: keyset on (visited_at, id), both descending, so one row comparison walks
# the (visited_at, id) order; the cursor carries visited_at as ISO 8601 text.
VISITS = kit.Listing(
    VISIT_COLUMNS,
    "FROM visits v",
    ("visit", "v"),
    kit.Keyset(
        (kit.Key("v.visited_at", "visited_at", datetime), kit.Key("v.id", "id")), descending=True
    ),
)


class VisitQuery(kit.PageQuery):
    household_id: int | None
    member_id: int | None
    mine: bool
    review_status: str | None
    flag: str | None
    since: datetime | None
    until: datetime | None


def visits_page(session: Session, scope: Scope, **query: Unpack[VisitQuery]) -> PageResult:
    return VISITS.page(
        session,
        scope,
        query,
        kit.equal("v.household_id", "household_id", query["household_id"]),
        kit.equal("v.member_id", "member_id", query["member_id"]),
        kit.when(query["mine"], "v.user_id = :me", me=scope.user_id),
        kit.equal("v.review_status", "review_status", query["review_status"]),
        kit.has_label("v.flags", "flag", query["flag"]),
        kit.compare("v.visited_at", ">=", "since", query["since"]),
        kit.compare("v.visited_at", "<", "until", query["until"]),
    )
