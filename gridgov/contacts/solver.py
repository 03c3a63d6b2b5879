"""Exact 联系户 assignment for one village at a time: a min-cost flow on numpy arrays.

Pure: no database, no ORM. The service reads a village's households and eligible members from
PostGIS, projects them to metres and calls :func:`solve_village`; the benchmark times the same
function on the same arrays to measure the cost of everything around it.

The model (all costs in metres, scaled to integer decimetres for the solver):

* household → member arc: straight-line distance, plus a penalty when the member serves another
  grid or lives in another hamlet (村民小组), minus a bonus for the member who already holds the
  household (rebalancing keeps pairs unless moving them is clearly better); no arc beyond
  ``max_distance_m``;
* member → sink: the member's remaining capacity as "slots": free up to the normal load, then
  one unit arc per further household with a cost growing by ``overload_penalty_m`` each (a convex
  load cost: the 11th household costs 1×, the 12th 2× … so loads even out);
* household → sink "uncovered" arc, only when needed, with a cost larger than any augmenting
  path, so the flow covers as many households as possible first and minimises cost second.

Sparse but exact: each household gets arcs to its ``candidates`` nearest members only. After the
solve, node potentials are computed on the residual graph (Bellman–Ford from a virtual root) and
every left-out pair (h, m) is checked for a negative reduced cost. Only members within
``max_m d(m) − d(h)`` of h can violate it, so only households whose candidate list stops short
of that radius are checked (densely: a village has tens of members). Violating pairs are added
and the village solved again, so the result is the optimum of the full bipartite problem,
proven, not hoped for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

EARTH_RADIUS_M = 6_371_008.8

COVERED = 0
NO_ELIGIBLE_MEMBER = 1
NO_MEMBER_WITHIN_REACH = 2
CAPACITY_EXHAUSTED = 3
REASON_CODES = {
    NO_ELIGIBLE_MEMBER: "no_eligible_member",
    NO_MEMBER_WITHIN_REACH: "no_member_within_reach",
    CAPACITY_EXHAUSTED: "capacity_exhausted",
}


@dataclass(frozen=True)
class CostModel:
    """What the plan minimises; every figure in metres of walking."""

    grid_penalty_m: float = 200.0
    hamlet_penalty_m: float = 100.0
    overload_penalty_m: float = 150.0
    max_distance_m: float = 5000.0
    keep_bonus_m: float = 0.0
    units_per_m: int = 10  # integer costs in decimetres: rounding moves a total by < 0.05 m/pair
    candidates: int = 16


@dataclass(eq=False)
class VillageProblem:
    """One village: households still to cover and the members who may take them as primary.

    ``*_grid`` / ``*_hamlet`` are small integers (−1 unknown); a member's unknown grid or hamlet
    costs no penalty. ``m_load`` counts the assignments the member keeps (they use capacity and
    the normal load first); ``hh_current`` is the index of the member now holding the household
    (rebalancing), or −1.
    """

    hh_xy: FloatArray
    hh_grid: IntArray
    hh_hamlet: IntArray
    m_xy: FloatArray
    m_grid: IntArray
    m_hamlet: IntArray
    m_load: IntArray
    m_normal: IntArray
    m_capacity: IntArray
    hh_current: IntArray | None = None

    @property
    def n(self) -> int:
        return len(self.hh_xy)

    @property
    def m(self) -> int:
        return len(self.m_xy)


@dataclass(eq=False)
class VillageSolution:
    member: IntArray  # member index per household, −1 when uncovered
    reason: NDArray[np.int8]  # COVERED or one of REASON_CODES
    distance_m: FloatArray  # straight-line metres to the chosen member, NaN when uncovered
    objective_m: float  # distance + penalties (what was minimised), metres
    rounds: int = 1
    arcs: int = 0
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def total_distance_m(self) -> float:
        covered = self.member >= 0
        return float(self.distance_m[covered].sum())


def project(lon: FloatArray, lat: FloatArray, lon0: float, lat0: float) -> FloatArray:
    """Local equirectangular projection to metres around (lon0, lat0).

    Within a village (a few km) the error against the great-circle distance is far below a
    metre, and it is the same for every pair, so it cannot change which assignment is best.
    """
    k = np.pi / 180.0 * EARTH_RADIUS_M
    x = (np.asarray(lon, dtype=np.float64) - lon0) * k * np.cos(np.radians(lat0))
    y = (np.asarray(lat, dtype=np.float64) - lat0) * k
    return np.column_stack([x, y])


def slot_costs(load: int, normal: int, capacity: int, overload_m: float) -> FloatArray:
    """Marginal cost (metres) of each further household a member could take, in order."""
    k = np.arange(1, max(capacity - load, 0) + 1)
    return overload_m * np.maximum(load + k - normal, 0).astype(np.float64)


def pair_costs(
    p: VillageProblem, model: CostModel, hh: IntArray, mem: IntArray, dist: FloatArray
) -> FloatArray:
    """Cost in metres of giving household ``hh[i]`` to member ``mem[i]`` at distance ``dist[i]``."""
    cost = dist.astype(np.float64, copy=True)
    if model.grid_penalty_m:
        mg = p.m_grid[mem]
        cost += model.grid_penalty_m * ((mg >= 0) & (p.hh_grid[hh] != mg))
    if model.hamlet_penalty_m:
        ml = p.m_hamlet[mem]
        cost += model.hamlet_penalty_m * ((ml >= 0) & (p.hh_hamlet[hh] != ml))
    if model.keep_bonus_m and p.hh_current is not None:
        cost -= model.keep_bonus_m * (p.hh_current[hh] == mem)
        np.maximum(cost, 0.0, out=cost)
    return cost


def _empty(n: int, reason: int) -> VillageSolution:
    return VillageSolution(
        member=np.full(n, -1, dtype=np.int64),
        reason=np.full(n, reason, dtype=np.int8),
        distance_m=np.full(n, np.nan),
        objective_m=0.0,
        rounds=0,
    )


def solve_village(p: VillageProblem, model: CostModel) -> VillageSolution:
    """The optimal assignment of one village (see the module docstring)."""
    n = p.n
    if n == 0:
        return _empty(0, COVERED)
    if p.m == 0:
        return _empty(n, NO_ELIGIBLE_MEMBER)
    room = np.maximum(p.m_capacity - p.m_load, 0)
    active = np.flatnonzero(room > 0)
    if len(active) == 0:
        return _empty(n, CAPACITY_EXHAUSTED)

    units = model.units_per_m
    from scipy.spatial import cKDTree  # imported here: keeps ~70 MB out of every API worker

    tree = cKDTree(p.m_xy[active])
    k = min(model.candidates, len(active))
    dist, idx = tree.query(p.hh_xy, k=k, distance_upper_bound=model.max_distance_m)
    dist, idx = dist.reshape(n, k), idx.reshape(n, k)
    found = np.isfinite(dist)
    reach = found.any(axis=1)
    # Households whose candidate list may have left out a member in reach: the certificate
    # looks at these. The k-th neighbour's distance bounds everyone left out.
    kth = np.where(found[:, -1], dist[:, -1], np.inf) if k < len(active) else np.full(n, np.inf)

    hh_arc = np.repeat(np.arange(n), k)[found.ravel()]
    m_arc = active[idx[found]]  # original member indices
    d_arc = dist[found]
    if model.keep_bonus_m and p.hh_current is not None:
        # The current holder is always a candidate, so keeping a pair is always possible.
        cur = p.hh_current
        has = np.flatnonzero((cur >= 0) & reach)
        if len(has):
            cur_m = cur[has]
            ok = room[cur_m] > 0
            has, cur_m = has[ok], cur_m[ok]
            cur_d = np.hypot(*(p.hh_xy[has] - p.m_xy[cur_m]).T)
            within = cur_d <= model.max_distance_m
            hh_arc = np.concatenate([hh_arc, has[within]])
            m_arc = np.concatenate([m_arc, cur_m[within]])
            d_arc = np.concatenate([d_arc, cur_d[within]])
            hh_arc, m_arc, d_arc = _dedupe(hh_arc, m_arc, d_arc, p.m)

    flow_hh = np.flatnonzero(reach)
    result = _solve_certified(p, model, room, active, kth, hh_arc, m_arc, d_arc, flow_hh)
    member, rounds, arcs, objective_units = result
    reason = np.where(member >= 0, COVERED, CAPACITY_EXHAUSTED).astype(np.int8)
    reason[~reach] = NO_MEMBER_WITHIN_REACH
    distance = np.full(n, np.nan)
    covered = np.flatnonzero(member >= 0)
    distance[covered] = np.hypot(*(p.hh_xy[covered] - p.m_xy[member[covered]]).T)
    return VillageSolution(
        member=member,
        reason=reason,
        distance_m=distance,
        objective_m=objective_units / units,
        rounds=rounds,
        arcs=arcs,
    )


def _dedupe(
    hh: IntArray, mem: IntArray, d: FloatArray, m: int
) -> tuple[IntArray, IntArray, FloatArray]:
    _, first = np.unique(hh * m + mem, return_index=True)
    return hh[first], mem[first], d[first]


def _solve_certified(
    p: VillageProblem,
    model: CostModel,
    room: IntArray,
    active: IntArray,
    kth: FloatArray,
    hh_arc: IntArray,
    m_arc: IntArray,
    d_arc: FloatArray,
    flow_hh: IntArray,
) -> tuple[IntArray, int, int, int]:
    n, m = p.n, p.m
    units = model.units_per_m
    member = np.full(n, -1, dtype=np.int64)
    if len(flow_hh) == 0:
        return member, 0, 0, 0
    # Nodes: households 0..n−1, members n..n+m−1, sink n+m. Households out of reach have no arc
    # and no supply.
    sink = n + m
    slot_tail, slot_cap, slot_cost = _slots(p, model, room)
    worst_arc = units * (model.max_distance_m + model.grid_penalty_m + model.hamlet_penalty_m) + 1
    worst_slot = int(slot_cost.max()) if len(slot_cost) else 0
    # Larger than any alternating path can save (a path uses at most 2·members + 2 arcs), so
    # coverage always comes first. When rebalancing, a household covered today costs ``step``
    # more to leave uncovered: among the plans covering the most, those keep today's coverage
    # rather than swap which households go without.
    step = (2 * len(active) + 2) * (int(worst_arc) + worst_slot + 1)
    uncovered_cost = np.full(len(flow_hh), 2 * step, dtype=np.int64)
    if p.hh_current is not None:
        uncovered_cost += step * (p.hh_current[flow_hh] >= 0)
    with_uncovered = int(room.sum()) < len(flow_hh)
    rounds = 0
    while True:
        rounds += 1
        cost_arc = np.rint(pair_costs(p, model, hh_arc, m_arc, d_arc) * units).astype(np.int64)
        tails = [hh_arc, slot_tail]
        heads = [n + m_arc, np.full(len(slot_tail), sink, dtype=np.int64)]
        caps = [np.ones(len(hh_arc), dtype=np.int64), slot_cap]
        costs = [cost_arc, slot_cost]
        if with_uncovered:
            tails.append(flow_hh)
            heads.append(np.full(len(flow_hh), sink, dtype=np.int64))
            caps.append(np.ones(len(flow_hh), dtype=np.int64))
            costs.append(uncovered_cost)
        t = np.concatenate(tails)
        h = np.concatenate(heads)
        c = np.concatenate(caps)
        w = np.concatenate(costs)
        from ortools.graph.python import min_cost_flow

        solver = min_cost_flow.SimpleMinCostFlow()
        arcs = solver.add_arcs_with_capacity_and_unit_cost(
            t.astype(np.int32), h.astype(np.int32), c, w
        )
        supply = np.zeros(n + m + 1, dtype=np.int64)
        supply[flow_hh] = 1
        supply[sink] = -len(flow_hh)
        solver.set_nodes_supplies(np.arange(n + m + 1, dtype=np.int32), supply)
        status = solver.solve()
        if status == solver.INFEASIBLE and not with_uncovered:
            with_uncovered = True  # the candidate arcs alone cannot cover everyone
            continue
        if status != solver.OPTIMAL:
            raise RuntimeError(f"min-cost flow failed: {status}")
        f = np.asarray(solver.flows(np.asarray(arcs, dtype=np.int32)), dtype=np.int64)
        potential = _potentials(n + m + 1, t, h, c, w, f)
        extra = _violations(p, model, active, kth, flow_hh, potential, hh_arc, m_arc)
        if extra is None:
            used = np.flatnonzero(f[: len(hh_arc)] > 0)
            member[hh_arc[used]] = m_arc[used]
            return (
                member,
                rounds,
                len(t),
                int(solver.optimal_cost())
                - (int(uncovered_cost[member[flow_hh] < 0].sum()) if with_uncovered else 0),
            )
        hh_arc = np.concatenate([hh_arc, extra[0]])
        m_arc = np.concatenate([m_arc, extra[1]])
        d_arc = np.concatenate([d_arc, extra[2]])


def _slots(
    p: VillageProblem, model: CostModel, room: IntArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Member → sink arcs: one free arc up to the normal load, then unit arcs of rising cost."""
    n = p.n
    free = np.clip(p.m_normal - p.m_load, 0, room)
    extra = room - free
    members = np.arange(p.m)
    tail = [n + members[free > 0]]
    cap = [free[free > 0]]
    cost = [np.zeros(int((free > 0).sum()), dtype=np.int64)]
    if extra.any():
        who = np.repeat(members, extra)
        # j-th extra household of a member: its load passes the normal load by (already over) + j
        start = np.repeat(np.maximum(p.m_load - p.m_normal, 0), extra)
        offset = np.arange(len(who)) - np.repeat(np.cumsum(extra) - extra, extra) + 1
        tail.append(n + who)
        cap.append(np.ones(len(who), dtype=np.int64))
        step = model.overload_penalty_m * model.units_per_m
        cost.append(np.rint((start + offset) * step).astype(np.int64))
    return np.concatenate(tail), np.concatenate(cap), np.concatenate(cost)


def _potentials(
    nodes: int, tails: IntArray, heads: IntArray, caps: IntArray, costs: IntArray, flows: IntArray
) -> IntArray:
    """Shortest-path distances from a virtual root (0 to every node) in the residual graph.

    The flow is optimal, so the residual graph has no negative cycle and these distances are
    feasible potentials: every residual arc has a reduced cost ≥ 0.
    """
    fwd = flows < caps
    bwd = flows > 0
    rt = np.concatenate([tails[fwd], heads[bwd]])
    rh = np.concatenate([heads[fwd], tails[bwd]])
    rw = np.concatenate([costs[fwd], -costs[bwd]])
    order = np.argsort(rh, kind="stable")
    rt, rh, rw = rt[order], rh[order], rw[order]
    target, starts = np.unique(rh, return_index=True)
    d = np.zeros(nodes, dtype=np.int64)
    for _ in range(nodes + 1):
        best = np.minimum.reduceat(d[rt] + rw, starts)
        better = best < d[target]
        if not better.any():
            return d
        d[target[better]] = best[better]
    raise RuntimeError("residual graph has a negative cycle: flow not optimal")


def _violations(
    p: VillageProblem,
    model: CostModel,
    active: IntArray,
    kth: FloatArray,
    flow_hh: IntArray,
    potential: IntArray,
    hh_arc: IntArray,
    m_arc: IntArray,
) -> tuple[IntArray, IntArray, FloatArray] | None:
    """Left-out pairs with a negative reduced cost (they would improve the flow), or None."""
    n = p.n
    units = model.units_per_m
    top = int(potential[n + active].max())
    # cost(h, m) ≥ units·dist − ½ (rounding, penalties ≥ 0 … except the keep bonus, whose pair is
    # always an arc), so a violation needs dist < (top − d(h) + ½) / units.
    reach = (top - potential[flow_hh] + 1) / units
    reach = np.minimum(reach, model.max_distance_m)
    check = flow_hh[kth[flow_hh] < reach]
    if len(check) == 0:
        return None
    radius = reach[np.searchsorted(flow_hh, check)]
    # A village has tens of members: checking the few households against all of them densely
    # is cheaper than any index.
    mx = p.m_xy[active]
    dist = np.hypot(
        p.hh_xy[check, None, 0] - mx[None, :, 0], p.hh_xy[check, None, 1] - mx[None, :, 1]
    )
    near = dist < radius[:, None]
    row_of = np.full(p.n, -1, dtype=np.int64)
    row_of[check] = np.arange(len(check))
    col_of = np.full(p.m, -1, dtype=np.int64)
    col_of[active] = np.arange(len(active))
    arc_rows = row_of[hh_arc]
    known = arc_rows >= 0
    near[arc_rows[known], col_of[m_arc[known]]] = False
    r, c = np.nonzero(near)
    if len(r) == 0:
        return None
    hh, mem, d = check[r], active[c], dist[r, c]
    cost = np.rint(pair_costs(p, model, hh, mem, d) * units).astype(np.int64)
    bad = cost + potential[hh] - potential[n + mem] < 0
    if not bad.any():
        return None
    return hh[bad], mem[bad], d[bad]


def solve_villages(
    problems: Sequence[VillageProblem],
    model: CostModel,
    progress: Callable[[int, int], None] | None = None,
) -> list[VillageSolution]:
    """Every village in turn (they are independent: members serve their own village only)."""
    out = []
    total = len(problems)
    for i, problem in enumerate(problems):
        out.append(solve_village(problem, model))
        if progress and (i + 1 == total or (i + 1) % 10 == 0):
            progress(i + 1, total)
    return out


# -- a slow, independent reference: used by the tests and the benchmark ------------------------


def reference_optimum(p: VillageProblem, model: CostModel) -> tuple[float, IntArray]:
    """The same problem solved densely by SciPy's ``linear_sum_assignment`` in float metres.

    Every member is expanded into one column per slot (with its marginal load cost) and every
    household gets a private "uncovered" column; returns (objective in metres, member per
    household or −1). Dense O(n·(slots+n)) memory: for checking, not for production.
    """
    from scipy.optimize import linear_sum_assignment

    n, m = p.n, p.m
    if n == 0:
        return 0.0, np.zeros(0, dtype=np.int64)
    cols_member: list[int] = []
    cols_cost: list[float] = []
    for j in range(m):
        costs = slot_costs(
            int(p.m_load[j]), int(p.m_normal[j]), int(p.m_capacity[j]), model.overload_penalty_m
        )
        cols_member += [j] * len(costs)
        cols_cost += costs.tolist()
    member_of_col = np.asarray(cols_member, dtype=np.int64)
    hh = np.repeat(np.arange(n), m)
    mem = np.tile(np.arange(m), n)
    dist = np.hypot(*(p.hh_xy[hh] - p.m_xy[mem]).T) if m else np.zeros(0)
    pair = pair_costs(p, model, hh, mem, dist).reshape(n, m) if m else np.zeros((n, 0))
    pair[dist.reshape(n, m) > model.max_distance_m] = np.inf
    # Leaving a household uncovered costs more than any distance, and (rebalancing) one that is
    # covered today more again: the same priorities as the flow's uncovered arcs.
    big, keep = 1e13, 1e9
    matrix = np.full((n, len(member_of_col) + n), np.inf)
    if len(member_of_col):
        matrix[:, : len(member_of_col)] = pair[:, member_of_col] + np.asarray(cols_cost)
    dummy = np.full(n, big)
    if p.hh_current is not None:
        dummy += keep * (p.hh_current >= 0)
    matrix[:, len(member_of_col) :][np.arange(n), np.arange(n)] = dummy
    matrix[~np.isfinite(matrix)] = big * 10  # no such pair
    rows, cols = linear_sum_assignment(matrix)
    real = (cols < len(member_of_col)) & (matrix[rows, cols] < big)
    member = np.full(n, -1, dtype=np.int64)
    member[rows[real]] = member_of_col[cols[real]]
    return float(matrix[rows[real], cols[real]].sum()), member


def objective_of(p: VillageProblem, model: CostModel, member: IntArray) -> float:
    """Distance + penalties + load costs (metres) of any assignment of this village."""
    hh = np.flatnonzero(member >= 0)
    mem = member[hh]
    dist = np.hypot(*(p.hh_xy[hh] - p.m_xy[mem]).T)
    total = float(pair_costs(p, model, hh, mem, dist).sum())
    counts = np.bincount(mem, minlength=p.m)
    for j in np.flatnonzero(counts):
        costs = slot_costs(
            int(p.m_load[j]), int(p.m_normal[j]), int(p.m_capacity[j]), model.overload_penalty_m
        )
        total += float(costs[: counts[j]].sum())
    return total
