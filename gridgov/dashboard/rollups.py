"""Keeping the dashboard rollups current (gridgov.dashboard.models).

Triggers note every (village, day) whose visits or issues changed, and every village whose
contacts, households or members changed (``dash_dirty``). ``refresh`` takes the notes, and for
each noted village recomputes from the raw tables, set-based, the day, ISO week and month
that contain each noted day, and the village's current state. A (village, period) is always
recomputed whole, so the rows are exactly what a GROUP BY over the raw tables would give —
never a running sum that could drift. One refresher works at a time (advisory lock); a new
local day recomputes every village's state (due dates move with the calendar), and so does the
moment an open issue turns due soon or overdue (``dash_status.next_change_at``). Townships and
counties get their own total rows (``dash_unit_*``), the sums of their villages' totals, so a
county dashboard reads one row per figure.

Who runs it: every API process's background thread every ``dashboard.refresh_seconds``
(the lock makes the others skip), ``gridgov jobs run``, and the demo loader. The figures a
dashboard shows are therefore at most ``refresh_seconds`` plus one refresh behind the data.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.config import get_settings
from gridgov.contacts import queries as contact_queries
from gridgov.contacts.service import limits_for
from gridgov.db import session_scope
from gridgov.gis import queries as gis_queries
from gridgov.gis.layers import GRID_FIGURES
from gridgov.households.validation import ORDINARY_INTERVAL_DAYS
from gridgov.visits.service import intervals_for

log = logging.getLogger("gridgov.dashboard")

LOCAL = ZoneInfo("Asia/Shanghai")
LOCK_KEY = "gridgov:dashboard:refresh"
REFRESH_TIMEOUT = "15min"
PERIOD_KINDS = ("day", "week", "month")
MEMBER_KINDS = ("week", "month")
COUNTED = "v.review_status IN ('clean', 'accepted')"
# Not part of any KPI (README 事件: total excludes them).
VOID_STATES = ("REJECTED", "MERGED", "CANCELLED")
# Settled: no longer counted as open (waiting for verification or closed, or void).
SETTLED_STATES = (
    "CLOSED",
    "REJECTED",
    "MERGED",
    "CANCELLED",
    "RESOLVED",
    "SELF_RESOLVED",
    "VERIFIED",
)
SETTLED = ", ".join(f"'{s}'" for s in SETTLED_STATES)


def today() -> date:
    return datetime.now(LOCAL).date()


@dataclass
class RefreshResult:
    ran: bool = False  # False: another refresher holds the lock
    notes: int = 0
    periods: int = 0  # (village, kind, start) recomputed
    villages: int = 0  # villages whose state was recomputed
    seconds: float = 0.0
    counties: list[str] = field(default_factory=list)


# The targets of one refresh: (village, kind, start) with its local bounds as timestamps.
TARGETS_SQL = """
CREATE TEMP TABLE dash_targets ON COMMIT DROP AS
SELECT DISTINCT n.village_id, k.kind, k.start,
       (k.start::timestamp AT TIME ZONE 'Asia/Shanghai') AS lo,
       ((k.start + CASE k.kind WHEN 'day' THEN interval '1 day' WHEN 'week' THEN interval '7 days'
                 ELSE interval '1 month' END)::timestamp AT TIME ZONE 'Asia/Shanghai') AS hi
FROM dash_notes n
CROSS JOIN LATERAL (VALUES
    ('day', n.day),
    ('week', date_trunc('week', n.day)::date),
    ('month', date_trunc('month', n.day)::date)
) AS k(kind, start)
WHERE n.day > '-infinity'::date
"""

DELETE_PERIODS = """
DELETE FROM {table} r USING dash_targets t
WHERE r.village_id = t.village_id AND r.kind = t.kind AND r.start = t.start
"""

VISIT_PERIODS_SQL = f"""
INSERT INTO dash_visit_periods (village_id, grid_id, kind, start, county_code, visits, counted,
    pending, accepted, rejected, flagged, households_visited, members_visiting)
SELECT village_id, CASE WHEN GROUPING(g) = 1 THEN -1 ELSE g END, kind, start, min(county_code),
       count(*), count(*) FILTER (WHERE counted),
       count(*) FILTER (WHERE review_status = 'pending'),
       count(*) FILTER (WHERE review_status = 'accepted'),
       count(*) FILTER (WHERE review_status = 'rejected'),
       count(*) FILTER (WHERE cardinality(flags) > 0),
       count(DISTINCT household_id) FILTER (WHERE counted),
       count(DISTINCT member_id)
FROM (
    SELECT t.village_id, t.kind, t.start, COALESCE(v.grid_id, 0) AS g, v.county_code,
           v.review_status, v.flags, v.household_id, v.member_id, {COUNTED} AS counted
    FROM dash_targets t
    JOIN visits v ON v.village_id = t.village_id AND v.visited_at >= t.lo AND v.visited_at < t.hi
) x
GROUP BY GROUPING SETS ((village_id, kind, start, g), (village_id, kind, start))
"""

FLAG_PERIODS_SQL = """
INSERT INTO dash_flag_periods (village_id, grid_id, kind, start, flag, pending, accepted,
    rejected)
SELECT village_id, CASE WHEN GROUPING(g) = 1 THEN -1 ELSE g END, kind, start, flag,
       count(*) FILTER (WHERE review_status = 'pending'),
       count(*) FILTER (WHERE review_status = 'accepted'),
       count(*) FILTER (WHERE review_status = 'rejected')
FROM (
    SELECT t.village_id, t.kind, t.start, COALESCE(v.grid_id, 0) AS g, f.flag, v.review_status
    FROM dash_targets t
    JOIN visits v ON v.village_id = t.village_id AND v.visited_at >= t.lo AND v.visited_at < t.hi
    CROSS JOIN LATERAL unnest(v.flags) AS f(flag)
    WHERE cardinality(v.flags) > 0
) x
GROUP BY GROUPING SETS ((village_id, kind, start, g, flag), (village_id, kind, start, flag))
"""

ISSUE_PERIODS_SQL = """
INSERT INTO dash_issue_periods (village_id, grid_id, kind, start, category_code, level, state,
    issues, on_time, reworked, extended, in_grid, rated, rating_sum)
SELECT village_id, CASE WHEN GROUPING(g) = 1 THEN -1 ELSE g END, kind, start, category_code,
       level, state, count(*), count(*) FILTER (WHERE on_time),
       count(*) FILTER (WHERE rework_count > 0), count(*) FILTER (WHERE extended),
       count(*) FILTER (WHERE resolved_level = 1), count(rating), COALESCE(sum(rating), 0)
FROM (
    SELECT t.village_id, t.kind, t.start, COALESCE(i.grid_id, 0) AS g, i.category_code,
           i.level, i.state, i.on_time, i.rework_count, i.extended, i.resolved_level, i.rating
    FROM dash_targets t
    JOIN issues i ON i.village_id = t.village_id AND i.created_at >= t.lo
     AND i.created_at < t.hi
) x
GROUP BY GROUPING SETS ((village_id, kind, start, g, category_code, level, state),
                        (village_id, kind, start, category_code, level, state))
"""

MEMBER_PERIODS_SQL = f"""
INSERT INTO dash_member_periods (member_id, village_id, kind, start, visits_counted,
    households_visited, rejected, issues_reported, issues_closed_on_time)
SELECT member_id, village_id, kind, start, sum(vc), sum(hv), sum(rj), sum(ir), sum(ic)
FROM (
    SELECT v.member_id, t.village_id, t.kind, t.start,
           count(*) FILTER (WHERE {COUNTED}) AS vc,
           count(DISTINCT v.household_id) FILTER (WHERE {COUNTED}) AS hv,
           count(*) FILTER (WHERE v.review_status = 'rejected') AS rj, 0 AS ir, 0 AS ic
    FROM dash_targets t
    JOIN visits v ON v.village_id = t.village_id AND v.visited_at >= t.lo AND v.visited_at < t.hi
    WHERE t.kind IN ('week', 'month') AND v.member_id IS NOT NULL
    GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT u.member_id, t.village_id, t.kind, t.start, 0, 0, 0, count(*),
           count(*) FILTER (WHERE i.state = 'CLOSED' AND i.on_time)
    FROM dash_targets t
    JOIN issues i ON i.village_id = t.village_id AND i.created_at >= t.lo
     AND i.created_at < t.hi
    JOIN users u ON u.id = i.reporter_id
    WHERE t.kind IN ('week', 'month') AND u.member_id IS NOT NULL
      AND i.state NOT IN ('REJECTED', 'MERGED', 'CANCELLED')
    GROUP BY 1, 2, 3, 4
) x
GROUP BY 1, 2, 3, 4
"""

# A household's due day: its last counted visit plus its interval (the shortest of its tags),
# or the day it was registered if it was never visited (as the due list computes it).
HOUSEHOLD_DUE = f"""
SELECT h.id, h.village_id, COALESCE(h.grid_id, 0) AS g, last.visited_at IS NULL AS never,
       (COALESCE(last.visited_at + make_interval(days => iv.days), h.created_at)
        AT TIME ZONE 'Asia/Shanghai')::date AS due_day,
       EXISTS (SELECT 1 FROM contacts c WHERE c.household_id = h.id AND c.role = 'primary'
               AND c.valid_to IS NULL) AS has_primary
FROM households h
CROSS JOIN LATERAL (
    SELECT COALESCE(
        (SELECT min((CAST(:intervals AS jsonb) ->> t)::int) FROM unnest(h.tags) AS t),
        :ordinary) AS days
) AS iv
LEFT JOIN LATERAL (
    SELECT max(v.visited_at) AS visited_at FROM visits v
    WHERE v.household_id = h.id AND {COUNTED}
) AS last ON true
WHERE h.village_id = ANY(CAST(:villages AS bigint[])) AND h.removed_at IS NULL
"""

# What the grids map layer reads from dash_status (gridgov.gis.layers.GRIDS).
GRID_FIGURES_SQL = (
    "SELECT grid_id, households, with_primary FROM dash_status"
    " WHERE village_id = ANY(CAST(:v AS bigint[])) AND grid_id > 0 ORDER BY grid_id"
)

STATUS_SQL = f"""
WITH hh AS MATERIALIZED ({HOUSEHOLD_DUE}),
load AS (
    SELECT c.member_id, count(*) AS n, count(*) FILTER (WHERE c.role = 'primary') AS p,
           count(*) FILTER (WHERE c.role = 'primary' AND hh.due_day < :today) AS overdue
    FROM contacts c JOIN hh ON hh.id = c.household_id
    WHERE c.valid_to IS NULL
    GROUP BY 1
),
members AS MATERIALIZED (
    SELECT m.id, m.village_id, COALESCE(m.grid_id, 0) AS g, COALESCE(l.n, 0) AS n,
           COALESCE(l.p, 0) AS p, COALESCE(l.overdue, 0) AS overdue,
           COALESCE(l.n, 0) > {contact_queries.normal_sql("m")} AS over_normal,
           COALESCE(l.n, 0) > {contact_queries.capacity_sql("m")} AS over_capacity
    FROM party_members m LEFT JOIN load l ON l.member_id = m.id
    WHERE m.village_id = ANY(CAST(:villages AS bigint[])) AND m.left_at IS NULL
),
member_rows AS (
    INSERT INTO dash_member_status (member_id, village_id, grid_id, assigned, primaries, overdue,
        over_normal, over_capacity, as_of)
    SELECT id, village_id, g, n, p, overdue, over_normal, over_capacity, :today FROM members
    RETURNING 1
),
keys AS (
    SELECT g.village_id, g.id AS g FROM grids g
    WHERE g.village_id = ANY(CAST(:villages AS bigint[])) AND g.valid_to IS NULL
    UNION SELECT v, 0 FROM unnest(CAST(:villages AS bigint[])) AS v
    UNION SELECT v, -1 FROM unnest(CAST(:villages AS bigint[])) AS v
),
open_issues AS (
    -- An open issue turns "due soon" at warn_at (the share of its SLA left is below
    -- :share) and overdue at due_at (not while on hold); the earliest such moment still
    -- ahead is when the refresher recomputes the village.
    SELECT village_id, CASE WHEN GROUPING(g) = 1 THEN -1 ELSE g END AS g, count(*) AS n,
           count(*) FILTER (WHERE timed AND due_at < now()) AS overdue,
           count(*) FILTER (WHERE timed AND due_at >= now() AND warn_at < now()) AS due_soon,
           min(CASE WHEN NOT timed THEN NULL WHEN warn_at >= now() THEN warn_at
                    WHEN due_at >= now() THEN due_at END) AS next_change_at
    FROM (
        SELECT i.village_id, COALESCE(i.grid_id, 0) AS g, i.due_at,
               i.due_at - (i.due_at - i.sla_started_at) * :share AS warn_at,
               i.state <> 'ON_HOLD' AND i.due_at IS NOT NULL AS timed
        FROM issues i
        WHERE i.village_id = ANY(CAST(:villages AS bigint[])) AND i.state NOT IN ({SETTLED})
    ) o
    GROUP BY GROUPING SETS ((village_id, g), (village_id))
),
hs AS (
    SELECT village_id, CASE WHEN GROUPING(g) = 1 THEN -1 ELSE g END AS g, count(*) AS households,
           count(*) FILTER (WHERE has_primary) AS with_primary,
           count(*) FILTER (WHERE due_day < :today) AS overdue,
           count(*) FILTER (WHERE due_day >= :today AND due_day < :today + 7) AS due_soon,
           count(*) FILTER (WHERE never) AS never_visited
    FROM hh GROUP BY GROUPING SETS ((village_id, g), (village_id))
),
ms AS (
    SELECT village_id, CASE WHEN GROUPING(g) = 1 THEN -1 ELSE g END AS g, count(*) AS members,
           count(*) FILTER (WHERE over_normal) AS over_normal,
           count(*) FILTER (WHERE over_capacity) AS over_capacity
    FROM members GROUP BY GROUPING SETS ((village_id, g), (village_id))
)
INSERT INTO dash_status (village_id, grid_id, county_code, households, with_primary, overdue,
    due_soon, never_visited, members, members_over_normal, members_over_capacity, open_issues,
    open_overdue, open_due_soon, next_change_at, as_of, refreshed_at)
SELECT k.village_id, k.g, :county, COALESCE(hs.households, 0), COALESCE(hs.with_primary, 0),
       COALESCE(hs.overdue, 0), COALESCE(hs.due_soon, 0), COALESCE(hs.never_visited, 0),
       COALESCE(ms.members, 0), COALESCE(ms.over_normal, 0), COALESCE(ms.over_capacity, 0),
       COALESCE(oi.n, 0), COALESCE(oi.overdue, 0), COALESCE(oi.due_soon, 0), oi.next_change_at,
       :today, now()
FROM keys k
LEFT JOIN hs ON hs.village_id = k.village_id AND hs.g = k.g
LEFT JOIN ms ON ms.village_id = k.village_id AND ms.g = k.g
LEFT JOIN open_issues oi ON oi.village_id = k.village_id AND oi.g = k.g
WHERE k.g <> 0 OR hs.households IS NOT NULL OR ms.members IS NOT NULL OR oi.n IS NOT NULL
"""


# Townships and counties sum their current villages' total rows (grid_id -1): a household and
# its visits belong to one village, so even the distinct counts add up. Every unit of a county
# that had a note is recomputed whole, so that a village moved between townships (a new code
# edition) leaves nothing behind.
UNITS_SQL = """
CREATE TEMP TABLE dash_units ON COMMIT DROP AS
SELECT u.id AS unit_id, u.county_code, v.id AS village_id
FROM admin_units u
JOIN admin_units v ON v.county_code = u.county_code AND v.level = 'village'
 AND v.valid_to IS NULL AND v.code LIKE u.code || '%'
WHERE u.level IN ('county', 'township') AND u.valid_to IS NULL
  AND u.county_code = ANY(CAST(:counties AS text[]))
"""

UNIT_TARGETS_SQL = """
CREATE TEMP TABLE dash_unit_targets ON COMMIT DROP AS
SELECT DISTINCT m.unit_id, p.kind, p.start
FROM (SELECT DISTINCT u.county_code, t.kind, t.start FROM dash_targets t
      JOIN admin_units u ON u.id = t.village_id) p
JOIN (SELECT DISTINCT unit_id, county_code FROM dash_units) m ON m.county_code = p.county_code
"""

DELETE_UNIT_PERIODS = """
DELETE FROM {table} r USING dash_unit_targets t
WHERE r.unit_id = t.unit_id AND r.kind = t.kind AND r.start = t.start
"""

# (unit table, village table, grouping columns beyond the period, summed columns)
UNIT_PERIODS = (
    (
        "dash_unit_visit_periods",
        "dash_visit_periods",
        (),
        ("visits", "counted", "pending", "accepted", "rejected", "flagged", "households_visited"),
    ),
    ("dash_unit_flag_periods", "dash_flag_periods", ("flag",), ("pending", "accepted", "rejected")),
    (
        "dash_unit_issue_periods",
        "dash_issue_periods",
        ("category_code", "level", "state"),
        ("issues", "on_time", "reworked", "extended", "in_grid", "rated", "rating_sum"),
    ),
)


def _unit_periods_sql(
    table: str, source: str, group: tuple[str, ...], sums: tuple[str, ...]
) -> str:
    county = table == "dash_unit_visit_periods"
    keys = "".join(f", p.{c}" for c in group)
    columns = ["unit_id", "kind", "start", *group, *(["county_code"] if county else []), *sums]
    values = ["t.unit_id, t.kind, t.start" + keys, *(["min(p.county_code)"] if county else [])]
    values += [f"sum(p.{c})" for c in sums]
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)}"
        " FROM dash_unit_targets t JOIN dash_units m ON m.unit_id = t.unit_id"
        f" JOIN {source} p ON p.village_id = m.village_id AND p.grid_id = -1"
        " AND p.kind = t.kind AND p.start = t.start"
        f" GROUP BY t.unit_id, t.kind, t.start{keys}"
    )


UNIT_STATUS_SQL = """
INSERT INTO dash_unit_status (unit_id, county_code, households, with_primary, overdue, due_soon,
    never_visited, members, members_over_normal, members_over_capacity, open_issues,
    open_overdue, open_due_soon, as_of, refreshed_at)
SELECT m.unit_id, min(m.county_code), sum(s.households), sum(s.with_primary), sum(s.overdue),
       sum(s.due_soon), sum(s.never_visited), sum(s.members), sum(s.members_over_normal),
       sum(s.members_over_capacity), sum(s.open_issues), sum(s.open_overdue),
       sum(s.open_due_soon), min(s.as_of), min(s.refreshed_at)
FROM dash_units m JOIN dash_status s ON s.village_id = m.village_id AND s.grid_id = -1
GROUP BY m.unit_id
"""


def _refresh_units(session: Session, counties: list[str]) -> None:
    """Recompute the townships' and counties' totals that the village rows just changed."""
    ids = {"counties": "{" + ",".join(counties) + "}"}
    session.execute(text(UNITS_SQL), ids)
    session.execute(text(UNIT_TARGETS_SQL))
    for table, source, group, sums in UNIT_PERIODS:
        session.execute(text(DELETE_UNIT_PERIODS.format(table=table)))
        session.execute(text(_unit_periods_sql(table, source, group, sums)))
    session.execute(text("DROP TABLE dash_unit_targets"))
    session.execute(
        text("DELETE FROM dash_unit_status WHERE county_code = ANY(CAST(:counties AS text[]))"), ids
    )
    session.execute(text(UNIT_STATUS_SQL))
    session.execute(text("DROP TABLE dash_units"))


def note_all(session: Session, county_code: str) -> int:
    """Note every village and day of a county that has data (after a bulk load, or to
    rebuild): the next refresh recomputes all of it."""
    return session.execute(
        text(
            "INSERT INTO dash_dirty (village_id, day)"
            " SELECT DISTINCT village_id, (visited_at AT TIME ZONE 'Asia/Shanghai')::date"
            " FROM visits WHERE county_code = :c"
            " UNION SELECT DISTINCT village_id, (created_at AT TIME ZONE 'Asia/Shanghai')::date"
            " FROM issues WHERE county_code = :c"
            " UNION SELECT id, '-infinity'::date FROM admin_units"
            " WHERE county_code = :c AND level = 'village' AND valid_to IS NULL"
        ),
        {"c": county_code},
    ).rowcount


def refresh(session: Session, *, max_notes: int = 200_000) -> RefreshResult:
    """Recompute what the notes name (at most ``max_notes`` of them) in the caller's
    transaction; a no-op when another refresher is at work."""
    started = time.perf_counter()
    result = RefreshResult()
    if not session.scalar(text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": LOCK_KEY}):
        return result
    result.ran = True
    # A new day recomputes every village of a county in one statement: a background job's
    # work, not a request's, so the API's statement timeout does not apply to it.
    session.execute(
        text("SELECT set_config('statement_timeout', :t, true)"), {"t": REFRESH_TIMEOUT}
    )
    day = today()
    session.execute(
        text(
            "CREATE TEMP TABLE dash_notes ON COMMIT DROP AS WITH taken AS ("
            " DELETE FROM dash_dirty WHERE id IN (SELECT id FROM dash_dirty ORDER BY id"
            " LIMIT :n) RETURNING village_id, day) SELECT DISTINCT village_id, day FROM taken"
            # A new local day: every village's state is recomputed (due dates move).
            " UNION SELECT DISTINCT village_id, '-infinity'::date FROM dash_status"
            " WHERE as_of < :today"
            # An open issue's deadline (or its due-soon mark) has passed since.
            " UNION SELECT village_id, '-infinity'::date FROM dash_status"
            " WHERE grid_id = -1 AND next_change_at <= now()"
            # A village that has no state yet (new, or never noted since the rollups began).
            " UNION SELECT u.id, '-infinity'::date FROM admin_units u"
            " WHERE u.level = 'village' AND u.valid_to IS NULL AND NOT EXISTS ("
            "  SELECT 1 FROM dash_status s WHERE s.village_id = u.id AND s.grid_id = -1)"
        ),
        {"n": max_notes, "today": day},
    )
    result.notes = session.scalar(text("SELECT count(*) FROM dash_notes")) or 0
    if result.notes:
        session.execute(text(TARGETS_SQL))
        result.periods = session.scalar(text("SELECT count(*) FROM dash_targets")) or 0
        if result.periods:
            for table, sql in (
                ("dash_visit_periods", VISIT_PERIODS_SQL),
                ("dash_flag_periods", FLAG_PERIODS_SQL),
                ("dash_issue_periods", ISSUE_PERIODS_SQL),
                ("dash_member_periods", MEMBER_PERIODS_SQL),
            ):
                session.execute(text(DELETE_PERIODS.format(table=table)))
                session.execute(text(sql))
        result.villages, result.counties = _refresh_status(session, day)
        _refresh_units(session, result.counties)
        session.execute(text("DROP TABLE IF EXISTS dash_targets"))
    session.execute(text("DROP TABLE dash_notes"))
    result.seconds = time.perf_counter() - started
    return result


def _refresh_status(session: Session, day: date) -> tuple[int, list[str]]:
    by_county: dict[str, list[int]] = {}
    for village_id, county in session.execute(
        text(
            "SELECT DISTINCT n.village_id, u.county_code FROM dash_notes n"
            " JOIN admin_units u ON u.id = n.village_id"
        )
    ):
        by_county.setdefault(county, []).append(village_id)
    moved = False
    for county, villages in by_county.items():
        ids = "{" + ",".join(map(str, sorted(villages))) + "}"
        before = session.execute(text(GRID_FIGURES_SQL), {"v": ids}).all()
        session.execute(
            text("DELETE FROM dash_status WHERE village_id = ANY(CAST(:v AS bigint[]))"), {"v": ids}
        )
        session.execute(
            text("DELETE FROM dash_member_status WHERE village_id = ANY(CAST(:v AS bigint[]))"),
            {"v": ids},
        )
        # One statement per county: a member's load counts its households in every village.
        params = {
            "villages": ids,
            "county": county,
            "today": day,
            "intervals": json.dumps(intervals_for(county)),
            "ordinary": ORDINARY_INTERVAL_DAYS,
            "share": get_settings().dashboard.warning.issue_due_soon_share,
            **contact_queries.limit_params(limits_for(county)),
        }
        session.execute(text(STATUS_SQL), params)
        moved = moved or session.execute(text(GRID_FIGURES_SQL), {"v": ids}).all() != before
    if moved:
        # The grids map layer shows these counts: its tiles change version (and re-render) only
        # when a count did, not on every refresh (visits alone never move them).
        session.execute(text(gis_queries.NOTE_CHANGE_SQL), {"table": GRID_FIGURES})
    return sum(len(v) for v in by_county.values()), sorted(by_county)


class Refresher:
    """The API process's background refresher: one thread, a short transaction per pass."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dashboard-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with session_scope() as session:
                    result = refresh(session)
                if result.notes:
                    log.info(
                        "dashboard refreshed: %d notes, %d periods, %d villages in %.3fs",
                        result.notes,
                        result.periods,
                        result.villages,
                        result.seconds,
                    )
            except Exception:  # the next pass tries again; the API itself must not suffer
                log.warning("dashboard refresh failed", exc_info=True)
