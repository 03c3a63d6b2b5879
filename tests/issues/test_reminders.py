"""站内提醒 written by the jobs: due soon (on the working calendar), overdue, escalated to a new
unit; who receives them; nothing for paused or finished issues; never twice — not on a second
run, not when two runs race (real commits on several connections)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gridgov.auth.models import User
from gridgov.auth.scope import scope_for
from gridgov.issues import service as issues_service
from gridgov.issues.models import IssueCategory
from gridgov.issues.schemas import IssueCreate
from gridgov.notifications import jobs
from gridgov.notifications import service as notifications
from gridgov.notifications.models import Notification
from tests.fixtures.world import COUNTY, GRID_A1, World
from tests.issues.conftest import act, body, cst
from tests.issues.test_concurrency import _wait_for_lock_waiter

PHOTO = [str(uuid.uuid4())]


def inbox(session: Session, world: World, issue_id: int) -> list[tuple[str, str]]:
    """(username, kind) of every reminder about the issue, in the order written."""
    names = {v: k for k, v in world.users.items()}
    rows = session.execute(
        select(Notification.user_id, Notification.kind)
        .where(Notification.entity == "issue", Notification.entity_id == issue_id)
        .order_by(Notification.id)
    ).all()
    return [(names.get(r.user_id, f"user:{r.user_id}"), r.kind) for r in rows]


def counts(result: notifications.ReminderCounts) -> tuple[int, int, int]:
    return result.due_soon, result.overdue, result.escalated


def _grid_user(session: Session, world: World, username: str, *, active: bool = True) -> int:
    user = User(
        username=username,
        display_name=username,
        password_hash="x",
        role="grid_member",
        grid_id=world.grids[GRID_A1],
        county_code=COUNTY,
        is_active=active,
    )
    session.add(user)
    session.flush()
    world.users.setdefault(username, user.id)
    return user.id


def test_due_soon_at_the_threshold_on_the_working_calendar(
    session: Session, make_issue, world: World
) -> None:
    # 0101 邻里纠纷: 24 working hours. Reported Tue 30 Sep 2025 10:00 → due Sat 11 Oct 10:00
    # (the 调休 workday after the National Day holiday, 1–8 Oct; see test_sla).
    issue = make_issue(now=cst(2025, 9, 30, 10))
    assert issue.due_at == cst(2025, 10, 11, 10)
    # 25 % of 24 h = 6 working hours before the deadline: 1 h on Sat 11 Oct (9–10) and 5 h on
    # Fri 10 Oct (12–17), so "due soon" starts Fri 10 Oct 12:00.
    # Wed 8 Oct 20:00 is 2.6 wall-clock days before the deadline (less than 25 % of the 11 days
    # the SLA spans), but 8 + 8 + 1 = 17 working hours remain: not due soon.
    assert counts(notifications.remind_issues(session, now=cst(2025, 10, 8, 20))) == (0, 0, 0)
    # Fri 10 Oct 11:59: 5 h 01 min + 1 h = 6 h 01 min left.
    assert counts(notifications.remind_issues(session, now=cst(2025, 10, 10, 11, 59))) == (0, 0, 0)
    assert inbox(session, world, issue.id) == []
    result = notifications.remind_issues(session, now=cst(2025, 10, 10, 12))
    assert counts(result) == (1, 0, 0)
    assert inbox(session, world, issue.id) == [("grid_a1", "due_soon")]
    note = session.scalar(select(Notification).where(Notification.entity_id == issue.id))
    name = session.get(IssueCategory, "0101").name
    assert note.title == f"事件即将到期：{name}（编号 {issue.id}）"
    assert note.body == "办理时限为 2025-10-11 10:00，剩余工作时间不足时限的 25%，请及时办理。"
    assert note.dedupe_key == f"issue:{issue.id}:due_soon:{int(issue.due_at.timestamp())}"
    assert (note.county_code, note.read_at) == (COUNTY, None)
    # Run again, at the same moment or later before the deadline: nothing new.
    for now in (cst(2025, 10, 10, 12), cst(2025, 10, 11, 9, 30)):
        assert counts(notifications.remind_issues(session, now=now)) == (0, 0, 0)
    assert inbox(session, world, issue.id) == [("grid_a1", "due_soon")]


def test_overdue_then_escalated_to_the_village(session: Session, make_issue, world: World) -> None:
    issue = make_issue(now=cst(2025, 9, 30, 10))  # due Sat 11 Oct 10:00, escalates Mon 13 14:00
    assert issue.escalate_at == cst(2025, 10, 13, 14)
    assert counts(notifications.remind_issues(session, now=cst(2025, 10, 11, 9, 59))) == (1, 0, 0)
    assert counts(notifications.remind_issues(session, now=cst(2025, 10, 11, 10))) == (0, 1, 0)
    overdue = session.scalar(
        select(Notification).where(
            Notification.entity_id == issue.id, Notification.kind == "overdue"
        )
    )
    assert overdue.body == (
        "办理时限 2025-10-11 10:00 已过，请尽快办理；2025-10-13 14:00 前仍未办结将自动上报上一级。"
    )
    assert counts(notifications.remind_issues(session, now=cst(2025, 10, 13, 9))) == (0, 0, 0)
    # The job's pass at the escalation time: escalated first, so no overdue for the old
    # deadline and none yet for the new one; the village's admin is told.
    result = jobs.run_pass(session, now=cst(2025, 10, 13, 14))
    assert issue.id in result.escalated
    assert counts(result.reminders) == (0, 0, 1)
    session.refresh(issue)
    assert issue.level == 2
    assert inbox(session, world, issue.id) == [
        ("grid_a1", "due_soon"),
        ("grid_a1", "overdue"),
        ("village_a", "escalated"),
    ]
    note = session.scalars(
        select(Notification).where(Notification.entity_id == issue.id).order_by(Notification.id)
    ).all()[-1]
    assert note.title.startswith("事件已上报至本单位：")
    # The village's SLA restarts: 24 h from Mon 13 Oct 14:00 → 3 + 8 + 8 + 5 → Thu 16 Oct 14:00.
    assert issue.due_at == cst(2025, 10, 16, 14)
    assert note.body == "事件已上报至村级，新的办理时限为 2025-10-16 14:00，请及时受理。"
    # The new deadline reminds again (another dedupe key), now to the village.
    assert counts(notifications.remind_issues(session, now=cst(2025, 10, 16, 12))) == (1, 0, 0)
    assert inbox(session, world, issue.id)[-1] == ("village_a", "due_soon")


def test_manual_escalation_tells_the_new_unit_at_once(
    session: Session, make_issue, scope_of, world: World
) -> None:
    issue = make_issue(now=cst(2025, 9, 29, 9))
    act(session, scope_of("grid_a1"), issue, "escalate", now=cst(2025, 9, 29, 10))
    assert inbox(session, world, issue.id) == [("village_a", "escalated")]
    act(session, scope_of("village_a"), issue, "escalate", now=cst(2025, 9, 29, 11))
    assert (issue.level, issue.unit_id) == (3, world.units["439902100"])
    assert inbox(session, world, issue.id) == [("village_a", "escalated"), ("town_a", "escalated")]
    # The job finds nothing left to tell (the township's notice exists; the village's level is
    # no longer the issue's level).
    assert counts(notifications.remind_issues(session, now=cst(2025, 9, 29, 12))) == (0, 0, 0)
    act(session, scope_of("town_a"), issue, "escalate", now=cst(2025, 9, 29, 13))
    assert inbox(session, world, issue.id)[-1] == ("county", "escalated")
    # At the county an overdue issue is never escalated, so it stays "overdue" (no auto-report).
    assert counts(notifications.remind_issues(session, now=cst(2025, 12, 1, 9)))[1] == 1
    note = session.scalars(
        select(Notification).where(
            Notification.entity_id == issue.id, Notification.kind == "overdue"
        )
    ).one()
    assert note.body.endswith("事件已在县级，不再自动上报。")
    assert (session.get(User, note.user_id).username, note.kind) == ("county", "overdue")


def test_recipients_are_the_handler_or_the_grids_active_users(
    session: Session, make_issue, scope_of, world: World
) -> None:
    second = _grid_user(session, world, "grid_a1_second")
    _grid_user(session, world, "grid_a1_gone", active=False)
    # 0201 消防安全隐患: 8 h from Mon 29 Sep 09:00 → due 17:00; due soon from 15:00 (2 h left).
    waiting = make_issue(category_code="0201", photo_ids=PHOTO, now=cst(2025, 9, 29, 9))
    handled = make_issue(category_code="0201", photo_ids=PHOTO, now=cst(2025, 9, 29, 9))
    village = scope_of("village_a")
    act(session, village, handled, "accept", now=cst(2025, 9, 29, 10))
    act(session, village, handled, "assign", now=cst(2025, 9, 29, 10))
    act(session, scope_of("grid_a1"), handled, "start", now=cst(2025, 9, 29, 11))
    assert handled.handler_id == world.users["grid_a1"]
    assert counts(notifications.remind_issues(session, now=cst(2025, 9, 29, 15))) == (3, 0, 0)
    # No handler: every active user of the grid (not the inactive one, not the admins).
    assert sorted(inbox(session, world, waiting.id)) == [
        ("grid_a1", "due_soon"),
        ("grid_a1_second", "due_soon"),
    ]
    assert inbox(session, world, handled.id) == [("grid_a1", "due_soon")]
    assert (
        second
        in session.scalars(
            select(Notification.user_id).where(Notification.entity_id == waiting.id)
        ).all()
    )


def test_paused_and_finished_issues_get_no_reminder(
    session: Session, make_issue, scope_of, world: World
) -> None:
    village = scope_of("village_a")
    held = make_issue(category_code="0201", photo_ids=PHOTO, now=cst(2025, 9, 29, 9))
    act(session, village, held, "accept", now=cst(2025, 9, 29, 10))
    act(session, village, held, "assign", now=cst(2025, 9, 29, 10))
    act(session, village, held, "start", now=cst(2025, 9, 29, 11))
    act(session, village, held, "hold", note="等待消防部门检测", now=cst(2025, 9, 29, 13))
    done = make_issue(category_code="0201", photo_ids=PHOTO, now=cst(2025, 9, 29, 9))
    act(session, scope_of("grid_a1"), done, "self_resolve", now=cst(2025, 9, 29, 10))
    rejected = make_issue(category_code="0201", photo_ids=PHOTO, now=cst(2025, 9, 29, 9))
    act(session, village, rejected, "reject", note="重复上报", now=cst(2025, 9, 29, 10))
    control = make_issue(category_code="0201", photo_ids=PHOTO, now=cst(2025, 9, 29, 9))
    # 16:00: 1 h left of 8 (due soon); Tue 09:00 and a month later: past 17:00 (overdue).
    for now in (cst(2025, 9, 29, 16), cst(2025, 9, 30, 9), cst(2025, 10, 29, 9)):
        notifications.remind_issues(session, now=now)
    for issue in (held, done, rejected):
        assert inbox(session, world, issue.id) == [], issue.state
    assert [k for _, k in inbox(session, world, control.id)][:2] == ["due_soon", "overdue"]


# -- races (own database, real commits) ---------------------------------------------------------


def _report_due(engine: Engine, world: World, count: int) -> list[int]:
    """``count`` 0201 issues (8 h) reported Mon 29 Sep 2025 09:00 in grid 东村-001: due 17:00,
    due soon from 15:00."""
    with Session(engine) as s, s.begin():
        scope = scope_for(s, s.get(User, world.users["village_a"]))
        ids = []
        for i in range(count):
            payload = body(lon=111.01 + i * 0.001, category_code="0201", photo_ids=PHOTO)
            issue, _ = issues_service.report_issue(
                s, scope, IssueCreate.model_validate(payload), now=cst(2025, 9, 29, 9)
            )
            ids.append(issue.id)
        return ids


def _rows(engine: Engine, ids: list[int]) -> list[tuple[int, int, str]]:
    with Session(engine) as s:
        return [
            tuple(r)
            for r in s.execute(
                select(Notification.entity_id, Notification.user_id, Notification.kind)
                .where(Notification.entity == "issue", Notification.entity_id.in_(ids))
                .order_by(Notification.entity_id)
            )
        ]


def test_a_second_pass_waits_for_the_first_and_adds_nothing(
    own_db: tuple[Engine, World],
) -> None:
    engine, world = own_db
    ids = _report_due(engine, world, 3)
    now = cst(2025, 9, 29, 15, 30)
    first = Session(engine)
    try:
        held = notifications.remind_issues(first, now=now)  # written, not yet committed
        assert held.due_soon >= 3
        outcome: dict[str, Any] = {}

        def second() -> None:
            try:
                outcome["result"] = jobs.run_once(now=now, bind=engine).reminders
            except BaseException as exc:  # seen by the assertion below, not lost in a thread
                outcome["result"] = repr(exc)

        thread = threading.Thread(target=second)
        thread.start()
        _wait_for_lock_waiter(engine, outcome)  # the unique index makes its insert wait
        first.commit()
        thread.join(60)
        assert not thread.is_alive()
    finally:
        first.close()
    assert isinstance(outcome["result"], notifications.ReminderCounts), outcome
    assert counts(outcome["result"]) == (0, 0, 0)
    grid_a1 = world.users["grid_a1"]
    assert _rows(engine, ids) == [(i, grid_a1, "due_soon") for i in ids]


def test_two_passes_in_parallel_remind_each_person_once(own_db: tuple[Engine, World]) -> None:
    engine, world = own_db
    ids = _report_due(engine, world, 8)
    now = cst(2025, 9, 29, 16)  # 1 h left of 8: due soon
    start = threading.Barrier(2)
    results: list[Any] = []

    def run() -> None:
        start.wait()
        try:
            results.append(jobs.run_once(now=now, bind=engine).reminders)
        except BaseException as exc:
            results.append(repr(exc))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, notifications.ReminderCounts) for r in results), results
    rows = _rows(engine, ids)
    grid_a1 = world.users["grid_a1"]
    assert rows == [(i, grid_a1, "due_soon") for i in ids]
    # Together the two passes wrote each of them once (the first test's issues, due at the
    # same 17:00, were told at 15:30 already: nothing new there).
    assert sum(r.due_soon for r in results) == len(ids)
    assert sum(r.overdue + r.escalated for r in results) == 0


def test_cli_jobs_run_prints_the_reminder_counts(db_url: str) -> None:
    """The command's output: the escalations, then a table of new reminders by kind."""
    from typer.testing import CliRunner

    from gridgov.cli import app

    result = CliRunner().invoke(app, ["jobs", "run", "--limit", "10"])
    assert result.exit_code == 0, result.output
    assert "自动上报 0 件事件" in result.output
    for label in ("新发站内提醒", "即将到期", "已超期", "上报至本单位", "合计"):
        assert label in result.output, result.output
    assert "同步变更日志：清理被覆盖的变更" in result.output  # the same pass prunes the sync log
