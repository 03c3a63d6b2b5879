"""党员联系户 automatic assignment on the demo county: the service end to end vs a bare solve.

Loads the demo county (150 000 households, ~15 000 Party members by default) through the demo
loader into a throwaway database, then times, alternating and repeated (median of --repeat):

* end-to-end: ``gridgov.contacts.service.auto_assign(session, <system scope>,
  unit_code=<county>, mode="dry_run")`` — read every village's households and eligible members
  from PostGIS (two binary COPYs), project, build one problem per village, solve them all,
  build the plan (pairs, loads, holes); its JSON rendering is timed on its own;
* bare solve: ``gridgov.contacts.solver.solve_villages`` on the same problems, already in
  memory (the min-cost flows with their optimality certificates, nothing else).

Then every village's plan is checked against SciPy's dense ``linear_sum_assignment`` of the
same problem in float metres (each member expanded into one column per slot):

* grid/hamlet preferences off, load balancing on: plan objective / optimum objective
  (objective = distance + load cost, in metres);
* all preferences off: plan total distance / optimum total distance.

Goals: every village's ratio ≤ 1.001; county end-to-end ≤ 10 s and ≤ 3 × the bare solve.

    .venv/bin/python bench/auto_assign.py [--households N] [--repeat R] [--no-verify] [--keep]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from common import (  # noqa: E402
    Samples,
    add_common_args,
    bench_database,
    console,
    print_facts,
    print_table,
    server_versions,
    timed,
)

GOAL_RATIO = 1.001
GOAL_SECONDS = 10.0
GOAL_OVER_BARE = 3.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=150_000, help="demo county size")
    parser.add_argument("--seed", type=int, default=7, help="demo generator seed")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per path (median)")
    parser.add_argument(
        "--no-verify", action="store_true", help="skip the per-village check against SciPy"
    )
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from gridgov.db import session_scope
    from gridgov.demo.load import load_demo

    console.rule(f"党员联系户 auto-assign, demo county of {args.households:,} households")
    with bench_database(keep=args.keep) as url:
        with timed("generate and load the demo county"), session_scope() as session:
            summary = load_demo(
                session,
                households=args.households,
                seed=args.seed,
                with_users=False,
                activity=False,
            )
        return run(url, args, summary.county_code)


def run(url: str, args: argparse.Namespace, county: str) -> int:
    import orjson

    from gridgov.auth.scope import system_scope
    from gridgov.contacts import planner, solver
    from gridgov.db import session_scope

    def end_to_end() -> tuple[planner.Plan, float]:
        with session_scope() as session:
            scope = system_scope(session, county)
            start = time.perf_counter()
            plan = planner.auto_assign(session, scope, unit_code=county)
            seconds = time.perf_counter() - start
        return plan, seconds

    with session_scope() as session:
        unit = planner.read_unit(session, system_scope(session, county), unit_code=county)

    def bare() -> tuple[list[solver.VillageSolution], float]:
        start = time.perf_counter()
        solutions = solver.solve_villages(unit.problems, unit.model)
        return solutions, time.perf_counter() - start

    end_to_end()  # warm-up: imports, plan caches, the buffer cache
    e2e, base, render = Samples("end-to-end"), Samples("bare solve"), Samples("plan → JSON")
    plan = None
    objectives: set[float] = set()
    for i in range(args.repeat):
        for name in ("e2e", "bare") if i % 2 == 0 else ("bare", "e2e"):
            if name == "e2e":
                plan, seconds = end_to_end()
                e2e.seconds.append(seconds)
                objectives.add(round(plan.objective_m, 3))
                start = time.perf_counter()
                body = orjson.dumps(planner.plan_body(plan))
                render.seconds.append(time.perf_counter() - start)
                console.print(f"[dim]run {i + 1}: end-to-end {seconds:.2f} s {plan.seconds}[/dim]")
            else:
                solutions, seconds = bare()
                base.seconds.append(seconds)
                objectives.add(round(sum(s.objective_m for s in solutions), 3))
                console.print(f"[dim]run {i + 1}: bare solve {seconds:.2f} s[/dim]")
    assert plan is not None
    households = plan.households
    print_table(
        f"county-wide dry run, {households:,} households in {plan.villages} villages "
        f"(median of {args.repeat})",
        ["path", "median s", "min–max s", "households/s"],
        [
            [s.label, f"{s.median:.2f}", s.spread, f"{households / s.median:,.0f}"]
            for s in (e2e, base, render)
        ],
    )
    over_bare = e2e.median / base.median
    used = plan.load_kept + plan.load_proposed
    facts = {
        "end-to-end": f"{e2e.median:.2f} s  (goal ≤ {GOAL_SECONDS:.0f} s: "
        f"{'met' if e2e.median <= GOAL_SECONDS else 'MISSED'})",
        "end-to-end / bare solve": f"{over_bare:.2f}  (goal ≤ {GOAL_OVER_BARE}: "
        f"{'met' if over_bare <= GOAL_OVER_BARE else 'MISSED'})",
        "same optimum in every run": "yes" if len(objectives) == 1 else f"NO: {objectives}",
        "covered / uncovered": f"{len(plan.pair_household):,} / {len(plan.uncovered_household):,}",
        "average distance": f"{plan.total_distance_m / max(len(plan.pair_household), 1):.1f} m",
        "members used, over normal load, max load": (
            f"{int((used > 0).sum()):,}, {int((used > plan.load_normal).sum()):,}, "
            f"{int(used.max()) if len(used) else 0}"
        ),
        "certificate rounds per village": _rounds(plan.solutions),
        "plan JSON": f"{len(body) / 1e6:.1f} MB",
    }
    ok = e2e.median <= GOAL_SECONDS and over_bare <= GOAL_OVER_BARE and len(objectives) == 1
    if not args.no_verify:
        worst = verify(county)
        for label, (ratios, villages) in worst.items():
            facts[label] = (
                f"max {ratios.max():.6f}, median {np.median(ratios):.6f} over {villages} villages "
                f"(goal ≤ {GOAL_RATIO}: {'met' if ratios.max() <= GOAL_RATIO else 'MISSED'})"
            )
            ok = ok and ratios.max() <= GOAL_RATIO
    facts.update(server_versions(url))
    facts["date"] = date.today().isoformat()
    print_facts("result", facts)
    return 0 if ok else 1


def _rounds(solutions: list) -> str:
    counts: dict[int, int] = {}
    for s in solutions:
        counts[s.rounds] = counts.get(s.rounds, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


def verify(county: str) -> dict[str, tuple[np.ndarray, int]]:
    """Every village against SciPy's dense assignment, in two settings of the preferences."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from gridgov.auth.scope import system_scope
    from gridgov.contacts import planner, solver
    from gridgov.db import session_scope

    out: dict[str, tuple[np.ndarray, int]] = {}
    settings = {
        "objective / optimum (grid, hamlet off)": {"balance": True},
        "distance / optimum (all preferences off)": {"balance": False},
    }
    for label, flags in settings.items():
        with session_scope() as session:
            unit = planner.read_unit(
                session,
                system_scope(session, county),
                unit_code=county,
                same_grid=False,
                same_hamlet=False,
                **flags,
            )
            plan = planner.auto_assign(
                session,
                system_scope(session, county),
                unit_code=county,
                same_grid=False,
                same_hamlet=False,
                **flags,
            )
        ratios = []
        with Progress(
            TextColumn(f"check {label}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("", total=len(unit.problems))
            for p, s in zip(unit.problems, plan.solutions, strict=True):
                best, best_member = solver.reference_optimum(p, unit.model)
                if (best_member >= 0).sum() != (s.member >= 0).sum():
                    ratios.append(np.inf)  # fewer households covered than possible
                elif flags["balance"]:
                    got = solver.objective_of(p, unit.model, s.member)
                    ratios.append(got / best if best else 1.0)
                else:
                    covered = best_member >= 0
                    optimum = float(
                        np.hypot(*(p.hh_xy[covered] - p.m_xy[best_member[covered]]).T).sum()
                    )
                    ratios.append(s.total_distance_m / optimum if optimum else 1.0)
                bar.advance(task)
        out[label] = (np.asarray(ratios), len(ratios))
        console.print(
            f"[dim]{label}: worst {max(ratios):.6f}, mean {statistics.fmean(ratios):.6f}[/dim]"
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
