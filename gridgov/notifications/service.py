"""站内提醒: the reminders the jobs write for open issues, and each user's inbox.

Reminders are set-based: one ``INSERT … SELECT … ON CONFLICT (user_id, dedupe_key) DO NOTHING``
per kind. The dedupe key names the issue, the kind and the deadline (or level) it is about, so a
pass run twice — or two passes at once — notify each person once, and a new deadline (after an
escalation or an ON_HOLD extension) reminds again.

Who is told: the issue's handler when one is assigned (and active); otherwise the active users of
whoever holds the issue at its level — grid 1: the grid's users (an issue outside every grid: the
village admins); village 2: the village's village_admin users; township 3: township_admin;
county 4: county_admin.

Only issues whose SLA clock runs (``workflow.ACTIVE``) get reminders: ON_HOLD is paused, and
resolved, verified, closed, rejected, merged and cancelled issues get none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from gridgov import events
from gridgov.config import get_settings
from gridgov.errors import NotFound
from gridgov.issues import workflow
from gridgov.issues.events import IssuesEscalated
from gridgov.notifications.models import Notification
from gridgov.pagination import decode_id_cursor, encode_cursor

KINDS = ("due_soon", "overdue", "escalated")

TITLES = {
    "due_soon": "事件即将到期：%s（编号 %s）",
    "overdue": "事件已超期：%s（编号 %s）",
    "escalated": "事件已上报至本单位：%s（编号 %s）",
}
BODIES = {
    "due_soon": "办理时限为 %s，剩余工作时间不足时限的 %s%%，请及时办理。",
    "overdue": "办理时限 %s 已过，请尽快办理；%s",
    "escalated": "事件已上报至%s级，新的办理时限为 %s，请及时受理。",
}
OVERDUE_NEXT = "%s 前仍未办结将自动上报上一级。"
OVERDUE_TOP = "事件已在县级，不再自动上报。"


@dataclass
class ReminderCounts:
    """Reminders written by one pass (one per person and issue; repeats are not counted)."""

    due_soon: int = 0
    overdue: int = 0
    escalated: int = 0

    @property
    def total(self) -> int:
        return self.due_soon + self.overdue + self.escalated


# -- the SQL ----------------------------------------------------------------------------------

_ACTIVE = "(" + ", ".join(f"'{s.value}'" for s in sorted(workflow.ACTIVE)) + ")"
_LOCAL = "AT TIME ZONE 'Asia/Shanghai'"
# (the backslash keeps text() from reading ":MI" as a bind parameter)
_FMT = "'YYYY-MM-DD HH24\\:MI'"

# Columns every kind's targets carry, from issues ``i`` and categories ``c``.
_TARGET_COLUMNS = """
    i.id, i.county_code, i.level, i.grid_id, i.village_id, i.unit_id, i.handler_id,
    EXISTS (SELECT 1 FROM users h WHERE h.id = i.handler_id AND h.is_active) AS handler_active,
    format(CAST(:title AS text), c.name, i.id) AS title
"""

# Working hours left from :now until i.due_at on the county's calendar (national rows, each
# overridden by the county's row of the same day; otherwise Monday–Friday work) — the same
# arithmetic as ``calendar.WorkCalendar.working_hours_between``.
_REMAINING = f"""
LEFT JOIN LATERAL (
    SELECT COALESCE(sum(extract(epoch FROM
               LEAST(i.due_at, w.close_at) - GREATEST(CAST(:now AS timestamptz), w.open_at)
           )), 0) / 3600.0 AS hours
    FROM generate_series(
        (CAST(:now AS timestamptz) {_LOCAL})::date, (i.due_at {_LOCAL})::date, interval '1 day'
    ) AS d(day)
    LEFT JOIN calendar_days n ON n.county_code = '000000' AND n.day = d.day::date
    LEFT JOIN calendar_days k ON k.county_code = i.county_code AND k.day = d.day::date
    CROSS JOIN LATERAL (
        SELECT (d.day::date + make_interval(hours => :start_hour)) {_LOCAL} AS open_at,
               (d.day::date + make_interval(hours => :end_hour)) {_LOCAL} AS close_at
    ) w
    WHERE COALESCE(k.kind, n.kind,
                   CASE WHEN extract(isodow FROM d.day) < 6 THEN 'workday' ELSE 'holiday' END)
          = 'workday'
      AND LEAST(i.due_at, w.close_at) > GREATEST(CAST(:now AS timestamptz), w.open_at)
) r ON true
"""

_TARGETS = {
    # Not yet due, and the working hours left are at most the configured share of the SLA.
    "due_soon": f"""
        SELECT {_TARGET_COLUMNS},
               format(CAST(:body AS text), to_char(i.due_at {_LOCAL}, {_FMT}),
                      CAST(:share_pct AS text)) AS body,
               'issue:' || i.id || ':due_soon:' || extract(epoch FROM i.due_at)::bigint
                   AS dedupe_key
        FROM issues i
        JOIN issue_categories c ON c.code = i.category_code
        {_REMAINING}
        WHERE i.state IN {_ACTIVE} AND i.due_at > CAST(:now AS timestamptz)
          AND r.hours <= :share * i.sla_hours
    """,
    # Past the deadline and not (yet) escalated automatically: what the escalation job has not
    # taken (its time not come, or the county level, which never escalates).
    "overdue": f"""
        SELECT {_TARGET_COLUMNS},
               format(CAST(:body AS text), to_char(i.due_at {_LOCAL}, {_FMT}),
                      CASE WHEN i.level >= :top_level THEN CAST(:top_note AS text)
                           ELSE format(CAST(:next_note AS text),
                                       to_char(i.escalate_at {_LOCAL}, {_FMT}))
                      END) AS body,
               'issue:' || i.id || ':overdue:' || extract(epoch FROM i.due_at)::bigint
                   AS dedupe_key
        FROM issues i
        JOIN issue_categories c ON c.code = i.category_code
        WHERE i.state IN {_ACTIVE} AND i.due_at <= CAST(:now AS timestamptz)
          AND (i.escalate_at > CAST(:now AS timestamptz) OR i.level >= :top_level)
    """,
    # Handed to a new level (by the job or by hand) and still open there: the level it now sits
    # at is the level of its latest escalation.
    "escalated": f"""
        SELECT {_TARGET_COLUMNS},
               format(CAST(:body AS text), CAST(:level_names AS jsonb) ->> i.level::text,
                      to_char(i.due_at {_LOCAL}, {_FMT})) AS body,
               'issue:' || i.id || ':escalated:' || i.level AS dedupe_key
        FROM issues i
        JOIN issue_categories c ON c.code = i.category_code
        JOIN LATERAL (
            SELECT e.to_level FROM issue_events e
            WHERE e.issue_id = i.id AND e.action = 'escalate'
            ORDER BY e.id DESC LIMIT 1
        ) e ON e.to_level = i.level
        WHERE i.state IN {_ACTIVE} AND i.level > 1
          AND (CAST(:issue_ids AS bigint[]) IS NULL OR i.id = ANY(CAST(:issue_ids AS bigint[])))
    """,
}

# The people told about target ``t`` (see the module docstring).
_RECIPIENTS = """
    SELECT u.id AS user_id FROM users u
    WHERE t.handler_active AND u.id = t.handler_id
    UNION ALL
    SELECT u.id FROM users u
    WHERE NOT t.handler_active AND u.is_active AND CASE t.level
        WHEN 1 THEN CASE WHEN t.grid_id IS NOT NULL THEN u.grid_id = t.grid_id
                         ELSE u.role = 'village_admin' AND u.unit_id = t.village_id END
        WHEN 2 THEN u.role = 'village_admin' AND u.unit_id = COALESCE(t.unit_id, t.village_id)
        WHEN 3 THEN u.role = 'township_admin' AND u.unit_id = t.unit_id
        WHEN 4 THEN u.role = 'county_admin' AND u.unit_id = t.unit_id
        ELSE false END
"""

_INSERT = """
WITH t AS ({targets}),
ins AS (
    INSERT INTO notifications
        (user_id, county_code, kind, entity, entity_id, title, body, dedupe_key, created_at)
    SELECT r.user_id, t.county_code, CAST(:kind AS text), 'issue', t.id, t.title, t.body,
           t.dedupe_key, CAST(:now AS timestamptz)
    FROM t CROSS JOIN LATERAL ({recipients}) r
    WHERE r.user_id IS NOT NULL
    ON CONFLICT (user_id, dedupe_key) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM ins
"""


def _remind(session: Session, kind: str, now: datetime, issue_ids: list[int] | None = None) -> int:
    settings = get_settings().issues
    share = settings.due_soon_share
    params: dict[str, Any] = {
        "kind": kind,
        "now": now,
        "title": TITLES[kind],
        "body": BODIES[kind],
    }
    if kind == "due_soon":
        params.update(
            share=share,
            share_pct=f"{share * 100:g}",
            start_hour=settings.workday_start_hour,
            end_hour=settings.workday_end_hour,
        )
    elif kind == "overdue":
        params.update(top_level=workflow.TOP_LEVEL, top_note=OVERDUE_TOP, next_note=OVERDUE_NEXT)
    else:
        names = {str(k): v for k, v in workflow.LEVEL_NAMES.items()}
        params.update(level_names=json.dumps(names, ensure_ascii=False), issue_ids=issue_ids)
    sql = _INSERT.format(targets=_TARGETS[kind], recipients=_RECIPIENTS)
    return int(session.execute(text(sql), params).scalar_one())


def remind_issues(session: Session, *, now: datetime | None = None) -> ReminderCounts:
    """One reminder pass over every open issue: due soon, overdue, escalated. The caller
    commits; running it again (or two at once) adds nothing already sent."""
    now = now or datetime.now(UTC)
    session.flush()
    return ReminderCounts(
        due_soon=_remind(session, "due_soon", now),
        overdue=_remind(session, "overdue", now),
        escalated=_remind(session, "escalated", now),
    )


def remind_escalated(session: Session, issue_ids: list[int], *, now: datetime | None = None) -> int:
    """Tell the new holders of just-escalated issues at once (a manual escalation); the next
    job pass would otherwise do it, and does nothing more when this already has."""
    if not issue_ids:
        return 0
    session.flush()
    return _remind(session, "escalated", now or datetime.now(UTC), issue_ids)


@events.subscribe(IssuesEscalated)
def _on_issues_escalated(session: Session, event: IssuesEscalated) -> int:
    return remind_escalated(session, list(event.issue_ids), now=event.now)


# -- the inbox --------------------------------------------------------------------------------


def _unread_count(session: Session, user_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


def list_inbox(
    session: Session, user_id: int, *, unread: bool, limit: int, cursor: str | None
) -> tuple[list[Notification], str | None, int]:
    """The user's reminders, newest first (keyset on id); the next cursor; all unread."""
    after = decode_id_cursor(cursor)
    stmt = select(Notification).where(Notification.user_id == user_id)
    if after:
        stmt = stmt.where(Notification.id < after)
    if unread:
        stmt = stmt.where(Notification.read_at.is_(None))
    rows = list(session.scalars(stmt.order_by(Notification.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].id) if more else None), _unread_count(session, user_id)


def mark_read(
    session: Session, user_id: int, notification_id: int, *, now: datetime | None = None
) -> Notification:
    """Mark one of the user's reminders read (already read: unchanged). Someone else's: 404."""
    row = session.scalar(
        select(Notification)
        .where(Notification.id == notification_id, Notification.user_id == user_id)
        .with_for_update()
    )
    if row is None:
        raise NotFound("提醒")
    if row.read_at is None:
        row.read_at = now or datetime.now(UTC)
        session.flush()
    return row


def mark_all_read(session: Session, user_id: int, *, now: datetime | None = None) -> int:
    """Mark every unread reminder of the user read; how many were."""
    result = session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now or datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)
