"""自动分配: plan (and apply) the primary contacts of a whole village, township or county.

Reads a unit's households and eligible members in two COPY statements, builds one solver problem
per village (``gridgov.contacts.solver``), turns the solutions into a plan and writes it all or
nothing. The single-assignment rules live in ``gridgov.contacts.service``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridgov import wire
from gridgov.audit import service as audit
from gridgov.auth.scope import Scope
from gridgov.config import ContactLimits
from gridgov.contacts import queries, solver
from gridgov.contacts.schemas import AutoAssign
from gridgov.contacts.service import _constraint, _unit, _villages, limits_for, today
from gridgov.errors import Conflict, FieldError, NotFound, RuleViolation

UNCOVERED_MESSAGES = {
    "no_eligible_member": "本村没有可担任主要联系人且尚有余量的在册党员",
    "no_member_within_reach": "最大联系距离内没有可担任主要联系人的党员",
    "capacity_exhausted": "可及范围内的党员联系户数均已满额",
}

Progress = Callable[[str, int, int], None]


@dataclass(eq=False)
class UnitProblem:
    """Everything the solver needs for a unit, as numpy arrays (read in two COPY statements)."""

    unit_code: str
    county_code: str
    limits: ContactLimits
    model: solver.CostModel
    rebalance: bool
    village_ids: NDArray[np.int64]
    households: dict[str, NDArray[Any]]  # queries.HOUSEHOLD_FIELDS, sorted by village
    members: dict[str, NDArray[Any]]  # queries.MEMBER_FIELDS, sorted by village
    problems: list[solver.VillageProblem]
    # Per village: the households in its problem and the members they index.
    problem_households: list[NDArray[np.int64]]  # row numbers into ``households``
    problem_members: list[NDArray[np.int64]]  # row numbers into ``members``
    kept: NDArray[np.int64]  # rows of households keeping their primary contact
    stale: NDArray[np.int64]  # rows of households whose primary contact no longer holds


@dataclass(eq=False)
class Plan:
    unit_code: str
    mode: str
    rebalance: bool
    applied: bool = False
    batch_id: uuid.UUID | None = None
    villages: int = 0
    households: int = 0
    kept: int = 0
    # proposed pairs
    pair_household: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    pair_member: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    pair_village: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    pair_distance: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    pair_previous: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    # households that stay without a primary contact, and why
    uncovered_household: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    uncovered_reason: list[str] = field(default_factory=list)
    # assignments to end: (contact id, household id, member id, reason)
    ended: list[tuple[int, int, int, str]] = field(default_factory=list)
    # loads of every member considered
    load_member: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    load_kept: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    load_proposed: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    load_normal: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    load_capacity: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    objective_m: float = 0.0
    solutions: list[solver.VillageSolution] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_distance_m(self) -> float:
        return float(self.pair_distance.sum())


def cost_model(
    limits: ContactLimits, *, same_grid: bool, same_hamlet: bool, balance: bool, rebalance: bool
) -> solver.CostModel:
    return solver.CostModel(
        grid_penalty_m=limits.grid_penalty_m if same_grid else 0.0,
        hamlet_penalty_m=limits.hamlet_penalty_m if same_hamlet else 0.0,
        overload_penalty_m=limits.overload_penalty_m if balance else 0.0,
        max_distance_m=limits.max_distance_m,
        keep_bonus_m=limits.keep_bonus_m if rebalance else 0.0,
    )


MEMBER_HOME_HAMLET_M = 50.0  # a member living this close to a household belongs to its hamlet


def read_unit(
    session: Session,
    scope: Scope,
    *,
    unit_code: str,
    rebalance: bool = False,
    same_grid: bool = True,
    same_hamlet: bool = True,
    balance: bool = True,
    lock: bool = False,
) -> UnitProblem:
    """Read a unit's households and eligible members from PostGIS and build one solver problem
    per village. ``lock``: hold the members' rows until the transaction ends (apply)."""
    from scipy.spatial import cKDTree

    unit = _unit(session, scope, unit_code)
    if scope.grid_bound:
        raise NotFound(f"行政单位 {unit_code} ")
    limits = limits_for(unit.county_code)
    model = cost_model(
        limits, same_grid=same_grid, same_hamlet=same_hamlet, balance=balance, rebalance=rebalance
    )
    villages = np.asarray(_villages(session, scope, unit), dtype=np.int64)
    params = {"villages": villages.tolist(), **queries.limit_params(limits)}
    # The planner's estimate for these reads is huge (correlated sub-plans it never runs), so it
    # would spend a second JIT-compiling a query that runs in a quarter of that.
    session.execute(text("SET LOCAL jit = off"))
    if lock:
        session.execute(
            text(
                "SELECT id FROM party_members WHERE village_id = ANY(:villages) "
                "ORDER BY id FOR UPDATE"
            ),
            params,
        )
    hh = queries.copy_columns(session, queries.HOUSEHOLD_INPUT, params, queries.HOUSEHOLD_FIELDS)
    mm = queries.copy_columns(session, queries.MEMBER_INPUT, params, queries.MEMBER_FIELDS)

    has_contact = hh["contact_id"] > 0
    valid = has_contact & hh["contact_valid"]
    stale = np.flatnonzero(has_contact & ~hh["contact_valid"])
    kept = np.zeros(0, dtype=np.int64) if rebalance else np.flatnonzero(valid)
    todo = np.ones(len(hh["id"]), dtype=bool)
    todo[kept] = False

    # Members' loads: what they keep. Re-planned households (rebalance) free their slot.
    load = mm["load"].copy()
    member_row = {int(m): i for i, m in enumerate(mm["id"].tolist())}
    if rebalance:
        held = hh["member_id"][valid]
        rows = np.asarray([member_row.get(int(m), -1) for m in held.tolist()], dtype=np.int64)
        np.subtract.at(load, rows[rows >= 0], 1)
    h_start = np.searchsorted(hh["village_id"], villages)
    h_end = np.searchsorted(hh["village_id"], villages, side="right")
    m_start = np.searchsorted(mm["village_id"], villages)
    m_end = np.searchsorted(mm["village_id"], villages, side="right")

    problems: list[solver.VillageProblem] = []
    problem_hh: list[NDArray[np.int64]] = []
    problem_mm: list[NDArray[np.int64]] = []
    for v in range(len(villages)):
        rows_h = np.arange(h_start[v], h_end[v])
        rows_h = rows_h[todo[rows_h]]
        rows_m = np.arange(m_start[v], m_end[v])
        all_h = np.arange(h_start[v], h_end[v])
        if len(all_h):
            lon0, lat0 = float(hh["lon"][all_h].mean()), float(hh["lat"][all_h].mean())
        elif len(rows_m):
            lon0, lat0 = float(mm["lon"][rows_m].mean()), float(mm["lat"][rows_m].mean())
        else:
            lon0 = lat0 = 0.0
        h_xy = solver.project(hh["lon"][rows_h], hh["lat"][rows_h], lon0, lat0)
        m_xy = solver.project(mm["lon"][rows_m], mm["lat"][rows_m], lon0, lat0)
        # A member's hamlet: the one of the household it lives in (or right next to).
        m_hamlet = np.full(len(rows_m), -1, dtype=np.int64)
        if len(rows_m) and len(all_h):
            all_xy = solver.project(hh["lon"][all_h], hh["lat"][all_h], lon0, lat0)
            dist, idx = cKDTree(all_xy).query(m_xy, k=1)
            near = dist <= MEMBER_HOME_HAMLET_M
            m_hamlet[near] = hh["hamlet"][all_h][idx[near]]
            m_hamlet[m_hamlet == 0] = -1
        current = np.full(len(rows_h), -1, dtype=np.int64)
        if rebalance and len(rows_h):
            local = {int(mm["id"][r]): j for j, r in enumerate(rows_m.tolist())}
            holder = hh["member_id"][rows_h]
            ok = valid[rows_h]
            current = np.asarray(
                [local.get(int(m), -1) if o else -1 for m, o in zip(holder, ok, strict=True)],
                dtype=np.int64,
            )
        problems.append(
            solver.VillageProblem(
                hh_xy=h_xy,
                hh_grid=np.where(hh["grid_id"][rows_h] > 0, hh["grid_id"][rows_h], -2),
                hh_hamlet=np.where(hh["hamlet"][rows_h] > 0, hh["hamlet"][rows_h], -2),
                m_xy=m_xy,
                m_grid=np.where(mm["grid_id"][rows_m] > 0, mm["grid_id"][rows_m], -1),
                m_hamlet=m_hamlet,
                m_load=load[rows_m].astype(np.int64),
                m_normal=mm["normal"][rows_m].astype(np.int64),
                m_capacity=mm["capacity"][rows_m].astype(np.int64),
                hh_current=current,
            )
        )
        problem_hh.append(rows_h)
        problem_mm.append(rows_m)
    return UnitProblem(
        unit_code=unit.code,
        county_code=unit.county_code,
        limits=limits,
        model=model,
        rebalance=rebalance,
        village_ids=villages,
        households=hh,
        members=mm,
        problems=problems,
        problem_households=problem_hh,
        problem_members=problem_mm,
        kept=kept,
        stale=stale,
    )


def build_plan(
    unit: UnitProblem, solutions: Sequence[solver.VillageSolution], *, mode: str
) -> Plan:
    """Turn per-village solutions into the plan: pairs, loads, holes and what must end."""
    hh, mm = unit.households, unit.members
    plan = Plan(unit_code=unit.unit_code, mode=mode, rebalance=unit.rebalance)
    plan.villages = len(unit.village_ids)
    plan.households = len(hh["id"])
    plan.solutions = list(solutions)
    rows_h = unit.problem_households
    # solver member indices → row numbers of ``members``
    chosen = [
        np.where(s.member >= 0, rm[np.maximum(s.member, 0)], -1)
        if len(rm)
        else np.full(len(s.member), -1, dtype=np.int64)
        for s, rm in zip(solutions, unit.problem_members, strict=True)
    ]
    h_rows = np.concatenate(rows_h) if rows_h else np.zeros(0, np.int64)
    m_rows = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    dist = np.concatenate([s.distance_m for s in solutions]) if solutions else np.zeros(0)
    reasons = np.concatenate([s.reason for s in solutions]) if solutions else np.zeros(0, np.int8)
    plan.objective_m = float(sum(s.objective_m for s in solutions))

    covered = m_rows >= 0
    new_member = np.where(covered, mm["id"][np.maximum(m_rows, 0)], 0)
    previous = np.where(hh["contact_valid"][h_rows], hh["member_id"][h_rows], 0)
    changed = covered & (new_member != previous)
    plan.pair_household = hh["id"][h_rows[changed]]
    plan.pair_member = new_member[changed]
    plan.pair_village = hh["village_id"][h_rows[changed]]
    plan.pair_distance = dist[changed]
    plan.pair_previous = previous[changed]
    plan.kept = len(unit.kept) + int((covered & ~changed).sum())
    plan.uncovered_household = hh["id"][h_rows[~covered]]
    plan.uncovered_reason = [solver.REASON_CODES[int(r)] for r in reasons[~covered]]

    ended: list[tuple[int, int, int, str]] = []
    for r in unit.stale.tolist():
        ended.append(
            (int(hh["contact_id"][r]), int(hh["id"][r]), int(hh["member_id"][r]), "invalid")
        )
    moved = h_rows[(previous != 0) & (new_member != previous)]
    for r in moved.tolist():
        ended.append(
            (int(hh["contact_id"][r]), int(hh["id"][r]), int(hh["member_id"][r]), "rebalance")
        )
    plan.ended = sorted(ended)

    proposed = np.zeros(len(mm["id"]), dtype=np.int64)
    np.add.at(proposed, m_rows[changed], 1)
    kept_load = np.concatenate([p.m_load for p in unit.problems]) if unit.problems else proposed
    kept_rows = np.concatenate(unit.problem_members) if unit.problem_members else np.zeros(0, int)
    load_kept = np.zeros(len(mm["id"]), dtype=np.int64)
    load_kept[kept_rows] = kept_load
    # unchanged pairs of a rebalance stay with their member: count them as kept
    np.add.at(load_kept, m_rows[covered & ~changed], 1)
    plan.load_member = mm["id"]
    plan.load_kept = load_kept
    plan.load_proposed = proposed
    plan.load_normal = mm["normal"].astype(np.int64)
    plan.load_capacity = mm["capacity"].astype(np.int64)
    return plan


def auto_assign(
    session: Session,
    scope: Scope,
    *,
    unit_code: str,
    mode: str = "dry_run",
    rebalance: bool = False,
    same_grid: bool = True,
    same_hamlet: bool = True,
    balance: bool = True,
    progress: Progress | None = None,
    on: date | None = None,
) -> Plan:
    """Plan (and with ``mode="apply"`` write, all or nothing) the primary contacts of every
    household of a village, township or county that has none, or of all of them (rebalance).

    ``on``: the day the applied plan takes effect (default today; a back-dated plan, as a
    single assignment's ``valid_from`` may be, never one in the future)."""
    report = progress or (lambda stage, done, total: None)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    report("read", 0, 1)
    unit = read_unit(
        session,
        scope,
        unit_code=unit_code,
        rebalance=rebalance,
        same_grid=same_grid,
        same_hamlet=same_hamlet,
        balance=balance,
        lock=mode == "apply",
    )
    report("read", 1, 1)
    seconds["read"] = time.perf_counter() - start
    start = time.perf_counter()
    solutions = solver.solve_villages(
        unit.problems, unit.model, lambda done, total: report("solve", done, total)
    )
    seconds["solve"] = time.perf_counter() - start
    start = time.perf_counter()
    plan = build_plan(unit, solutions, mode=mode)
    seconds["plan"] = time.perf_counter() - start
    if mode == "apply":
        start = time.perf_counter()
        report("write", 0, 1)
        apply_plan(session, scope, plan, county_code=unit.county_code, on=on)
        report("write", 1, 1)
        seconds["write"] = time.perf_counter() - start
    plan.seconds = {k: round(v, 3) for k, v in seconds.items()}
    return plan


def apply_plan(
    session: Session, scope: Scope, plan: Plan, *, county_code: str, on: date | None = None
) -> None:
    """End what the plan ends and insert its pairs: two statements in one transaction, dated
    ``on`` (default today)."""
    batch = uuid.uuid4()
    if on is None:
        on = today()
    elif on > today():
        raise RuleViolation([FieldError(["on"], "生效日期不能晚于今天", "valid_from_in_future")])
    try:
        with session.begin_nested():
            if plan.ended:
                ids, _, _, reasons = zip(*plan.ended, strict=True)
                result = session.execute(
                    text(
                        "UPDATE contacts c SET valid_to = GREATEST(:on, c.valid_from), "
                        "ended_reason = u.reason, ended_by = :user, updated_at = now(), "
                        "ended_note = :note "
                        "FROM unnest(CAST(:ids AS bigint[]), CAST(:reasons AS text[])) "
                        "AS u(id, reason) WHERE c.id = u.id AND c.valid_to IS NULL"
                    ),
                    {
                        "ids": list(ids),
                        "reasons": list(reasons),
                        "on": on,
                        "user": scope.user_id or None,
                        "note": f"自动分配 {batch}",
                    },
                )
                if result.rowcount != len(ids):
                    raise Conflict(
                        "方案生成后联系关系已被他人修改，请重新生成方案", code="plan_stale"
                    )
            if len(plan.pair_household):
                session.execute(
                    text(
                        "INSERT INTO contacts (county_code, village_id, member_id, household_id, "
                        "role, valid_from, source, batch_id, created_by) "
                        "SELECT :county, u.village_id, u.member_id, u.household_id, 'primary', "
                        ":on, 'auto', :batch, :user "
                        "FROM unnest(CAST(:villages AS bigint[]), CAST(:members AS bigint[]), "
                        "CAST(:households AS bigint[])) AS u(village_id, member_id, household_id)"
                    ),
                    {
                        "county": county_code,
                        "villages": plan.pair_village.tolist(),
                        "members": plan.pair_member.tolist(),
                        "households": plan.pair_household.tolist(),
                        "on": on,
                        "batch": batch,
                        "user": scope.user_id or None,
                    },
                )
    except IntegrityError as exc:
        raise Conflict(
            "方案写入时与他人刚做的修改冲突，未写入任何内容；请重新生成方案",
            code="plan_stale",
            constraint=_constraint(exc),
        ) from exc
    if len(plan.pair_household) > 10_000:
        # Fresh statistics for the next read: the planner must not keep believing it is empty.
        session.execute(text("ANALYZE contacts"))
    plan.applied = True
    plan.batch_id = batch
    audit.record(
        session,
        scope,
        action="auto_assign",
        entity="contact_batch",
        entity_id=batch,
        county_code=county_code,
        after={
            "unit_code": plan.unit_code,
            "rebalance": plan.rebalance,
            "proposed": len(plan.pair_household),
            "ended": len(plan.ended),
            "uncovered": len(plan.uncovered_household),
        },
    )


def plan_body(plan: Plan, *, include_pairs: bool = True) -> dict[str, Any]:
    """The plan as the JSON document of ``AutoAssignPlan`` (built from arrays, no models)."""
    used = plan.load_proposed + plan.load_kept
    considered = (plan.load_proposed > 0) | (plan.load_kept > 0)
    proposed = len(plan.pair_household)
    body: dict[str, Any] = {
        "unit_code": plan.unit_code,
        "mode": plan.mode,
        "applied": plan.applied,
        "batch_id": str(plan.batch_id) if plan.batch_id else None,
        "summary": {
            "villages": plan.villages,
            "households": plan.households,
            "kept": plan.kept,
            "proposed": proposed,
            "uncovered": len(plan.uncovered_household),
            "ended": len(plan.ended),
            "total_distance_m": round(plan.total_distance_m, 1),
            "avg_distance_m": round(plan.total_distance_m / proposed, 1) if proposed else None,
            "members_used": int(considered.sum()),
            "members_over_normal": int((used > plan.load_normal).sum()),
            "max_load": int(used.max()) if len(used) else 0,
        },
        "pairs": None,
        "loads": None,
        "uncovered": [
            {"household_id": h, "reason": r, "message": UNCOVERED_MESSAGES[r]}
            for h, r in zip(plan.uncovered_household.tolist(), plan.uncovered_reason, strict=True)
        ],
        "ended": [
            {"contact_id": c, "household_id": h, "member_id": m, "reason": r}
            for c, h, m, r in plan.ended
        ],
        "seconds": plan.seconds,
    }
    if include_pairs:
        body["pairs"] = [
            {
                "household_id": h,
                "member_id": m,
                "distance_m": round(d, 1),
                "previous_member_id": p or None,
            }
            for h, m, d, p in zip(
                plan.pair_household.tolist(),
                plan.pair_member.tolist(),
                plan.pair_distance.tolist(),
                plan.pair_previous.tolist(),
                strict=True,
            )
        ]
        sel = np.flatnonzero(considered)
        body["loads"] = [
            {
                "member_id": m,
                "kept": k,
                "proposed": p,
                "total": k + p,
                "normal_max": n,
                "capacity": c,
            }
            for m, k, p, n, c in zip(
                plan.load_member[sel].tolist(),
                plan.load_kept[sel].tolist(),
                plan.load_proposed[sel].tolist(),
                plan.load_normal[sel].tolist(),
                plan.load_capacity[sel].tolist(),
                strict=True,
            )
        ]
    return body


def auto_assign_json(session: Session, scope: Scope, data: AutoAssign) -> bytes:
    """``auto_assign`` for the API: the plan rendered straight from its arrays."""
    plan = auto_assign(
        session,
        scope,
        unit_code=data.unit_code,
        mode=data.mode,
        rebalance=data.rebalance,
        same_grid=data.preferences.same_grid,
        same_hamlet=data.preferences.same_hamlet,
        balance=data.preferences.balance,
    )
    return wire.dumps(plan_body(plan, include_pairs=data.include_pairs))
