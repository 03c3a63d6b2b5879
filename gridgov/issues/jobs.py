"""Background jobs for 事件: escalating overdue issues, then reminding people (站内提醒) of
issues nearly due, overdue, or escalated to them. Safe to run several at once: each run takes
the issues it escalates with SKIP LOCKED, and a reminder is unique per person and dedupe key."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gridgov.db import session_scope
from gridgov.issues import service as issues_service
from gridgov.notifications import service as notifications_service

log = logging.getLogger("gridgov.jobs")


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


def serve(interval_seconds: int, *, limit: int = 500) -> None:  # pragma: no cover - runs forever
    """Run a pass every ``interval_seconds`` until interrupted; a failed pass is logged."""
    while True:
        try:
            result = run_once(limit=limit)
            if result.escalated or result.reminders.total:
                log.info(
                    "escalated %d issues; reminders: %d due soon, %d overdue, %d escalated",
                    len(result.escalated),
                    result.reminders.due_soon,
                    result.reminders.overdue,
                    result.reminders.escalated,
                )
        except Exception:
            log.exception("jobs pass failed")
        time.sleep(interval_seconds)
