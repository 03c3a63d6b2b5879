"""Background jobs for 事件: escalating overdue issues, then reminding people (站内提醒) of
issues nearly due, overdue, or escalated to them. Safe to run several at once: each run takes
the issues it escalates with SKIP LOCKED, and a reminder is unique per person and dedupe key.

Here, not in ``gridgov.issues``: a pass composes both domains, and notifications sit above
issues (they read issues' states; issues never import notifications)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gridgov.db import session_scope
from gridgov.issues import service as issues_service
from gridgov.notifications import service as notifications_service


@dataclass
class JobResult:
    escalated: list[int]
    reminders: notifications_service.ReminderCounts = field(
        default_factory=notifications_service.ReminderCounts
    )


def run_pass(session: Session, *, now: datetime | None = None, limit: int = 500) -> JobResult:
    """Escalate, then remind, in the caller's transaction (the caller commits)."""
    now = now or datetime.now(UTC)
    escalated = issues_service.escalate_overdue(session, now=now, limit=limit).escalated
    return JobResult(escalated, notifications_service.remind_issues(session, now=now))


def run_once(
    *, now: datetime | None = None, limit: int = 500, bind: Engine | None = None
) -> JobResult:
    """One pass: escalate what is overdue, then write the reminders it calls for, and commit.
    ``bind``: another database (tests)."""
    now = now or datetime.now(UTC)
    if bind is not None:
        with Session(bind) as session, session.begin():
            return run_pass(session, now=now, limit=limit)
    with session_scope() as session:
        return run_pass(session, now=now, limit=limit)
