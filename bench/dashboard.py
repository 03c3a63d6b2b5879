"""Dashboards: gridgov's rollup-backed /api/v1/dashboard reads against the naive GROUP BY over
the raw tables, same database, same request mix, in the same run.

The demo county's areas and households (150,000 by default) are loaded through the write
rules; then a year of synthetic activity is written straight into the tables (5,000,000
visits by default, with review states and flags in realistic shares, 20,000 issues in every
state) — a benchmark of reads needs the volume, not the demo's behaviour. The statement
triggers note every village and day, and one full refresh builds the rollups (timed).

Both sides get the same deterministic list of requests: summaries and child breakdowns of the
county, its townships, villages and grids, for months, weeks and days across the year.

* gridgov: served by uvicorn (``--workers``, default 2), the list fetched by wrk (Debian; its
  own CPU time is printed, so one can see it is not the bottleneck) with ``--clients`` (16)
  connections for ``--seconds``, as a county administrator; the Lua script records p50/p95/p99.
* naive: the same figures computed per request by GROUP BY over visits, households, contacts
  and issues (what a dashboard without rollups would run), straight over psycopg by the same
  number of client threads — no HTTP or JSON on that side, so the ratio is conservative.

Goal (issue 12): gridgov p95 ≤ 50 ms and ≥ 100× the naive throughput.

    .venv/bin/python bench/dashboard.py [--households N] [--visits N] [--seconds S] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402
from common import (  # noqa: E402
    add_common_args,
    bench_database,
    console,
    print_facts,
    print_table,
    server_versions,
    timed,
)
from tiles import create_admin, free_port, libpq, wait_up  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

SEED = 12
KINDS = (("month", 0.6), ("week", 0.25), ("day", 0.15))


def load(households: int, visits: int, issues: int) -> str:
    """Areas and households through the rules, then synthetic activity; returns the county."""
    from sqlalchemy import text

    from gridgov.dashboard import rollups
    from gridgov.db import session_scope
    from gridgov.demo.load import load_demo

    with timed("demo county (areas, households, members)"), session_scope() as session:
        summary = load_demo(
            session, households=households, seed=SEED, with_users=False, activity=False
        )
    county = summary.county_code
    with session_scope() as session:
        user_id = session.execute(
            text(
                "INSERT INTO users (username, password_hash, role, display_name, unit_id,"
                " county_code) SELECT 'bench_reporter', 'x', 'county_admin', '基准', id, code"
                " FROM admin_units WHERE code = :c RETURNING id"
            ),
            {"c": county},
        ).scalar_one()
        session.execute(
            text(
                "INSERT INTO contacts (county_code, village_id, member_id, household_id, role,"
                " valid_from) SELECT DISTINCT ON (h.id) h.county_code, h.village_id, m.id, h.id,"
                " 'primary', current_date - 365 FROM households h JOIN party_members m"
                " ON m.village_id = h.village_id WHERE h.id % 10 <> 0"  # 90 % covered
                " ORDER BY h.id, abs(m.id - h.id / 10)"
            )
        )
    chunk = 500_000
    with timed(f"{visits:,} visits (INSERT … SELECT, chunks of {chunk:,})"):
        done = 0
        while done < visits:
            n = min(chunk, visits - done)
            with session_scope() as session:
                session.execute(text(VISITS_SQL), {"n": n, "offset": done, "user": user_id})
            done += n
            console.print(f"[dim]  {done:,} visits[/dim]")
    with timed(f"{issues:,} issues"), session_scope() as session:
        session.execute(text(ISSUES_SQL), {"n": issues, "user": user_id})
    with session_scope() as session:
        session.execute(text("ANALYZE"))
    with timed("rollups: full refresh of every noted village and day") as t, session_scope() as s:
        result = rollups.refresh(s, max_notes=10_000_000)
    console.print(
        f"[dim]  {result.notes:,} notes, {result.periods:,} village-periods, "
        f"{result.villages} villages in {t.seconds:.1f} s[/dim]"
    )
    with psycopg.connect(libpq(os.environ["GRIDGOV_DB__URL"]), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return county


def reload(url: str) -> str:
    """A kept database: its county, with whatever the rollups have noted since refreshed."""
    from sqlalchemy import text

    from gridgov.dashboard import rollups
    from gridgov.db import session_scope

    with session_scope() as session:
        county = session.scalar(text("SELECT code FROM admin_units WHERE level = 'county'"))
    with timed("rollups: refresh of what is noted"), session_scope() as s:
        rollups.refresh(s, max_notes=10_000_000)
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE dash_dirty")
    return county


# Review states and flags in the shares a county sees (most visits clean).
VISITS_SQL = """
WITH hh AS (SELECT array_agg(id ORDER BY id) AS ids FROM households WHERE removed_at IS NULL),
pick AS (
    SELECT g, hh.ids[1 + floor(random() * cardinality(hh.ids))::int] AS household_id,
           now() - random() * interval '365 days' AS at, random() AS r
    FROM generate_series(1 + :offset, :offset + :n) AS g, hh
)
INSERT INTO visits (client_uuid, content_hash, county_code, village_id, grid_id, household_id,
    member_id, user_id, visited_at, received_at, geom, accuracy_m, method, flags, review_status)
SELECT gen_random_uuid(), md5(p.g::text) || md5(p.household_id::text), h.county_code,
       h.village_id, h.grid_id, h.id, NULL, :user, p.at, p.at + interval '2 hours', h.geom, 10,
       CASE WHEN p.r < 0.9 THEN 'door' ELSE 'phone' END,
       CASE WHEN p.r < 0.93 THEN '{}'::varchar[]
            WHEN p.r < 0.96 THEN ARRAY['far_from_household']::varchar[]
            WHEN p.r < 0.98 THEN ARRAY['poor_accuracy']::varchar[]
            ELSE ARRAY['burst', 'impossible_speed']::varchar[] END,
       CASE WHEN p.r < 0.93 THEN 'clean' WHEN p.r < 0.955 THEN 'accepted'
            WHEN p.r < 0.975 THEN 'rejected' ELSE 'pending' END
FROM pick p JOIN households h ON h.id = p.household_id
"""

ISSUES_SQL = """
WITH hh AS (SELECT array_agg(id ORDER BY id) AS ids FROM households WHERE removed_at IS NULL),
cats AS (SELECT array_agg(code ORDER BY code) AS codes FROM issue_categories
         WHERE code NOT LIKE '%00'),
pick AS (
    SELECT g, hh.ids[1 + floor(random() * cardinality(hh.ids))::int] AS household_id,
           cats.codes[1 + floor(random() * cardinality(cats.codes))::int] AS category,
           now() - random() * interval '365 days' AS at, random() AS r
    FROM generate_series(1, :n) AS g, hh, cats
)
INSERT INTO issues (client_uuid, content_hash, county_code, village_id, grid_id, category_code,
    priority, description, geom, reporter_id, state, level, sla_hours, sla_started_at, due_at,
    escalate_at, on_time, extended, rework_count, rating, created_at)
SELECT gen_random_uuid(), md5(p.g::text) || md5(p.g::text), h.county_code, h.village_id,
       h.grid_id, c.code, c.priority, '基准事件', h.geom, :user,
       (ARRAY['REPORTED', 'ACCEPTED', 'ASSIGNED', 'IN_PROGRESS', 'RESOLVED', 'VERIFIED',
              'CLOSED', 'CLOSED', 'CLOSED', 'CLOSED', 'REJECTED', 'ON_HOLD'])[1 + (p.g % 12)],
       1 + (p.g % 4), c.sla_hours, p.at, p.at + make_interval(hours => c.sla_hours * 2),
       p.at + make_interval(hours => c.sla_hours * 3), p.r < 0.8, p.r > 0.95, (p.r > 0.9)::int,
       CASE WHEN p.r < 0.7 THEN 3 + (p.g % 3) END, p.at
FROM pick p JOIN households h ON h.id = p.household_id
JOIN issue_categories c ON c.code = p.category
"""


def request_mix(url: str, county: str, count: int) -> list[tuple[str, str, str, date]]:
    """(path kind, unit code, period kind, day): deterministic, across levels and the year."""
    with psycopg.connect(libpq(url)) as conn:
        towns = [
            r[0] for r in conn.execute("SELECT code FROM admin_units WHERE level = 'township'")
        ]
        villages = [
            r[0] for r in conn.execute("SELECT code FROM admin_units WHERE level = 'village'")
        ]
        grids = [r[0] for r in conn.execute("SELECT code FROM grids WHERE valid_to IS NULL")]
    rng = random.Random(SEED)
    today = date.today()
    mix = []
    for _ in range(count):
        u = rng.random()
        if u < 0.1:
            part, code = "summary", county
        elif u < 0.15:
            part, code = "children", county
        elif u < 0.3:
            part, code = rng.choice(("summary", "children")), rng.choice(towns)
        elif u < 0.7:
            part, code = rng.choice(("summary", "children")), rng.choice(villages)
        else:
            part, code = "summary", rng.choice(grids)
        kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
        mix.append((part, code, kind, today - timedelta(days=rng.randrange(365))))
    return mix


# -- gridgov through HTTP, with wrk ----------------------------------------------------------------


def start_gridgov_workers(workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gridgov.app:create_app", "--factory"]
        + ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        + ["--log-level", "warning", "--no-access-log"],
        env={**os.environ, "GRIDGOV_LOG_LEVEL": "WARNING"},
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    wait_up(process, f"{base}/healthz")
    return process, base


WRK_LUA = """
local paths = {}
for line in io.lines("%(file)s") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], {["Authorization"] = "%(auth)s"})
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%.3f %%.3f %%.3f %%d %%d\\n", summary.requests,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, summary.errors.status, summary.errors.connect
    + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    console.print("[dim]installing wrk (apt)[/dim]")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


def run_wrk(base: str, headers: dict[str, str], mix, clients: int, seconds: int) -> dict:
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        paths = Path(tmp) / "paths.txt"
        paths.write_text(
            "\n".join(
                f"/api/v1/dashboard/{code}/{part}?period={kind}&date={day.isoformat()}"
                for part, code, kind, day in mix
            )
            + "\n"
        )
        script = Path(tmp) / "mix.lua"
        script.write_text(WRK_LUA % {"file": paths, "auth": headers["Authorization"]})
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(
            [wrk, "-t", "2", "-c", str(clients), "-d", f"{seconds}s", "-s", str(script), base],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+) (\d+)", out)
    assert match, out
    requests, duration_us, p50, p95, p99, bad_status, socket_errors = match.groups()
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "requests": int(requests),
        "rps": int(requests) / (int(duration_us) / 1e6),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "errors": int(bad_status) + int(socket_errors),
        "client_cpu_share": wrk_cpu / (int(duration_us) / 1e6),
    }


# -- the naive baseline: GROUP BY over the raw tables per request ----------------------------------

NAIVE_SQL = """
WITH hh AS (
    SELECT h.id, {key_h} AS key,
           EXISTS (SELECT 1 FROM contacts c WHERE c.household_id = h.id AND c.role = 'primary'
                   AND c.valid_to IS NULL) AS has_primary,
           (COALESCE((SELECT max(v.visited_at) FROM visits v WHERE v.household_id = h.id
                      AND v.review_status IN ('clean', 'accepted'))
                     + make_interval(days => 180), h.created_at)
            AT TIME ZONE 'Asia/Shanghai')::date AS due_day
    FROM households h JOIN admin_units u ON u.id = h.village_id
    LEFT JOIN grids g ON g.id = h.grid_id
    WHERE {where_h} AND h.removed_at IS NULL
), st AS (
    SELECT key, count(*) AS households, count(*) FILTER (WHERE has_primary) AS with_primary,
           count(*) FILTER (WHERE due_day < current_date) AS overdue
    FROM hh GROUP BY key
), vi AS (
    SELECT {key_v} AS key, count(*) AS visits,
           count(*) FILTER (WHERE v.review_status IN ('clean', 'accepted')) AS counted,
           count(*) FILTER (WHERE v.review_status = 'rejected') AS rejected,
           count(*) FILTER (WHERE cardinality(v.flags) > 0) AS flagged,
           count(DISTINCT v.household_id) FILTER (WHERE v.review_status IN ('clean', 'accepted'))
    FROM visits v JOIN admin_units u ON u.id = v.village_id LEFT JOIN grids g ON g.id = v.grid_id
    WHERE {where_v} AND v.visited_at >= %(lo)s AND v.visited_at < %(hi)s GROUP BY 1
), iss AS (
    SELECT {key_i} AS key,
           count(*) FILTER (WHERE i.state NOT IN ('REJECTED', 'MERGED', 'CANCELLED')) AS total,
           count(*) FILTER (WHERE i.state = 'CLOSED') AS closed,
           count(*) FILTER (WHERE i.state = 'CLOSED' AND i.on_time) AS on_time,
           avg(i.rating) FILTER (WHERE i.state = 'CLOSED') AS satisfaction
    FROM issues i JOIN admin_units u ON u.id = i.village_id LEFT JOIN grids g ON g.id = i.grid_id
    WHERE {where_i} AND i.created_at >= %(lo)s AND i.created_at < %(hi)s GROUP BY 1
)
SELECT * FROM st FULL JOIN vi USING (key) FULL JOIN iss USING (key)
"""


def naive_sql(part: str, code: str) -> str:
    level = {6: "county", 9: "township", 12: "village", 15: "grid"}[len(code)]
    where = "g.code = %(code)s" if level == "grid" else "u.code LIKE %(code)s || '%%'"
    if part == "summary" or level == "grid":
        key = "0"
    else:
        key = {"county": "left(u.code, 9)", "township": "u.code", "village": "g.code"}[level]
    alias = {"h": "h", "v": "v", "i": "i"}
    return NAIVE_SQL.format(
        **{f"key_{a}": key for a in alias}, **{f"where_{a}": where for a in alias}
    )


def bounds(kind: str, day: date) -> tuple[date, date]:
    from gridgov.dashboard.service import period

    p = period(kind, on=day)
    return p.start, p.end


def run_naive(url: str, mix, clients: int, seconds: int) -> dict:
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    lock = threading.Lock()
    position = iter(range(10**9))

    def worker() -> None:
        with psycopg.connect(libpq(url)) as conn:
            conn.execute("SET TIME ZONE 'Asia/Shanghai'")
            while time.monotonic() < stop:
                with lock:
                    i = next(position)
                part, code, kind, day = mix[i % len(mix)]
                lo, hi = bounds(kind, day)
                started = time.perf_counter()
                conn.execute(naive_sql(part, code), {"code": code, "lo": lo, "hi": hi}).fetchall()
                with lock:
                    latencies.append(time.perf_counter() - started)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": pct(0.5),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "errors": 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=150_000)
    parser.add_argument("--visits", type=int, default=5_000_000)
    parser.add_argument("--issues", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=2_000, help="distinct requests in the mix")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=30, help="per measurement")
    parser.add_argument("--naive-seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of gridgov")
    parser.add_argument(
        "--reuse",
        metavar="DATABASE",
        help="measure again on a database kept by --keep (migrated to head, rollups refreshed)",
    )
    add_common_args(parser)
    args = parser.parse_args(argv)
    os.environ["GRIDGOV_DASHBOARD__REFRESH_SECONDS"] = "0"  # nothing writes while measuring
    with bench_database(keep=args.keep, reuse=args.reuse) as url:
        county = reload(url) if args.reuse else load(args.households, args.visits, args.issues)
        headers = create_admin(county)
        mix = request_mix(url, county, args.requests)
        # The load average before anything is measured (the naive phase's own 16 busy
        # backends raise it by the end, so the figure printed last is not the machine's).
        load_before = os.getloadavg()
        server, base = start_gridgov_workers(args.workers)
        try:
            run_wrk(base, headers, mix, args.clients, 5)  # warm-up: caches and buffers
            fast = run_wrk(base, headers, mix, args.clients, args.seconds)
        finally:
            server.terminate()
            server.wait(timeout=30)
        naive = run_naive(url, mix, args.clients, args.naive_seconds)
        ratio = fast["rps"] / naive["rps"] if naive["rps"] else float("inf")
        print_facts(
            "dashboard benchmark",
            {
                **server_versions(url),
                "load average before": load_before,
                "load average after": os.getloadavg(),
            },
        )
        print_table(
            f"{args.visits:,} visits, {args.households:,} households, {args.clients} clients",
            ("", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"),
            [
                (
                    name,
                    f"{r['requests']:,}",
                    f"{r['rps']:.1f}",
                    f"{r['p50']:.1f}",
                    f"{r['p95']:.1f}",
                    f"{r['p99']:.1f}",
                    r["errors"],
                )
                for name, r in (("gridgov (rollups, HTTP)", fast), ("naive GROUP BY (SQL)", naive))
            ],
        )
        met = fast["p95"] <= 50 and ratio >= 100 and fast["errors"] == 0
        console.print(
            f"throughput ratio {ratio:.0f}× (goal ≥ 100×), gridgov p95 {fast['p95']:.1f} ms "
            f"(goal ≤ 50 ms); wrk used {fast['client_cpu_share']:.2f} of a core: "
            + ("[green]MET[/green]" if met else "[red]MISSED[/red]")
        )
        return 0 if fast["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
