"""Races with real commits on several connections, in a database of this module's own: two
people acting on one issue (one wins, the other 409), and escalation jobs running at once
(each issue escalated once)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from gridgov.auth.models import User
from gridgov.auth.scope import scope_for
from gridgov.errors import Conflict
from gridgov.issues import service as issues_service
from gridgov.issues.models import Issue, IssueEvent
from gridgov.issues.schemas import IssueCreate, TransitionCreate
from gridgov.notifications import jobs
from tests.fixtures.world import World
from tests.issues.conftest import body, cst

LATE = cst(2025, 10, 20, 9)  # long past every escalation time of the issues made below


def _report(
    engine: Engine, world: World, count: int, *, now: datetime | None = None, **fields: Any
) -> list[int]:
    with Session(engine) as s, s.begin():
        scope = scope_for(s, s.get(User, world.users["village_a"]))
        ids = []
        for i in range(count):
            payload = body(lon=111.01 + i * 0.001, **fields)
            issue, _ = issues_service.report_issue(
                s, scope, IssueCreate.model_validate(payload), now=now
            )
            ids.append(issue.id)
        return ids


def _scope(session: Session, world: World, username: str):
    return scope_for(session, session.get(User, world.users[username]))


def _wait_for_lock_waiter(engine: Engine, outcome: dict[str, Any]) -> None:
    """Until another backend of this database waits on a lock (bounded; no timing asserted),
    or the other thread has finished (then there is nothing left to wait for)."""
    with engine.connect() as conn:
        for _ in range(3000):
            assert "result" not in outcome and "id" not in outcome, outcome
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            if waiting:
                return
            conn.rollback()  # pg_stat_activity is a snapshot per transaction: take a fresh one
            time.sleep(0.01)
        activity = conn.execute(
            text(
                "SELECT state, wait_event_type, wait_event, left(query, 80) FROM pg_stat_activity "
                "WHERE datname = current_database()"
            )
        ).all()
    raise AssertionError(f"the other transaction never waited on a lock: {activity}")


def test_two_people_act_at_once_one_wins(own_db: tuple[Engine, World]) -> None:
    engine, world = own_db
    (issue_id,) = _report(engine, world, 1)
    first = Session(engine)
    try:
        issues_service.transition(
            first,
            _scope(first, world, "village_a"),
            issue_id,
            TransitionCreate(action="accept", version=1),
        )  # holds the row lock, not yet committed
        outcome: dict[str, Any] = {}

        def second() -> None:
            with Session(engine) as s:
                try:
                    issues_service.transition(
                        s,
                        _scope(s, world, "town_a"),
                        issue_id,
                        TransitionCreate(action="reject", version=1, note="不属于受理范围"),
                    )
                    s.commit()
                    outcome["result"] = "applied"
                except Conflict as exc:
                    s.rollback()
                    outcome["result"] = exc.code
                except BaseException as exc:  # seen by the assertion below, not lost in a thread
                    outcome["result"] = repr(exc)

        thread = threading.Thread(target=second)
        thread.start()
        _wait_for_lock_waiter(engine, outcome)
        first.commit()
        thread.join(60)
        assert not thread.is_alive()
    finally:
        first.close()
    assert outcome["result"] == "version_conflict"
    with Session(engine) as s:
        issue = s.get(Issue, issue_id)
        assert (issue.state, issue.version) == ("ACCEPTED", 2)
        actions = s.scalars(
            select(IssueEvent.action).where(IssueEvent.issue_id == issue_id).order_by(IssueEvent.id)
        ).all()
        assert actions == ["report", "accept"]


def _escalations(engine: Engine, ids: list[int]) -> dict[int, int]:
    with Session(engine) as s:
        rows = s.execute(
            select(IssueEvent.issue_id, func.count())
            .where(IssueEvent.issue_id.in_(ids), IssueEvent.action == "escalate")
            .group_by(IssueEvent.issue_id)
        ).all()
        return dict(rows)


def test_a_second_run_skips_rows_the_first_holds(own_db: tuple[Engine, World]) -> None:
    engine, world = own_db
    ids = _report(engine, world, 3, now=cst(2025, 9, 29, 9))
    first = Session(engine)
    try:
        held = issues_service.escalate_overdue(first, now=LATE)  # locked, uncommitted
        assert set(ids) <= set(held.escalated)
        during = jobs.run_once(now=LATE, bind=engine)  # SKIP LOCKED: finds none of them
        assert not set(ids) & set(during.escalated)
        first.commit()
    finally:
        first.close()
    after = jobs.run_once(now=LATE, bind=engine)  # their escalation time has moved on
    assert not set(ids) & set(after.escalated)
    assert _escalations(engine, ids) == {i: 1 for i in ids}
    with Session(engine) as s:
        assert {s.get(Issue, i).level for i in ids} == {2}


def test_two_runs_in_parallel_escalate_each_issue_once(own_db: tuple[Engine, World]) -> None:
    engine, world = own_db
    ids = _report(engine, world, 8, category_code="0102", now=cst(2025, 9, 29, 9))
    start = threading.Barrier(2)
    results: list[list[int]] = []

    def run() -> None:
        start.wait()
        results.append(jobs.run_once(now=LATE, bind=engine).escalated)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    a, b = (set(r) & set(ids) for r in results)
    assert not a & b and a | b == set(ids)
    assert _escalations(engine, ids) == {i: 1 for i in ids}


def test_same_uuid_from_two_connections_is_stored_once(own_db: tuple[Engine, World]) -> None:
    engine, world = own_db
    payload = IssueCreate.model_validate(body(client_uuid=str(uuid.uuid4()), category_code="0400"))
    first = Session(engine)
    try:
        stored, created = issues_service.report_issue(
            first, _scope(first, world, "village_a"), payload
        )
        assert created
        stored_id = stored.id
        outcome: dict[str, Any] = {}

        def second() -> None:
            with Session(engine) as s, s.begin():
                issue, created_ = issues_service.report_issue(
                    s, _scope(s, world, "village_a"), payload
                )
                outcome["id"], outcome["created"] = issue.id, created_

        thread = threading.Thread(target=second)
        thread.start()
        _wait_for_lock_waiter(engine, outcome)  # the unique index makes the second insert wait
        first.commit()
        thread.join(60)
    finally:
        first.close()
    assert outcome == {"id": stored_id, "created": False}


def test_cli_jobs_run(db_url: str) -> None:
    """The command wiring: one pass over the run database (nothing committed there is due)."""
    from typer.testing import CliRunner

    from gridgov.cli import app

    result = CliRunner().invoke(app, ["jobs", "run", "--limit", "10"])
    assert result.exit_code == 0, result.output
    assert "自动上报 0 件事件" in result.output
