"""The issue state machine (DESIGN §7), in one table: which action moves which state where, and
which roles may take it. The service, the API's error listing the allowed actions, and the
tests all read ``TRANSITIONS``; nothing else decides what may happen to an issue.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gridgov.auth.permissions import Role


class State(StrEnum):
    REPORTED = "REPORTED"
    ACCEPTED = "ACCEPTED"  # 立案
    ASSIGNED = "ASSIGNED"  # 派遣
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"  # 处置反馈
    VERIFIED = "VERIFIED"  # 核查
    CLOSED = "CLOSED"  # 结案
    SELF_RESOLVED = "SELF_RESOLVED"  # fixed on the spot by the grid member
    ON_HOLD = "ON_HOLD"  # approved extension: the SLA clock stops
    RETURNED = "RETURNED"  # handed back by the assignee (wrong unit, wrong person)
    REWORK = "REWORK"  # verification failed, or reopened after closing
    REJECTED = "REJECTED"
    MERGED = "MERGED"
    CANCELLED = "CANCELLED"


class Action(StrEnum):
    accept = "accept"
    self_resolve = "self_resolve"
    reject = "reject"
    merge = "merge"
    cancel = "cancel"
    assign = "assign"
    start = "start"
    return_ = "return"
    hold = "hold"
    resume = "resume"
    resolve = "resolve"
    verify = "verify"
    rework = "rework"
    close = "close"
    reopen = "reopen"
    escalate = "escalate"


ADMINS = frozenset({Role.village_admin, Role.township_admin, Role.county_admin})
WORKERS = ADMINS | {Role.grid_member}

TERMINAL = frozenset({State.REJECTED, State.MERGED, State.CANCELLED})
# States whose SLA clock runs (ON_HOLD is paused; RESOLVED onwards waits on verification).
ACTIVE = frozenset(
    {
        State.REPORTED,
        State.ACCEPTED,
        State.ASSIGNED,
        State.IN_PROGRESS,
        State.RETURNED,
        State.REWORK,
    }
)
# Where an escalated issue lands: the next unit has to take it on (立案) again.
ESCALATED_STATE = State.ACCEPTED
TOP_LEVEL = 4
LEVEL_NAMES = {1: "网格", 2: "村", 3: "乡镇", 4: "县"}
# What a page or a ledger shows for each state.
STATE_LABELS = {
    "REPORTED": "已上报",
    "ACCEPTED": "已立案",
    "ASSIGNED": "已派遣",
    "IN_PROGRESS": "处置中",
    "ON_HOLD": "延期中",
    "RETURNED": "已退回",
    "REWORK": "返工",
    "RESOLVED": "已处置",
    "SELF_RESOLVED": "自行处置",
    "VERIFIED": "已核查",
    "CLOSED": "已结案",
    "REJECTED": "不予受理",
    "MERGED": "已合并",
    "CANCELLED": "已撤销",
}


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[State]
    target: State | None  # None: the state stays as decided by the service (escalate)
    roles: frozenset[Role]
    reason_required: bool = False


TRANSITIONS: tuple[Transition, ...] = (
    Transition(Action.accept, frozenset({State.REPORTED}), State.ACCEPTED, ADMINS),
    Transition(Action.self_resolve, frozenset({State.REPORTED}), State.SELF_RESOLVED, WORKERS),
    Transition(
        Action.reject, frozenset({State.REPORTED, State.ACCEPTED}), State.REJECTED, ADMINS, True
    ),
    Transition(
        Action.merge, frozenset({State.REPORTED, State.ACCEPTED}), State.MERGED, ADMINS, True
    ),
    Transition(Action.cancel, frozenset({State.REPORTED}), State.CANCELLED, WORKERS, True),
    Transition(Action.assign, frozenset({State.ACCEPTED, State.RETURNED}), State.ASSIGNED, ADMINS),
    Transition(Action.start, frozenset({State.ASSIGNED, State.REWORK}), State.IN_PROGRESS, WORKERS),
    Transition(Action.return_, frozenset({State.ASSIGNED}), State.RETURNED, WORKERS, True),
    Transition(Action.hold, frozenset({State.IN_PROGRESS}), State.ON_HOLD, ADMINS, True),
    Transition(Action.resume, frozenset({State.ON_HOLD}), State.IN_PROGRESS, WORKERS),
    Transition(Action.resolve, frozenset({State.IN_PROGRESS}), State.RESOLVED, WORKERS),
    Transition(
        Action.verify, frozenset({State.RESOLVED, State.SELF_RESOLVED}), State.VERIFIED, ADMINS
    ),
    Transition(
        Action.rework,
        frozenset({State.RESOLVED, State.SELF_RESOLVED}),
        State.REWORK,
        ADMINS,
        True,
    ),
    Transition(Action.close, frozenset({State.VERIFIED}), State.CLOSED, ADMINS),
    Transition(Action.reopen, frozenset({State.CLOSED}), State.REWORK, WORKERS, True),
    Transition(Action.escalate, ACTIVE, ESCALATED_STATE, WORKERS),
)

_BY_KEY: dict[tuple[State, Action], Transition] = {
    (source, t.action): t for t in TRANSITIONS for source in t.sources
}


# How high a role reaches: a role handles issues up to its own level, never above it (a
# village admin no longer acts on an issue escalated to the township, though it still sees it).
ROLE_LEVEL = {
    Role.grid_member: 1,
    Role.village_admin: 2,
    Role.township_admin: 3,
    Role.county_admin: 4,
    Role.gis_editor: 0,
    Role.auditor: 0,
}


def find(state: str, action: str, role: str, level: int = 1) -> Transition | None:
    """The transition ``role`` may take with ``action`` from ``state`` on an issue at ``level``;
    None if forbidden."""
    t = _BY_KEY.get((State(state), Action(action)))
    if t is None or Role(role) not in t.roles or ROLE_LEVEL[Role(role)] < level:
        return None
    if t.action is Action.escalate and level >= TOP_LEVEL:
        return None  # the county is the top: nowhere to escalate to
    return t


def allowed_actions(state: str, role: str, level: int = 1) -> list[str]:
    """Actions ``role`` may take on an issue in ``state`` at ``level`` (listed in a refused
    transition and in every issue read)."""
    return [t.action.value for t in TRANSITIONS if find(state, t.action, role, level) is not None]
