"""The state machine: every state × action × role, allowed or 409; the rules around it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gridgov.auth.permissions import Role
from gridgov.auth.scope import Scope
from gridgov.errors import Conflict, RuleViolation
from gridgov.issues import workflow
from gridgov.issues.models import Issue, IssueEvent
from gridgov.issues.workflow import Action, State
from tests.issues.conftest import act, cst

USER_BY_ROLE = {
    Role.grid_member: "grid_a1",
    Role.village_admin: "village_a",
    Role.township_admin: "town_a",
    Role.county_admin: "county",
    Role.gis_editor: "gis",
    Role.auditor: "auditor",
}


def test_table_is_well_formed() -> None:
    # Each (state, action) has one transition; terminal states and CLOSED lead nowhere else.
    seen: set[tuple[State, Action]] = set()
    for t in workflow.TRANSITIONS:
        for source in t.sources:
            assert (source, t.action) not in seen
            seen.add((source, t.action))
        assert not (t.sources & workflow.TERMINAL)
    assert {a for _, a in seen} == set(Action)
    reason = {t.action for t in workflow.TRANSITIONS if t.reason_required}
    assert {Action.reject, Action.merge, Action.cancel} <= reason


def test_hand_written_spot_checks() -> None:
    """A few rows written out by hand, so the table cannot drift without a test noticing."""
    assert workflow.find("REPORTED", "accept", "village_admin").target is State.ACCEPTED
    assert workflow.find("REPORTED", "accept", "grid_member") is None
    assert workflow.find("REPORTED", "self_resolve", "grid_member").target is State.SELF_RESOLVED
    assert workflow.find("RESOLVED", "verify", "grid_member") is None
    assert workflow.find("IN_PROGRESS", "hold", "township_admin").target is State.ON_HOLD
    assert workflow.find("CLOSED", "reopen", "grid_member").target is State.REWORK
    assert workflow.find("CANCELLED", "reopen", "county_admin") is None
    assert workflow.find("ON_HOLD", "escalate", "county_admin") is None
    for action in Action:
        assert workflow.find("IN_PROGRESS", action, "auditor") is None
        assert workflow.find("IN_PROGRESS", action, "gis_editor") is None
    assert workflow.allowed_actions("REPORTED", "grid_member") == [
        "self_resolve",
        "cancel",
        "escalate",
    ]


def test_every_state_action_role(
    session: Session, make_issue: Callable[..., Issue], scope_of: Callable[[str], Scope]
) -> None:
    """14 states × 16 actions × 6 roles through the service: allowed moves to the table's
    target; anything else is 409 ``transition_not_allowed`` listing the allowed actions. Each
    state is tried at one of the four levels in turn (the level rule cuts across states)."""
    issue = make_issue()
    scopes = {role: scope_of(name) for role, name in USER_BY_ROLE.items()}
    units = {1: None, 2: issue.village_id, 3: _unit_id(session, "439902100")}
    units[4] = _unit_id(session, "439902")
    now = cst(2026, 3, 2, 10)
    checked = 0
    for i, state in enumerate(State):
        level = 1 + i % 4
        for role, scope in scopes.items():
            for action in Action:
                savepoint = session.begin_nested()
                issue.state, issue.level, issue.unit_id = state.value, level, units[level]
                issue.closed_at = now - timedelta(days=1)  # inside the reopen window
                issue.resolved_by = issue.handler_id = None  # nobody is verifying their own work
                session.flush()
                expected = workflow.find(state, action, role, level)
                try:
                    act(session, scope, issue, action.value, note="原因说明", now=now)
                except Conflict as exc:
                    assert expected is None, (state, action, role, level, exc)
                    assert exc.code == "transition_not_allowed"
                    allowed = workflow.allowed_actions(state, role, level)
                    assert exc.extra["allowed_actions"] == allowed
                else:
                    assert expected is not None, (state, action, role, level)
                    assert issue.state == expected.target.value, (state, action, role)
                    if action is Action.escalate:
                        assert issue.level == level + 1
                finally:
                    savepoint.rollback()
                checked += 1
    assert checked == len(State) * len(Action) * len(Role)


def _unit_id(session: Session, code: str) -> int:
    return session.scalar(text("SELECT id FROM admin_units WHERE code = :c"), {"c": code})


def test_a_role_acts_up_to_its_own_level(session: Session, make_issue, scope_of) -> None:
    assert workflow.find("ACCEPTED", "assign", "village_admin", 2).target is State.ASSIGNED
    assert workflow.find("ACCEPTED", "assign", "village_admin", 3) is None
    assert workflow.find("ACCEPTED", "assign", "township_admin", 3).target is State.ASSIGNED
    assert workflow.find("ASSIGNED", "start", "grid_member", 2) is None
    assert workflow.allowed_actions("ACCEPTED", "village_admin", 3) == []
    assert workflow.find("ACCEPTED", "escalate", "county_admin", 4) is None
    issue = make_issue()
    act(session, scope_of("village_a"), issue, "escalate")  # to the village
    act(session, scope_of("village_a"), issue, "escalate")  # to the township
    with pytest.raises(Conflict) as err:
        act(session, scope_of("village_a"), issue, "assign")
    assert err.value.extra["allowed_actions"] == []
    act(session, scope_of("town_a"), issue, "assign")
    assert (issue.level, issue.state) == (3, "ASSIGNED")


def test_reason_is_required(session: Session, make_issue, scope_of) -> None:
    issue = make_issue()
    for action in ("reject", "merge", "cancel"):
        with pytest.raises(RuleViolation) as err:
            act(session, scope_of("village_a"), issue, action, note="  ")
        assert err.value.errors[0].code == "reason_required"
    act(session, scope_of("village_a"), issue, "reject", note="不属于受理范围")
    assert issue.state == "REJECTED" and issue.close_reason == "不属于受理范围"


def test_verifier_is_not_the_handler(session: Session, make_issue, scope_of) -> None:
    issue = make_issue()
    village = scope_of("village_a")
    act(session, village, issue, "accept")
    act(session, village, issue, "assign")
    act(session, scope_of("grid_a1"), issue, "start")
    act(session, scope_of("grid_a1"), issue, "resolve")
    with pytest.raises(Conflict) as err:
        act(session, scope_of("grid_a1"), issue, "verify")
    assert err.value.code == "transition_not_allowed"  # a grid member never verifies
    act(session, village, issue, "rework", note="现场未处理完")
    act(session, village, issue, "start")
    act(session, village, issue, "resolve")
    with pytest.raises(Conflict) as err:
        act(session, village, issue, "verify")
    assert err.value.code == "verifier_is_handler"
    act(session, scope_of("town_a"), issue, "verify")
    act(session, village, issue, "close", rating=4)
    assert (issue.state, issue.rating, issue.rework_count) == ("CLOSED", 4, 1)
    actions = [e.action for e in _timeline(session, issue)]
    assert actions == [
        "report",
        "accept",
        "assign",
        "start",
        "resolve",
        "rework",
        "start",
        "resolve",
        "verify",
        "close",
    ]


def test_reopen_only_within_seven_days(session: Session, make_issue, scope_of) -> None:
    closed = cst(2026, 3, 2, 10)
    issue = make_issue(state="CLOSED")
    issue.closed_at = closed
    session.flush()
    with pytest.raises(Conflict) as err:
        act(
            session,
            scope_of("grid_a1"),
            issue,
            "reopen",
            note="又坏了",
            now=closed + timedelta(days=8),
        )
    assert err.value.code == "reopen_window_passed"
    act(
        session, scope_of("grid_a1"), issue, "reopen", note="又坏了", now=closed + timedelta(days=6)
    )
    assert issue.state == "REWORK" and issue.rework_count == 1 and issue.closed_at is None


def test_stale_version_is_a_conflict(session: Session, make_issue, scope_of) -> None:
    issue = make_issue()
    seen = issue.version
    act(session, scope_of("village_a"), issue, "accept")
    from gridgov.issues import service
    from gridgov.issues.schemas import TransitionCreate

    with pytest.raises(Conflict) as err:
        service.transition(
            session,
            scope_of("town_a"),
            issue.id,
            TransitionCreate(action="reject", version=seen, note="重复"),
        )
    assert err.value.code == "version_conflict"
    assert err.value.extra["current_version"] == issue.version == seen + 1


def test_escalation_by_hand_climbs_to_the_county_and_stops(
    session: Session, make_issue, scope_of
) -> None:
    issue = make_issue()
    county = scope_of("county")
    for level in (2, 3, 4):
        act(session, county, issue, "escalate")
        assert (issue.level, issue.state) == (level, "ACCEPTED")
    assert issue.unit_id == session.scalar(
        text("SELECT id FROM admin_units WHERE level = 'county' AND code = '439902'")
    )
    with pytest.raises(Conflict) as err:
        act(session, county, issue, "escalate")
    assert err.value.code == "transition_not_allowed"
    assert "escalate" not in err.value.extra["allowed_actions"]
    levels = [(e.from_level, e.to_level) for e in _timeline(session, issue)][1:]
    assert levels == [(1, 2), (2, 3), (3, 4)]


def test_timeline_is_append_only(session: Session, make_issue) -> None:
    issue = make_issue()
    for statement in (
        "UPDATE issue_events SET note = 'x' WHERE issue_id = :id",
        "DELETE FROM issue_events WHERE issue_id = :id",
    ):
        with pytest.raises(DBAPIError) as err, session.begin_nested():
            session.execute(text(statement), {"id": issue.id})
        assert "append-only" in str(err.value)
    assert len(_timeline(session, issue)) == 1


def _timeline(session: Session, issue: Issue) -> list[IssueEvent]:
    return list(
        session.scalars(
            select(IssueEvent).where(IssueEvent.issue_id == issue.id).order_by(IssueEvent.id)
        )
    )
