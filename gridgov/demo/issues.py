"""The demo year's 事件, moved through the real workflow at simulated times.

Grid members report what they see at points of their grid (``issues_service.report_issue`` with
``now`` = the moment of the report: grid and village by ``ST_Covers``, duplicates linked, SLA
due times on the county's working calendar with its 调休 days). Then every step is
``issues_service.transition`` at its own simulated ``now``, by the account whose role and level
may take it (the grid member at grid level, the village secretary, the township, the county),
so the timeline, deadlines, holds, ratings and KPIs are what the service computes. The
``escalate_overdue`` job runs at the simulated minute an open issue passes its escalation
time, as ``gridgov jobs serve`` would have; the last fortnight's daily job passes and a final one
at the end write the reminders (站内提醒) of those days.

Each issue draws its fate when it is reported — most are accepted, assigned, handled,
verified and closed with a rating; some are fixed on the spot (SELF_RESOLVED), rejected,
merged with a duplicate or withdrawn; some are put on hold (approved extension), handed back,
sent back for rework, reopened after closing, or escalated up to the township or county — and
the people of its village decide how fast things happen: a weak village's secretary lets issues
lie until the job escalates them. The issues still open at the end are simply where their
story had got to; the last few of the year stop at chosen states, so that every state of the
workflow is present even in a small county.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.auth.models import User
from gridgov.auth.scope import Scope, scope_for
from gridgov.db import raw_connection
from gridgov.demo.people import People
from gridgov.demo.timeline import CST, Year, rng
from gridgov.demo.visits import tiny_jpeg
from gridgov.errors import DomainError
from gridgov.issues import calendar
from gridgov.issues import service as issues_service
from gridgov.issues.models import Issue
from gridgov.issues.schemas import IssueCreate, TransitionCreate
from gridgov.issues.workflow import Action, State
from gridgov.notifications import jobs as issue_jobs
from gridgov.visits.storage import BlobStore

Progress = Callable[[str, int, int], None]

HOUSEHOLDS_PER_ISSUE = 75
TWIN_SHARE = 0.04
MIN_ISSUES = 120

# Share of reports per category group (MM) and its seasons (month → weight factor).
GROUPS: dict[str, tuple[float, dict[int, float]]] = {
    "01": (0.17, {1: 1.6, 2: 1.8, 12: 1.3}),  # 矛盾纠纷: around 春节 families are home
    "02": (0.09, {5: 1.5, 6: 1.8, 7: 1.6, 1: 1.3}),  # 安全隐患: 汛期, winter fires
    "03": (0.05, {}),
    "04": (0.19, {}),
    "05": (0.16, {2: 1.4, 8: 1.3}),
    "06": (0.12, {6: 1.6, 7: 1.4}),
    "07": (0.04, {}),
    "08": (0.07, {4: 2.0, 5: 1.8, 7: 2.0, 10: 1.5, 12: 0.4, 1: 0.3}),
    "09": (0.04, {1: 1.5, 2: 1.4}),
    "10": (0.05, {}),
    "99": (0.02, {}),
}
DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "01": ("两户村民因宅基地边界发生争执", "邻里因排水沟堵塞引发口角",
           "兄弟之间因老人赡养问题产生矛盾", "村民因山林界址不清发生纠纷",
           "夫妻感情不和，多次争吵"),
    "02": ("村道旁电线杆倾斜，存在倒塌风险", "老旧土坯房墙体开裂", "山塘堤坝出现渗水",
           "村民屋后堆放柴草，存在火灾隐患", "急弯处缺少防护栏"),
    "03": ("夜间有陌生人在村内徘徊", "村民反映家中农具被盗", "有人在村口设赌摊"),
    "04": ("独居老人反映冬季取暖困难", "村民咨询低保申请进度", "残疾人申请轮椅等辅具",
           "外出务工人员工资被拖欠", "困难家庭子女上学需资助"),
    "05": ("河道内漂浮生活垃圾", "垃圾收集点满溢未及时清运", "生活污水直排水沟",
           "村内有乱搭乱建的棚子", "路边堆放建筑垃圾"),
    "06": ("村道路面塌陷", "路灯损坏不亮", "自来水管道破裂漏水", "桥梁护栏损坏", "水渠淤塞"),
    "07": ("严重精神障碍患者情绪不稳定", "社区矫正对象未按时报到", "独居高龄老人多日未出门"),
    "08": ("稻田出现病虫害，需农技指导", "灌溉用水不足", "生猪疑似患病", "农资价格咨询"),
    "09": ("村民家中多人发热", "饮用水有异味", "犬只伤人，需处理"),
    "10": ("咨询新农合缴费政策", "咨询宅基地审批流程", "咨询惠农补贴发放时间"),
    "99": ("村民反映手机信号差", "咨询快递进村事宜"),
}  # fmt: skip
NOTES = {
    Action.reject: ("经核实情况不属实", "不属于受理范围，已告知当事人"),
    Action.merge: ("与附近已上报事件重复，合并办理",),
    Action.cancel: ("群众已自行解决", "误报，撤销"),
    Action.return_: ("不属于本网格，请重新派遣", "需专业部门处理，退回重派"),
    Action.hold: ("需协调相关部门，申请延期", "等待资金下拨，申请延期", "雨季无法施工，申请延期"),
    Action.rework: ("核查发现问题未彻底解决", "群众不满意，要求重新处置"),
    Action.reopen: ("群众反映问题再次出现", "处置后又出现反复"),
}
ESCALATE_NOTES = ("超出网格处置能力，上报村级", "需村级协调处理", "涉及多个部门，上报乡镇",
                  "需县级职能部门处置")  # fmt: skip
# States the last issues of the year stop at, so that every state is present, and how many
# working hours before the end each is reported (time enough to get there).
SHOWCASE_AGE = {
    State.REPORTED: 3,
    State.ACCEPTED: 8,
    State.ASSIGNED: 10,
    State.IN_PROGRESS: 14,
    State.ON_HOLD: 16,
    State.RETURNED: 12,
    State.REWORK: 30,
    State.RESOLVED: 20,
    State.SELF_RESOLVED: 6,
    State.VERIFIED: 34,
}
SHOWCASE = tuple(SHOWCASE_AGE)


@dataclass
class IssueSummary:
    issues: int = 0
    transitions: int = 0
    escalated_by_job: int = 0
    refused: int = 0  # steps the service refused (should stay 0)
    attachments: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    by_level: dict[int, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class _Plan:
    """What will happen to one issue, drawn when it is reported."""

    fate: str  # normal | self | reject | merge | cancel
    target_level: int = 1  # escalated by hand up to this level
    returns: int = 0
    holds: int = 0
    reworks: int = 0
    reopens: int = 0
    rating: int | None = None
    speed: float = 1.0  # how slowly the people involved act (weak villages: much slower)
    stall: State | None = None  # stop acting once here (the year's last issues)


_Step = tuple[datetime, int, Action, str | None, int | None]  # when, who, action, note, rating


@dataclass
class _Open:
    issue_id: int
    reporter: int
    village_id: int
    plan: _Plan
    r: random.Random
    token: int = 0
    issue: Issue | None = None


class _Sim:
    def __init__(self, session: Session, people: People, year: Year, seed: int) -> None:
        self.session = session
        self.people = people
        self.year = year
        self.seed = seed
        self.cal = calendar.load(session, people.county_code)
        self.scopes: dict[int, Scope] = {}
        self.heap: list[tuple[datetime, int, str, int, int]] = []
        self.seq = 0
        self.open: dict[int, _Open] = {}
        self.summary = IssueSummary()
        self.pending: dict[int, _Step] = {}

    # -- people --------------------------------------------------------------------------

    def scope(self, user_id: int) -> Scope:
        found = self.scopes.get(user_id)
        if found is None:
            user = self.session.get(User, user_id)
            assert user is not None
            found = self.scopes[user_id] = scope_for(self.session, user)
        return found

    def admin(self, o: _Open, level: int) -> int:
        staff = self.people.staff
        if level <= 2:
            return staff.village[o.village_id]
        if level == 3:
            return staff.township[staff.township_of[o.village_id]]
        return staff.county[0]

    def worker(self, o: _Open, level: int) -> int:
        return o.reporter if level == 1 else self.admin(o, level)

    def verifier(self, o: _Open, level: int) -> int:
        staff = self.people.staff
        if level == 1:
            return staff.village[o.village_id]
        if level == 2:
            return staff.township[staff.township_of[o.village_id]]
        return staff.county[0] if level == 3 else staff.county[1]

    # -- time ----------------------------------------------------------------------------

    def later(self, now: datetime, hours: float, *, office: bool) -> datetime:
        """``hours`` of someone's time after ``now``: office hours for staff, daytime for a
        grid member (who works evenings and weekends too)."""
        if office:
            return self.cal.add_working_hours(now, hours)
        at = now + timedelta(hours=hours)
        local_hour = at.astimezone(CST).hour
        if local_hour < 7:
            at += timedelta(hours=7 - local_hour)
        elif local_hour >= 21:
            at += timedelta(hours=24 - local_hour + 7)
        return at

    def push(self, at: datetime, kind: str, index: int, token: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, kind, index, token))

    # -- the policy ----------------------------------------------------------------------

    def next_step(
        self, o: _Open, now: datetime
    ) -> tuple[datetime, int, Action, str | None, int | None] | None:
        """(when, who, action, note, rating) of the issue's next step, or None."""
        issue = o.issue
        assert issue is not None
        plan, r = o.plan, o.r
        state, level = State(issue.state), issue.level
        if plan.stall is not None and state == plan.stall:
            return None
        slow = plan.speed if level <= 2 else min(plan.speed, 1.5)  # the village's own pace
        sla = float(issue.sla_hours)

        def staff(hours: float, who: int, action: Action, note: str | None = None,
                  rating: int | None = None):  # fmt: skip
            return self.later(now, hours * slow, office=True), who, action, note, rating

        def member(hours: float, who: int, action: Action, note: str | None = None):
            office = level > 1
            return (
                self.later(now, hours * (slow if office else 1.0), office=office),
                who,
                action,
                note,
                None,
            )

        def note(action: Action) -> str:
            return r.choice(NOTES[action])

        if state is State.REPORTED:
            if plan.fate == "self":
                return member(r.uniform(0.1, 2.0), o.reporter, Action.self_resolve)
            if plan.fate == "cancel":
                return member(r.uniform(0.3, 6.0), o.reporter, Action.cancel, note(Action.cancel))
            if plan.fate == "reject":
                return staff(
                    r.uniform(0.5, 6), self.admin(o, level), Action.reject, note(Action.reject)
                )
            if plan.fate == "merge":
                first = (issue.duplicate_ids or [None])[0]
                text_ = f"与事件 #{first} 重复，合并办理" if first else note(Action.merge)
                return staff(r.uniform(0.5, 6), self.admin(o, level), Action.merge, text_)
            if plan.target_level > level and r.random() < 0.5:
                return member(r.uniform(0.2, 3), o.reporter, Action.escalate, ESCALATE_NOTES[0])
            return staff(r.lognormvariate(0.6, 0.8), self.admin(o, level), Action.accept)
        if state is State.ACCEPTED:
            if plan.target_level > level:
                who = self.worker(o, level)
                return (member if level == 1 else staff)(
                    r.uniform(0.5, 8), who, Action.escalate, ESCALATE_NOTES[min(level, 3)]
                )
            return staff(r.lognormvariate(0.3, 0.8), self.admin(o, level), Action.assign)
        if state is State.RETURNED:
            return staff(r.uniform(1, 8), self.admin(o, level), Action.assign)
        if state is State.ASSIGNED:
            if plan.returns > 0:
                plan.returns -= 1
                return member(
                    r.uniform(1, 12), self.worker(o, level), Action.return_, note(Action.return_)
                )
            return member(r.lognormvariate(0.8, 0.9), self.worker(o, level), Action.start)
        if state is State.REWORK:
            return member(r.lognormvariate(1.0, 0.8), self.worker(o, level), Action.start)
        if state is State.IN_PROGRESS:
            if plan.holds > 0 and (plan.stall is not None or r.random() < 0.7):
                plan.holds -= 1
                return staff(
                    r.uniform(0.1, 0.4) * sla, self.admin(o, level), Action.hold, note(Action.hold)
                )
            # how long the work takes: half the SLA typically, past it one time in five
            return member(r.lognormvariate(-0.7, 0.75) * sla, self.worker(o, level), Action.resolve)
        if state is State.ON_HOLD:
            return member(r.uniform(16, 120), self.worker(o, level), Action.resume)
        if state in (State.RESOLVED, State.SELF_RESOLVED):
            if plan.reworks > 0:
                plan.reworks -= 1
                return staff(
                    r.uniform(2, 24), self.verifier(o, level), Action.rework, note(Action.rework)
                )
            return staff(r.lognormvariate(1.5, 0.9), self.verifier(o, level), Action.verify)
        if state is State.VERIFIED:
            return staff(r.uniform(0.2, 16), self.admin(o, level), Action.close, None, plan.rating)
        if state is State.CLOSED and plan.reopens > 0:
            plan.reopens -= 1
            at = now + timedelta(days=r.uniform(1, 5.5))
            return at, self.worker(o, level), Action.reopen, note(Action.reopen), None
        return None

    def plan(self, o: _Open, now: datetime) -> None:
        step = self.next_step(o, now)
        o.token += 1
        if step is not None and step[0] < self.year.end:
            self.pending[o.issue_id] = step
            self.push(step[0], "act", o.issue_id, o.token)
        issue = o.issue
        assert issue is not None
        if issue.state in _ACTIVE and issue.level < 4 and issue.escalate_at < self.year.end:
            # the job notices at the next minute
            at = issue.escalate_at.replace(second=0, microsecond=0) + timedelta(minutes=1)
            self.push(max(at, now), "job", o.issue_id, o.token)


_ACTIVE = {s.value for s in issues_service.workflow.ACTIVE}


def _draw_plan(r: random.Random, category: str, weak: bool) -> _Plan:
    roll = r.random()
    if roll < 0.22:
        fate = "self"
    elif roll < 0.25:
        fate = "reject"
    elif roll < 0.27:
        fate = "merge"
    elif roll < 0.29:
        fate = "cancel"
    else:
        fate = "normal"
    group = category[:2]
    up = r.random()
    big = group in ("01", "02", "06")  # disputes, hazards, infrastructure go up more often
    if up < (0.015 if big else 0.006):
        target = 4
    elif up < (0.05 if big else 0.02):
        target = 3
    elif up < (0.16 if big else 0.08):
        target = 2
    else:
        target = 1
    rating_roll = r.random()
    rating = (
        None
        if rating_roll < 0.15
        else 5
        if rating_roll < 0.62
        else 4
        if rating_roll < 0.86
        else 3
        if rating_roll < 0.95
        else 2
        if rating_roll < 0.985
        else 1
    )
    return _Plan(
        fate=fate,
        target_level=target,
        returns=1 if r.random() < 0.04 else 0,
        holds=1 if r.random() < 0.08 else 0,
        reworks=(2 if r.random() < 0.15 else 1) if r.random() < 0.1 else 0,
        reopens=1 if r.random() < 0.03 else 0,
        rating=rating,
        speed=r.uniform(6, 14) if weak else r.uniform(0.6, 1.6),
    )


def load_issues(
    session: Session,
    people: People,
    year: Year,
    *,
    seed: int,
    count: int | None,
    store: BlobStore,
    report: Progress,
) -> IssueSummary:
    with calendar.reused(session):
        return _load_issues(
            session, people, year, seed=seed, count=count, store=store, report=report
        )


def _load_issues(
    session: Session,
    people: People,
    year: Year,
    *,
    seed: int,
    count: int | None,
    store: BlobStore,
    report: Progress,
) -> IssueSummary:
    timer = time.perf_counter()
    sim = _Sim(session, people, year, seed)
    summary = sim.summary
    code = people.county_code
    # Where reports come from: households of each grid, and who reports there.
    places = session.execute(
        text(
            "SELECT h.id, h.grid_id, h.village_id, ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat, "
            "h.address, g.code AS grid_code FROM households h JOIN grids g ON g.id = h.grid_id "
            "WHERE h.county_code = :c AND h.removed_at IS NULL ORDER BY h.id"
        ),
        {"c": code},
    ).all()
    reporters: dict[int, list[int]] = {}
    for (_, grid), user in sorted(people.member_users.items(), key=lambda kv: kv[1]):
        reporters.setdefault(grid, []).append(user)
    staff = people.staff
    if staff.grid_user is not None and staff.grid_user_grid is not None:
        # the named ``grid`` user reports in its own grid, often
        reporters.setdefault(staff.grid_user_grid, []).extend(
            [staff.grid_user] * max(3, len(reporters.get(staff.grid_user_grid, ())))
        )
    places = [p for p in places if p.grid_id in reporters and p.village_id in staff.village]
    categories = session.execute(
        text("SELECT code, photo_required FROM issue_categories ORDER BY code")
    ).all()
    by_group: dict[str, list[tuple[str, bool]]] = {}
    for c in categories:
        by_group.setdefault(c.code[:2], []).append((c.code, c.photo_required))
    households = session.scalar(
        text("SELECT count(*) FROM households WHERE county_code = :c"), {"c": code}
    )
    total = (
        count if count is not None else max(MIN_ISSUES, (households or 0) // HOUSEHOLDS_PER_ISSUE)
    )
    r = rng(seed, "issues")
    # Report times: over the year, by the season of each category group.
    # (at, category, place, stall state, twin: a second report of the same thing)
    reports: list[tuple[datetime, str, int, State | None, bool]] = []
    groups = [g for g in GROUPS if g in by_group]
    showcase = SHOWCASE[: max(0, min(len(SHOWCASE), total - 1))]
    regular = total - len(showcase)
    days = year.days - 1
    own_grid = [k for k, p in enumerate(places) if p.grid_id == staff.grid_user_grid]
    while len(reports) < regular:
        day = year.day(r.randint(0, days - 1))
        group = r.choices(groups, weights=[GROUPS[g][0] for g in groups])[0]
        weight = year.activity(day) * GROUPS[group][1].get(day.month, 1.0) / 2.0
        if r.random() > weight:
            continue
        category = r.choice(by_group[group])[0]
        at, place = _at(day, r.uniform(8, 19.5)), r.randrange(len(places))
        if own_grid and r.random() < max(0.02, 5 / max(regular, 1)):
            place = r.choice(own_grid)  # the named grid user's grid is a busy one
        reports.append((at, category, place, None, False))
        if r.random() < TWIN_SHARE and len(reports) < regular:
            # a neighbour reports the same thing a little later: linked as a duplicate
            reports.append((at + timedelta(hours=r.uniform(0.5, 30)), category, place, None, True))
    for state in showcase:
        # the year's last issues, hours or days old, stop where their story has got to (a
        # category with a long SLA, so that nothing is overdue yet)
        at = _working_hours_before(sim.cal, year.end, SHOWCASE_AGE[state])
        category = "0501" if state is State.SELF_RESOLVED else "0400"
        reports.append((at, category, r.randrange(len(places)), state, False))
    reports.sort(key=lambda x: x[0])
    photos: list[tuple[uuid.UUID, int, bytes]] = []
    weak = people.weak_villages
    photo_required = {c.code: c.photo_required for c in categories}
    for index, item in enumerate(reports):
        sim.push(item[0], "report", index)
    report("事件：一年的办理", 0, len(reports))
    done = steps = 0
    while sim.heap:
        steps += 1
        if steps % 400 == 0:
            # what is written needs no tracking: a session holding every timeline entry and
            # audit row would check them all at each flush
            session.flush()
            session.expunge_all()
        at, _, kind, index, token = heapq.heappop(sim.heap)
        if at >= year.end:
            break
        if kind == "report":
            _, category, place_index, stall, twin = reports[index]
            place = places[place_index]
            pr = rng(seed, "issue", index)
            reporter = pr.choice(reporters[place.grid_id])
            plan = _draw_plan(pr, category, place.village_id in weak)
            if twin:
                plan.fate = "merge"
            elif index % 37 == 5:
                plan.reopens = 1  # a few closed issues come back whatever the draws say
            if stall is not None:
                plan = _Plan(
                    fate="self" if stall is State.SELF_RESOLVED else "normal",
                    returns=9 if stall is State.RETURNED else 0,
                    holds=9 if stall is State.ON_HOLD else 0,
                    reworks=1 if stall is State.REWORK else 0,
                    rating=5,
                    speed=0.3,
                    stall=stall,
                )
            photo_ids = []
            if photo_required[category]:
                data = tiny_jpeg(f"gridgov demo issue {seed} {index}")
                photo_ids = [uuid.UUID(int=pr.getrandbits(128), version=4)]
                photos.append((photo_ids[0], reporter, data))
            linked = pr.random() < 0.3
            lon, lat = place.lon, place.lat
            if not linked and not twin:  # within ~20 m: a twin is linked as a duplicate
                lon += pr.uniform(-0.00015, 0.00015)
                lat += pr.uniform(-0.00015, 0.00015)
            body = IssueCreate(
                client_uuid=uuid.UUID(int=pr.getrandbits(128), version=4),
                category_code=category,
                description=pr.choice(DESCRIPTIONS.get(category[:2], DESCRIPTIONS["99"])),
                location={"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]},
                grid_code=place.grid_code,
                address=place.address if linked else None,
                household_id=place.id if linked else None,
                photo_ids=photo_ids,
            )
            try:
                issue, _ = issues_service.report_issue(session, sim.scope(reporter), body, now=at)
            except DomainError:
                summary.refused += 1
                continue
            summary.issues += 1
            o = _Open(issue.id, reporter, issue.village_id, plan, pr, issue=issue)
            if plan.fate == "merge" and not issue.duplicate_ids:
                plan.fate = "reject" if pr.random() < 0.5 else "normal"
            sim.open[issue.id] = o
            sim.plan(o, at)
            done += 1
            report("事件：一年的办理", done, len(reports))
            continue
        o = sim.open.get(index)
        if o is None or token != o.token:
            continue  # superseded: something else happened to the issue meanwhile
        issue = o.issue
        assert issue is not None
        if kind == "job":
            if issue.state in _ACTIVE and issue.escalate_at <= at and issue.level < 4:
                result = issues_service.escalate_overdue(session, now=at)
                summary.escalated_by_job += len(result.escalated)
                for escalated in result.escalated:
                    other = sim.open.get(escalated)
                    if other is not None:
                        other.issue = session.get(Issue, escalated, populate_existing=True)
                        sim.plan(other, at)
            continue
        when, who, action, note, rating = sim.pending.pop(index)
        try:
            issue = issues_service.transition(
                session,
                sim.scope(who),
                issue.id,
                TransitionCreate(action=action, version=issue.version, note=note, rating=rating),
                now=at,
            )
        except DomainError:
            summary.refused += 1
            continue
        o.issue = issue
        summary.transitions += 1
        sim.plan(o, at)
    summary.seconds["workflow"] = time.perf_counter() - timer

    timer = time.perf_counter()
    # The reminders of the last month's mornings and of the end (what inboxes hold now).
    for d in range(max(0, year.days - 14), year.days):
        issue_jobs.run_pass(session, now=_at(year.day(d), 8.5))
    issue_jobs.run_pass(session, now=year.end)
    if photos:
        conn = raw_connection(session)
        session.flush()
        with conn.cursor().copy(
            "COPY attachments (id, county_code, user_id, sha256, size, media_type) FROM STDIN"
        ) as copy:
            for ident, user_id, data in photos:
                digest = hashlib.sha256(data).hexdigest()
                store.put(digest, data)
                copy.write_row((ident, code, user_id, digest, len(data), "image/jpeg"))
    summary.attachments = len(photos)
    session.flush()
    summary.seconds["reminders"] = time.perf_counter() - timer
    for row in session.execute(
        text("SELECT state, count(*) FROM issues WHERE county_code = :c GROUP BY 1 ORDER BY 1"),
        {"c": code},
    ):
        summary.by_state[row[0]] = row[1]
    for row in session.execute(
        text("SELECT level, count(*) FROM issues WHERE county_code = :c GROUP BY 1 ORDER BY 1"),
        {"c": code},
    ):
        summary.by_level[int(row[0])] = row[1]
    session.expunge_all()
    return summary


def _working_hours_before(cal: calendar.WorkCalendar, end: datetime, hours: float) -> datetime:
    """The latest moment from which ``hours`` working hours pass before ``end``."""
    at = end
    while cal.working_hours_between(at, end) < hours:
        at -= timedelta(days=1)
    while cal.working_hours_between(at + timedelta(minutes=30), end) >= hours:
        at += timedelta(minutes=30)
    return at


def _at(day: Any, hour: float) -> datetime:
    from gridgov.demo.timeline import local

    return local(day, hour)
