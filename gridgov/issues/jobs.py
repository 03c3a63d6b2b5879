"""Background jobs for 事件: escalating overdue issues. Safe to run several at once (each run
takes the rows it works on with SKIP LOCKED and commits them together)."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gridgov.db import session_scope
from gridgov.issues import service as issues_service

log = logging.getLogger("gridgov.jobs")


def run_once(
    *, now: datetime | None = None, limit: int = 500, bind: Engine | None = None
) -> issues_service.JobResult:
    """One pass: escalate what is overdue and commit. ``bind``: another database (tests)."""
    if bind is not None:
        with Session(bind) as session, session.begin():
            return issues_service.escalate_overdue(session, now=now, limit=limit)
    with session_scope() as session:
        return issues_service.escalate_overdue(session, now=now, limit=limit)


def serve(interval_seconds: int, *, limit: int = 500) -> None:  # pragma: no cover - runs forever
    """Run a pass every ``interval_seconds`` until interrupted; a failed pass is logged."""
    while True:
        try:
            result = run_once(limit=limit)
            if result.escalated:
                log.info("escalated %d issues", len(result.escalated))
        except Exception:
            log.exception("jobs pass failed")
        time.sleep(interval_seconds)
