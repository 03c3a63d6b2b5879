"""The demo county's year of activity, checked with SQL of its own over the raw tables.

One small county (3,000 households, 120 issues) is loaded twice in one transaction (the first
load rolled back to a savepoint: same seed, same year) and shared by the tests of this module;
the whole transaction is rolled back at the end.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from gridgov.auth import service as auth_service
from gridgov.demo.activity import ActivitySummary, load_activity
from gridgov.demo.generate import generate_county
from gridgov.demo.load import DEMO_PASSWORD, demo_users, load_demo
from gridgov.demo.timeline import local
from gridgov.issues.workflow import State
from gridgov.visits import queries as visit_queries
from gridgov.visits import service as visits_service
from gridgov.visits.storage import LocalBlobStore

TODAY = date(2026, 11, 20)  # a fixed year (the seeded 调休 calendar covers 2025–2026)
END = local(TODAY, 0)


@dataclass
class Demo:
    session: Session
    code: str
    activity: ActivitySummary
    first: dict[str, Any]  # fingerprint of the first load
    second: dict[str, Any]  # … and of the second

    def scalar(self, sql: str, **params: Any) -> Any:
        return self.session.scalar(text(sql), {"c": self.code, **params})

    def rows(self, sql: str, **params: Any) -> list[Any]:
        return list(self.session.execute(text(sql), {"c": self.code, **params}))


def _fingerprint(session: Session, code: str) -> dict[str, Any]:
    """What the year holds, without database ids (a second load in the same database gets
    other ids; in a fresh database they, and so the visits' content hashes, are the same)."""
    p = {"c": code}

    def one(sql: str) -> Any:
        return session.scalar(text(sql), p)

    return {
        "contacts": one(
            "SELECT md5(string_agg(h.external_id || c.role || c.valid_from || "
            "COALESCE(c.valid_to::text, '-') || COALESCE(c.ended_reason, '-') || m.id_number, ','"
            " ORDER BY h.external_id, c.valid_from, m.id_number)) FROM contacts c "
            "JOIN households h ON h.id = c.household_id JOIN party_members m ON m.id = c.member_id "
            "WHERE c.county_code = :c"
        ),
        "visits": one("SELECT count(*) FROM visits WHERE county_code = :c"),
        "visit_rows": one(
            "SELECT md5(string_agg(v.client_uuid::text || h.external_id || v.visited_at || "
            "v.received_at || v.method || COALESCE(ST_AsText(v.geom), '-') || "
            "COALESCE(v.accuracy_m::text, '-') || array_to_string(v.flags, '+') || "
            "v.review_status, ',' ORDER BY v.client_uuid)) "
            "FROM visits v JOIN households h ON h.id = v.household_id WHERE v.county_code = :c"
        ),
        "issues": one(
            "SELECT md5(string_agg(i.client_uuid::text || i.state || i.level || i.category_code"
            " || i.created_at || i.due_at || COALESCE(i.rating::text, '-'), ','"
            " ORDER BY i.client_uuid)) FROM issues i WHERE i.county_code = :c"
        ),
        "events": one(
            "SELECT md5(string_agg(i.client_uuid::text || e.action || e.at || e.to_state, ','"
            " ORDER BY i.client_uuid, e.id)) FROM issue_events e "
            "JOIN issues i ON i.id = e.issue_id WHERE i.county_code = :c"
        ),
    }


@pytest.fixture(scope="module")
def demo(engine: Engine, world: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    store = LocalBlobStore(tmp_path_factory.mktemp("attachments"))
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        county = generate_county(households=3000, seed=3, townships=3, villages=12, grids=80)
        fingerprints = []
        for attempt in range(2):
            savepoint = session.begin_nested()
            load_demo(session, county=county, seed=3, with_users=False, activity=False)
            # The named demo users whose names the test world does not use already.
            for username, role, unit, grid, name in demo_users(county):
                if username in ("township", "village", "grid"):
                    auth_service.create_user(
                        session, None, username=username, password=DEMO_PASSWORD, role=role,
                        display_name=name, unit_code=unit, grid_code=grid,
                    )  # fmt: skip
            activity = load_activity(session, county.county.code, seed=3, today=TODAY, store=store)
            session.flush()
            fingerprints.append(_fingerprint(session, county.county.code))
            if attempt == 0:
                session.expunge_all()
                savepoint.rollback()
        yield Demo(session, county.county.code, activity, *fingerprints)
    finally:
        session.close()
        outer.rollback()
        connection.close()


def test_same_seed_same_year(demo: Demo) -> None:
    assert demo.first == demo.second
    assert demo.first["visits"] == demo.activity.visits > 5000


def test_every_issue_state_and_level_occurs(demo: Demo) -> None:
    states = {r[0] for r in demo.rows("SELECT DISTINCT state FROM issues WHERE county_code = :c")}
    assert states == {s.value for s in State}
    levels = {r[0] for r in demo.rows("SELECT DISTINCT level FROM issues WHERE county_code = :c")}
    assert levels == {1, 2, 3, 4}
    # The timeline is the workflow's: every issue starts with its report, entries in time order,
    # each starting where the previous one ended, the last one at the issue's state and level.
    broken = demo.scalar(
        """
        SELECT count(*) FROM (
            SELECT e.issue_id, e.action, e.from_state, e.to_state, e.at, e.to_level,
                   lag(e.to_state) OVER w AS prev_state, lag(e.at) OVER w AS prev_at,
                   row_number() OVER w AS n,
                   row_number() OVER (PARTITION BY e.issue_id ORDER BY e.id DESC) AS back,
                   i.state, i.level
            FROM issue_events e JOIN issues i ON i.id = e.issue_id
            WHERE i.county_code = :c
            WINDOW w AS (PARTITION BY e.issue_id ORDER BY e.id)
        ) t
        WHERE (n = 1 AND action <> 'report')
           OR (n > 1 AND (from_state IS DISTINCT FROM prev_state OR at < prev_at))
           OR (back = 1 AND (to_state <> state OR to_level <> level))
        """
    )
    assert broken == 0
    actions = {
        r[0]
        for r in demo.rows(
            "SELECT DISTINCT e.action FROM issue_events e JOIN issues i ON i.id = e.issue_id "
            "WHERE i.county_code = :c"
        )
    }
    assert {"hold", "resume", "rework", "reopen", "return", "escalate", "merge"} <= actions
    # Escalations by hand and by the job (no user), SLA breaches, extensions and ratings.
    by_job = demo.scalar(
        "SELECT count(*) FROM issue_events e JOIN issues i ON i.id = e.issue_id "
        "WHERE i.county_code = :c AND e.action = 'escalate' AND e.user_id IS NULL"
    )
    by_hand = demo.scalar(
        "SELECT count(*) FROM issue_events e JOIN issues i ON i.id = e.issue_id "
        "WHERE i.county_code = :c AND e.action = 'escalate' AND e.user_id IS NOT NULL"
    )
    assert by_job > 0 and by_hand > 0
    row = demo.rows(
        "SELECT count(*) FILTER (WHERE on_time = false) AS late, "
        "count(*) FILTER (WHERE on_time) AS on_time, count(*) FILTER (WHERE extended) AS ext, "
        "count(DISTINCT rating) AS ratings, count(*) FILTER (WHERE household_id IS NOT NULL) "
        "AS linked, count(DISTINCT left(category_code, 2)) AS groups, "
        "count(*) FILTER (WHERE created_at >= :end OR created_at < :end - interval '366 days')"
        " AS outside FROM issues WHERE county_code = :c",
        end=END,
    )[0]
    assert row.late > 0 and row.on_time > row.late and row.ext > 0 and row.ratings >= 4
    assert row.linked > 0 and row.groups >= 8 and row.outside == 0
    # Deadlines are the service's: 调休 make-up days count as working days (a due time on
    # one of them exists when the year crosses one), holidays never.
    on_holiday = demo.scalar(
        "SELECT count(*) FROM issues i JOIN calendar_days d ON d.county_code = '000000' "
        "AND d.kind = 'holiday' AND d.day = (i.due_at AT TIME ZONE 'Asia/Shanghai')::date "
        "WHERE i.county_code = :c"
    )
    assert on_holiday == 0


def _flag_kinds() -> set[str]:
    """Every flag the server computes: the names in FLAGS_SQL and PHOTO_REUSE_SQL."""
    kinds = set(re.findall(r"THEN '([a-z_]+)' END", visit_queries.FLAGS_SQL))
    kinds |= set(
        re.findall(r"array_append\(v\.flags, '([a-z_]+)'\)", visit_queries.PHOTO_REUSE_SQL)
    )
    assert len(kinds) >= 9
    return kinds


def test_every_flag_and_review_state_occurs(demo: Demo) -> None:
    flags = {
        r[0] for r in demo.rows("SELECT DISTINCT unnest(flags) FROM visits WHERE county_code = :c")
    }
    assert flags == _flag_kinds()
    reviews = dict(
        demo.rows("SELECT review_status, count(*) FROM visits WHERE county_code = :c GROUP BY 1")
    )
    assert set(reviews) == {"clean", "pending", "accepted", "rejected"}
    assert reviews["accepted"] > reviews["rejected"] > 0
    # Flagged exactly when pending / reviewed; reviews carry who, when and why, by someone else,
    # after the upload and before the end of the year, each with its audit entry.
    bad = demo.scalar(
        """
        SELECT count(*) FROM visits v WHERE v.county_code = :c AND (
            (cardinality(v.flags) > 0) <> (v.review_status <> 'clean')
            OR (v.review_status IN ('accepted', 'rejected')) <> (v.reviewed_by IS NOT NULL)
            OR (v.reviewed_by IS NOT NULL AND (v.reviewed_at IS NULL OR v.review_reason IS NULL
                OR v.reviewed_by = v.user_id OR v.reviewed_at < v.received_at
                OR v.reviewed_at >= :end)))
        """,
        end=END,
    )
    assert bad == 0
    audited = demo.scalar(
        "SELECT count(*) FROM audit_log a JOIN visits v ON v.id::text = a.entity_id "
        "WHERE a.entity = 'visit' AND a.action LIKE 'review_%' AND v.county_code = :c "
        "AND a.user_id = v.reviewed_by AND a.at = v.reviewed_at"
    )
    assert audited == reviews["accepted"] + reviews["rejected"]
    # The fakers' visits are the ones reviewers reject: most rejections are of burst, far,
    # spoofed or copied-photo visits.
    rejected_fake = demo.scalar(
        "SELECT count(*) FROM visits WHERE county_code = :c AND review_status = 'rejected' "
        "AND flags && ARRAY['burst', 'far_from_household', 'impossible_speed', "
        "'photo_reused']::varchar[]"
    )
    assert rejected_fake > reviews["rejected"] / 2
    # Photos are real attachment rows; each reused photo's content is on more than one visit.
    photos = demo.scalar(
        "SELECT count(*) FROM visits v JOIN attachments a ON a.id = ANY(v.attachment_ids) "
        "WHERE v.county_code = :c"
    )
    assert photos > 0


def test_flags_are_what_the_server_computes(demo: Demo) -> None:
    """Clearing every flag and running the server's own flag computation again gives the
    stored flags back: the loader wrote nothing the checks would not have written."""
    session = demo.session
    stored = dict(
        demo.rows("SELECT id, flags FROM visits WHERE county_code = :c AND flags <> '{}'")
    )
    ids = [r[0] for r in demo.rows("SELECT id FROM visits WHERE county_code = :c ORDER BY id")]
    with session.begin_nested() as savepoint:
        session.execute(
            text("UPDATE visits SET flags = '{}', review_status = 'clean' WHERE county_code = :c"),
            {"c": demo.code},
        )
        visits_service._compute_flags(session, ids, with_photos=True)
        again = dict(
            demo.rows("SELECT id, flags FROM visits WHERE county_code = :c AND flags <> '{}'")
        )
        savepoint.rollback()
    assert {k: sorted(v) for k, v in again.items()} == {k: sorted(v) for k, v in stored.items()}


def test_contact_history_is_consistent(demo: Demo) -> None:
    reasons = dict(
        demo.rows(
            "SELECT COALESCE(ended_reason, 'active'), count(*) FROM contacts "
            "WHERE county_code = :c GROUP BY 1"
        )
    )
    assert reasons["active"] > 2500
    assert {"replaced", "member_left", "household_removed"} <= set(reasons)
    two_primaries = demo.scalar(
        "SELECT count(*) FROM (SELECT household_id FROM contacts WHERE county_code = :c "
        "AND role = 'primary' AND valid_to IS NULL GROUP BY 1 HAVING count(*) > 1) t"
    )
    overlapping = demo.scalar(
        "SELECT count(*) FROM contacts a JOIN contacts b ON a.household_id = b.household_id "
        "AND a.id < b.id AND a.role = 'primary' AND b.role = 'primary' "
        "AND daterange(a.valid_from, a.valid_to) && daterange(b.valid_from, b.valid_to) "
        "WHERE a.county_code = :c"
    )
    assert two_primaries == 0 and overlapping == 0
    # Nobody who left and no removed household holds an assignment; each ended on that day.
    stale = demo.scalar(
        "SELECT count(*) FROM contacts c JOIN households h ON h.id = c.household_id "
        "JOIN party_members m ON m.id = c.member_id WHERE c.county_code = :c AND "
        "((c.valid_to IS NULL AND (h.removed_at IS NOT NULL OR m.left_at IS NOT NULL)) "
        "OR (c.ended_reason = 'member_left' AND c.valid_to <> GREATEST(c.valid_from, "
        "(m.left_at AT TIME ZONE 'Asia/Shanghai')::date)) "
        "OR (c.ended_reason = 'household_removed' AND c.valid_to <> GREATEST(c.valid_from, "
        "(h.removed_at AT TIME ZONE 'Asia/Shanghai')::date)))"
    )
    assert stale == 0
    # A hand-over: the next primary starts on the day the replaced one ends.
    orphaned = demo.scalar(
        "SELECT count(*) FROM contacts a WHERE a.county_code = :c AND a.ended_reason = 'replaced'"
        " AND NOT EXISTS (SELECT 1 FROM contacts b WHERE b.household_id = a.household_id "
        "AND b.role = 'primary' AND b.valid_from = a.valid_to AND b.member_id <> a.member_id)"
    )
    assert orphaned == 0
    # The first assignment is the auto-assign's, from the first day of the year.
    first = demo.scalar(
        "SELECT count(*) FROM contacts WHERE county_code = :c AND source = 'auto' "
        "AND valid_from = :start",
        start=demo.activity.start,
    )
    assert first > 2500


# Interval per household, as DESIGN §6 and the due list compute it (independently here).
_INTERVAL = """
COALESCE((SELECT min(CASE t WHEN '高风险老人' THEN 7 WHEN '低保户' THEN 90 WHEN '脱贫户' THEN 90
                   ELSE 30 END) FROM unnest(h.tags) t), 180)
"""


def test_visits_follow_schedules(demo: Demo) -> None:
    # Each visit is by the household's primary contact of that day (a few look in on
    # neighbours), at a point of the year, uploaded after it happened (a few phones' clocks run
    # ahead), by the member's account for the household's grid.
    row = demo.rows(
        """
        SELECT count(*) AS visits,
               count(*) FILTER (WHERE 'not_assigned' = ANY(v.flags)) AS unassigned,
               count(*) FILTER (WHERE v.visited_at >= :end
                                OR v.visited_at < :end - interval '366 days') AS outside,
               count(*) FILTER (WHERE v.received_at < v.visited_at
                                AND NOT 'future_visited_at' = ANY(v.flags)) AS early,
               count(*) FILTER (WHERE u.member_id <> v.member_id OR u.grid_id <> v.grid_id
                                OR v.grid_id <> h.grid_id) AS wrong_account
        FROM visits v JOIN users u ON u.id = v.user_id JOIN households h ON h.id = v.household_id
        WHERE v.county_code = :c
        """,
        end=END,
    )[0]
    assert row.unassigned < row.visits * 0.02 and row.outside == 0
    assert row.early == 0 and row.wrong_account == 0
    # At the end of the year: households with a primary contact that has had the time to go
    # round; overdue = no counted visit within the interval.
    shares = {
        r.weak: r
        for r in demo.rows(
            f"""
            WITH hh AS (
                SELECT h.id, h.village_id, {_INTERVAL} AS interval_days,
                       (SELECT max(v.visited_at) FROM visits v WHERE v.household_id = h.id
                        AND v.review_status IN ('clean', 'accepted')) AS last
                FROM households h JOIN contacts c ON c.household_id = h.id
                 AND c.role = 'primary' AND c.valid_to IS NULL
                WHERE h.county_code = :c AND h.removed_at IS NULL
                  AND c.valid_from <= CAST(:end AS date) - {_INTERVAL} * 2
            ),
            weak AS (  -- the villages the visits lapse in: fewest visits per household
                SELECT village_id FROM (
                    SELECT h.village_id, count(v.id)::float / count(DISTINCT h.id) AS rate
                    FROM households h LEFT JOIN visits v ON v.household_id = h.id
                    WHERE h.county_code = :c GROUP BY 1) t
                ORDER BY rate LIMIT :weak
            )
            SELECT hh.village_id IN (SELECT village_id FROM weak) AS weak, count(*) AS n,
                   avg((hh.last IS NULL OR hh.last + make_interval(days => hh.interval_days)
                        < :end)::int) AS overdue
            FROM hh GROUP BY 1
            """,
            end=END,
            weak=demo.activity.weak_villages,
        )
    }
    assert shares[False].n > 1500 and shares[True].n > 50
    assert shares[False].overdue < 0.35  # most households are visited on time …
    assert shares[True].overdue > 0.5  # … not in the weak village
    # Visits come about as often as the schedule says: the median gap between counted visits
    # of ordinary (180-day) households is between half and one and a half intervals.
    median = demo.scalar(
        f"""
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) FROM (
            SELECT extract(epoch FROM v.visited_at - lag(v.visited_at) OVER w) / 86400 AS gap
            FROM visits v JOIN households h ON h.id = v.household_id
            WHERE v.county_code = :c AND {_INTERVAL} = 180
              AND v.review_status IN ('clean', 'accepted')
            WINDOW w AS (PARTITION BY v.household_id ORDER BY v.visited_at)) t
        WHERE gap IS NOT NULL
        """
    )
    assert 90 <= median <= 270
    # Seasons: the 春节 week sees far fewer visits than an ordinary week.
    weeks = demo.rows(
        """
        SELECT (SELECT count(*) FROM visits v WHERE v.county_code = :c
                AND v.visited_at >= '2026-02-16 00:00+08' AND v.visited_at < '2026-02-23 00:00+08')
               AS festival,
               (SELECT count(*) FROM visits v WHERE v.county_code = :c
                AND v.visited_at >= '2026-03-16 00:00+08' AND v.visited_at < '2026-03-23 00:00+08')
               AS march
        """
    )[0]
    assert weeks.festival * 2 < weeks.march


def test_named_users_and_the_grid_users_grid(demo: Demo) -> None:
    """The grid user's grid is busy: visits, issues it reported, and a due list with some
    households due and others not."""
    grid_id = demo.scalar("SELECT grid_id FROM users WHERE username = 'grid' AND county_code = :c")
    assert grid_id is not None
    visits = demo.scalar("SELECT count(*) FROM visits WHERE grid_id = :g", g=grid_id)
    reported = demo.scalar(
        "SELECT count(*) FROM issues i JOIN users u ON u.id = i.reporter_id "
        "WHERE u.username = 'grid' AND u.county_code = :c"
    )
    due = demo.rows(
        f"""
        SELECT COALESCE(max(v.visited_at) FILTER (WHERE v.review_status IN ('clean', 'accepted'))
                        + make_interval(days => {_INTERVAL}), h.created_at) < :end AS overdue
        FROM households h LEFT JOIN visits v ON v.household_id = h.id
        WHERE h.grid_id = :g AND h.removed_at IS NULL GROUP BY h.id
        """,
        g=grid_id,
        end=END,
    )
    assert visits > 50 and reported > 0
    assert 0 < sum(r.overdue for r in due) < len(due)
    staff = dict(demo.rows("SELECT role, count(*) FROM users WHERE county_code = :c GROUP BY 1"))
    assert staff["village_admin"] == 12 and staff["township_admin"] == 3
    assert staff["county_admin"] == 2 and staff["grid_member"] > 200
