"""Deadlines on the working calendar: set at report, paused by ON_HOLD, escalation at the
configured factor of the SLA (restarting it one level up)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridgov.issues import service as issues_service
from gridgov.issues.models import IssueEvent
from tests.fixtures.world import VILLAGE_A, World
from tests.issues.conftest import act, cst

PHOTO = [str(uuid.uuid4())]


def test_deadlines_at_report_span_the_national_day(session: Session, make_issue) -> None:
    # 0101 邻里纠纷: 24 working hours; reported Tue 30 Sep 2025 10:00 (Asia/Shanghai).
    issue = make_issue(now=cst(2025, 9, 30, 10))
    assert issue.sla_hours == 24
    assert issue.due_at == cst(2025, 10, 11, 10)  # the 调休 Saturday
    # Escalation at 1.5 × 24 = 36 h: 7 + 8 (9 Oct) + 8 (10 Oct) + 8 (11 Oct) = 31, +5 on Mon 13.
    assert issue.escalate_at == cst(2025, 10, 13, 14)


def test_on_hold_pauses_the_clock(session: Session, make_issue, scope_of) -> None:
    # 0201 消防安全隐患: 8 h; reported Mon 29 Sep 2025 09:00, due 17:00 the same day.
    issue = make_issue(category_code="0201", photo_ids=PHOTO, now=cst(2025, 9, 29, 9))
    assert issue.due_at == cst(2025, 9, 29, 17)
    village = scope_of("village_a")
    act(session, village, issue, "accept", now=cst(2025, 9, 29, 10))
    act(session, village, issue, "assign", now=cst(2025, 9, 29, 10))
    act(session, village, issue, "start", now=cst(2025, 9, 29, 11))
    act(session, village, issue, "hold", note="等待消防部门检测", now=cst(2025, 9, 29, 13))
    # Nothing escalates while on hold, however late it gets.
    assert issues_service.escalate_overdue(session, now=cst(2025, 12, 1, 9)).escalated == []
    # Held 13:00 Mon → 11:00 Tue: 4 + 2 = 6 working hours; the due time moves by as much.
    act(session, village, issue, "resume", now=cst(2025, 9, 30, 11))
    assert issue.due_at == cst(2025, 9, 30, 15)
    # escalate_at was Tue 13:00 (12 h); + 6 h → 4 h to 17:00, 1–8 Oct off, 9 Oct 9:00 + 2 h.
    assert issue.escalate_at == cst(2025, 10, 9, 11)
    assert issue.extended
    act(session, scope_of("grid_a1"), issue, "resolve", now=cst(2025, 9, 30, 14, 59))
    assert issue.on_time is True


def test_overdue_issue_escalates_at_the_factor(session: Session, make_issue, world: World) -> None:
    issue = make_issue(category_code="0201", photo_ids=PHOTO, now=cst(2025, 9, 29, 9))
    # 8 h × 1.5 = 12 working hours → Tue 30 Sep 13:00.
    assert issue.escalate_at == cst(2025, 9, 30, 13)
    assert issues_service.escalate_overdue(session, now=cst(2025, 9, 30, 12, 59)).escalated == []
    result = issues_service.escalate_overdue(session, now=cst(2025, 9, 30, 13))
    assert result.escalated == [issue.id]
    session.refresh(issue)
    assert (issue.level, issue.state, issue.unit_id) == (2, "ACCEPTED", world.units[VILLAGE_A])
    # The SLA restarts at the village: 8 h from Tue 13:00 → 4 h, then 9 Oct 9:00 + 4 h.
    assert issue.sla_started_at == cst(2025, 9, 30, 13)
    assert issue.due_at == cst(2025, 10, 9, 13)
    event = session.scalars(
        select(IssueEvent).where(IssueEvent.issue_id == issue.id).order_by(IssueEvent.id.desc())
    ).first()
    assert (event.action, event.user_id, event.from_level, event.to_level) == (
        "escalate",
        None,
        1,
        2,
    )
    # Already escalated: the same moment again finds nothing.
    assert issues_service.escalate_overdue(session, now=cst(2025, 9, 30, 13)).escalated == []
