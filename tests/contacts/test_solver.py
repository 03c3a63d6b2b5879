"""The exact solver on numpy arrays: against SciPy's assignment solver and brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from gridgov.contacts import solver
from gridgov.contacts.solver import CostModel, VillageProblem


def problem(
    rng: np.random.Generator,
    n: int,
    m: int,
    *,
    capacity: tuple[int, int] = (2, 8),
    normal: int = 3,
    spread: float = 400.0,
    current: bool = False,
) -> VillageProblem:
    hh = rng.normal(0, spread, (n, 2))
    homes = hh[rng.integers(0, n, m)] + rng.normal(0, 5, (m, 2)) if n else rng.normal(0, 1, (m, 2))
    cap = rng.integers(capacity[0], capacity[1] + 1, m)
    load = np.minimum(rng.integers(0, 3, m), cap)
    return VillageProblem(
        hh_xy=hh,
        hh_grid=rng.integers(1, 4, n),
        hh_hamlet=rng.integers(1, 5, n),
        m_xy=homes,
        m_grid=rng.integers(-1, 4, m),
        m_hamlet=rng.integers(-1, 5, m),
        m_load=load,
        m_normal=np.full(m, normal),
        m_capacity=cap,
        hh_current=np.where(rng.random(n) < 0.5, rng.integers(0, max(m, 1), n), -1)
        if current and m
        else None,
    )


def check(p: VillageProblem, model: CostModel, s: solver.VillageSolution) -> None:
    """Every constraint of the plan: capacity, reach, coverage and cost equal to the optimum."""
    assigned = s.member >= 0
    counts = np.bincount(s.member[assigned], minlength=p.m)
    assert (p.m_load + counts <= np.maximum(p.m_capacity, p.m_load)).all()
    assert (s.distance_m[assigned] <= model.max_distance_m + 1e-9).all()
    assert (s.reason[assigned] == solver.COVERED).all()
    assert (s.reason[~assigned] != solver.COVERED).all()
    best, best_member = solver.reference_optimum(p, model)
    assert assigned.sum() == (best_member >= 0).sum(), "coverage is not maximal"
    got = solver.objective_of(p, model, s.member)
    # integer decimetres: each pair's cost is rounded by at most 0.05 m
    assert got <= best + 0.05 * p.n + 1e-6, (got, best)
    assert abs(got - s.objective_m) <= 0.05 * p.n + 1e-6


@pytest.mark.parametrize("seed", range(40))
def test_matches_scipy_linear_sum_assignment(seed):
    rng = np.random.default_rng(seed)
    p = problem(rng, int(rng.integers(1, 70)), int(rng.integers(1, 12)), current=seed % 2 == 1)
    model = CostModel(
        candidates=int(rng.integers(1, 6)),
        max_distance_m=float(rng.choice([250.0, 700.0, 5000.0])),
        keep_bonus_m=50.0 if seed % 2 else 0.0,
    )
    check(p, model, solver.solve_village(p, model))


def test_tight_capacity_needs_and_passes_the_certificate():
    """One candidate per household cannot be enough when near members are full: the residual
    graph's potentials find the missing arcs and the second round is the optimum."""
    rng = np.random.default_rng(11)
    rounds = []
    for _ in range(15):
        p = problem(rng, 60, 8, capacity=(3, 6))
        model = CostModel(candidates=1)
        s = solver.solve_village(p, model)
        check(p, model, s)
        rounds.append(s.rounds)
    assert max(rounds) > 1


def test_brute_force_on_tiny_villages():
    rng = np.random.default_rng(5)
    model = CostModel(candidates=1, max_distance_m=10_000)
    for _ in range(25):
        p = problem(rng, 5, 3, capacity=(1, 3), normal=1)
        s = solver.solve_village(p, model)
        best = math.inf
        best_covered = -1
        for choice in itertools.product(range(-1, p.m), repeat=p.n):
            member = np.asarray(choice)
            counts = np.bincount(member[member >= 0], minlength=p.m)
            if (p.m_load + counts > p.m_capacity).any():
                continue
            covered = int((member >= 0).sum())
            cost = solver.objective_of(p, model, member)
            if covered > best_covered or (covered == best_covered and cost < best):
                best_covered, best = covered, cost
        assert (s.member >= 0).sum() == best_covered
        assert solver.objective_of(p, model, s.member) <= best + 0.05 * p.n + 1e-6


def test_reasons_for_households_left_without():
    rng = np.random.default_rng(1)
    p = problem(rng, 4, 0)
    assert (solver.solve_village(p, CostModel()).reason == solver.NO_ELIGIBLE_MEMBER).all()
    full = problem(rng, 4, 2)
    full.m_load = full.m_capacity.copy()
    assert (solver.solve_village(full, CostModel()).reason == solver.CAPACITY_EXHAUSTED).all()
    far = VillageProblem(
        hh_xy=np.array([[0.0, 0.0], [9000.0, 0.0], [10.0, 0.0]]),
        hh_grid=np.ones(3, np.int64),
        hh_hamlet=np.ones(3, np.int64),
        m_xy=np.array([[0.0, 5.0]]),
        m_grid=np.ones(1, np.int64),
        m_hamlet=np.ones(1, np.int64),
        m_load=np.zeros(1, np.int64),
        m_normal=np.ones(1, np.int64),
        m_capacity=np.ones(1, np.int64),
    )
    s = solver.solve_village(far, CostModel(max_distance_m=5000))
    assert s.reason.tolist() == [
        solver.COVERED,
        solver.NO_MEMBER_WITHIN_REACH,
        solver.CAPACITY_EXHAUSTED,
    ]
    assert s.member.tolist() == [0, -1, -1]


def test_balancing_spreads_the_load():
    """Ten households around one member and one a little farther away: without the load cost
    the near member takes all it may; with it, the other takes its share."""
    rng = np.random.default_rng(3)
    hh = rng.normal(0, 20, (10, 2))
    p = VillageProblem(
        hh_xy=hh,
        hh_grid=np.ones(10, np.int64),
        hh_hamlet=np.ones(10, np.int64),
        m_xy=np.array([[0.0, 0.0], [300.0, 0.0]]),
        m_grid=np.ones(2, np.int64),
        m_hamlet=np.ones(2, np.int64),
        m_load=np.zeros(2, np.int64),
        m_normal=np.full(2, 5),
        m_capacity=np.full(2, 10),
    )
    plain = solver.solve_village(p, CostModel(overload_penalty_m=0))
    balanced = solver.solve_village(p, CostModel(overload_penalty_m=150))
    assert np.bincount(plain.member, minlength=2).tolist() == [10, 0]
    assert np.bincount(balanced.member, minlength=2).max() < 10
    check(p, CostModel(overload_penalty_m=150), balanced)


def test_same_grid_preference():
    # Two members at the same distance; the household prefers the one serving its grid.
    p = VillageProblem(
        hh_xy=np.array([[0.0, 0.0]]),
        hh_grid=np.array([2]),
        hh_hamlet=np.array([1]),
        m_xy=np.array([[100.0, 0.0], [-100.0, 0.0]]),
        m_grid=np.array([1, 2]),
        m_hamlet=np.array([-1, -1]),
        m_load=np.zeros(2, np.int64),
        m_normal=np.full(2, 5),
        m_capacity=np.full(2, 5),
    )
    assert solver.solve_village(p, CostModel()).member.tolist() == [1]
    p.m_xy = np.array([[100.0, 0.0], [-250.0, 0.0]])  # 150 m farther: less than the 200 m penalty
    assert solver.solve_village(p, CostModel()).member.tolist() == [1]
    assert solver.solve_village(p, CostModel(grid_penalty_m=0)).member.tolist() == [0]


def test_rebalancing_an_optimal_plan_changes_nothing():
    rng = np.random.default_rng(8)
    p = problem(rng, 50, 7, capacity=(8, 10))
    model = CostModel(keep_bonus_m=50)
    first = solver.solve_village(p, CostModel())
    p.hh_current = first.member
    again = solver.solve_village(p, model)
    assert (again.member == first.member).all()


def test_equirectangular_projection_is_accurate_at_village_scale():
    lon0, lat0 = 111.1, 26.1
    lon = np.array([111.1, 111.13, 111.08])
    lat = np.array([26.1, 26.12, 26.07])
    xy = solver.project(lon, lat, lon0, lat0)

    def haversine(a: int, b: int) -> float:
        p1, p2 = math.radians(lat[a]), math.radians(lat[b])
        dp, dl = p2 - p1, math.radians(lon[b] - lon[a])
        h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 2 * solver.EARTH_RADIUS_M * math.asin(math.sqrt(h))

    for a, b in ((0, 1), (0, 2), (1, 2)):
        flat = float(np.hypot(*(xy[a] - xy[b])))
        assert abs(flat - haversine(a, b)) / haversine(a, b) < 1e-3
