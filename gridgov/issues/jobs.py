"""Background jobs for 事件: escalating overdue issues, then reminding people (站内提醒) of
issues nearly due, overdue, or escalated to them. Safe to run several at once: each run takes
the issues it escalates with SKIP LOCKED, and a reminder is unique per person and dedupe key."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gridgov.db import session_scope
from gridgov.issues import service as issues_service
from gridgov.notifications import service as notifications_service


def run_pass(
    session: Session, *, now: datetime | None = None, limit: int = 500
) -> issues_service.JobResult:
    """Escalate, then remind, in the caller's transaction (the caller commits)."""
    now = now or datetime.now(UTC)
    result = issues_service.escalate_overdue(session, now=now, limit=limit)
    result.reminders = notifications_service.remind_issues(session, now=now)
    return result


def run_once(
    *, now: datetime | None = None, limit: int = 500, bind: Engine | None = None
) -> issues_service.JobResult:
    """One pass: escalate what is overdue, then write the reminders it calls for, and commit.
    ``bind``: another database (tests)."""
    now = now or datetime.now(UTC)
    if bind is not None:
        with Session(bind) as session, session.begin():
            return run_pass(session, now=now, limit=limit)
    with session_scope() as session:
        return run_pass(session, now=now, limit=limit)
