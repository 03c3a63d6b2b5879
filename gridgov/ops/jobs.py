"""The periodic work of every domain, for ``gridgov jobs run`` / ``gridgov jobs serve``:
事件 escalations and reminders and the dashboard rollups each pass; now and then, pruning of
the sync change log and compaction of the map layers' change notes. Each part commits on its
own and is safe to run in several processes at once."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from gridgov.dashboard import rollups
from gridgov.db import session_scope
from gridgov.gis import service as gis_service
from gridgov.notifications import jobs as issue_jobs
from gridgov.notifications.jobs import JobResult
from gridgov.sync import service as sync_service

log = logging.getLogger("gridgov.jobs")

PRUNE_EVERY_SECONDS = 3600  # pruning scans the whole change log: hourly is plenty


@dataclass
class PassResult:
    issues: JobResult
    prune: sync_service.PruneResult | None
    layer_changes_removed: int | None = None
    dashboard: rollups.RefreshResult | None = None


def run_once(*, limit: int = 500, prune: bool = True) -> PassResult:
    issues = issue_jobs.run_once(limit=limit)
    # After the escalations, so that the dashboards show them at once.
    with session_scope() as session:
        dashboard = rollups.refresh(session)
    if not prune:
        return PassResult(issues, None, dashboard=dashboard)
    with session_scope() as session:
        pruned = sync_service.prune(session)
    with session_scope() as session:
        removed = gis_service.compact_changes(session)
    return PassResult(issues, pruned, removed, dashboard)


def serve(interval_seconds: int, *, limit: int = 500) -> None:  # pragma: no cover - runs forever
    """A pass every ``interval_seconds`` (pruning at most hourly) until interrupted; a failed
    pass is logged and the next one tried."""
    last_prune = 0.0
    while True:
        try:
            due = time.monotonic() - last_prune >= PRUNE_EVERY_SECONDS
            result = run_once(limit=limit, prune=due)
            if due:
                last_prune = time.monotonic()
            issues = result.issues
            if issues.escalated or issues.reminders.total:
                log.info(
                    "escalated %d issues; reminders: %d due soon, %d overdue, %d escalated",
                    len(issues.escalated),
                    issues.reminders.due_soon,
                    issues.reminders.overdue,
                    issues.reminders.escalated,
                )
            if result.prune and (result.prune.superseded or result.prune.tombstones):
                log.info(
                    "sync log pruned: %d superseded, %d tombstones",
                    result.prune.superseded,
                    result.prune.tombstones,
                )
        except Exception:
            log.exception("jobs pass failed")
        time.sleep(interval_seconds)
