"""Visit ingest: batch upload over HTTP (the real server, every check on) against raw COPY.

Loads a demo county (default 20 000 households) through the project's write rules, starts the
real server (``uvicorn gridgov.app:create_app`` in a subprocess on a free port, pointed at the
benchmark database, default 3 worker processes), logs in over HTTP as 100 county-level users
(copies of the demo ``county`` user: each works a block of villages, so that one person's
visits are paced like field work and the speed/burst checks flag only the odd one), then times,
wall clock:

* http: N visits (default 200 000) in batches of 500 through ``POST /api/v1/visits/batch`` from
        several concurrent clients (8 threads, one keep-alive connection each). Every
        server-side step runs: item validation, UUID matching, scoped household lookup, the
        INSERT, the verification flags (distance, accuracy, speed, burst, time; ``not_assigned``
        applies only to users linked to a Party member, these are not; the photo-reuse query
        finds no photos), the audit record and the read-back of every stored visit.
* copy: the very same stored rows (exported after the HTTP run), visits truncated, loaded with
        one ``COPY visits (...) FROM STDIN`` — the floor for getting these rows into the table
        (same indexes, foreign keys and sync triggers).

Prints visits/s for both and the ratio, and CPU seconds per visit (server processes, database
backends, client) — steadier than wall clock when other work shares the machine. Exits 1
unless every item came back ``created`` and every row is stored once.
Goal: ≥ 10 000 visits/s through HTTP.

    .venv/bin/python bench/ingest.py [--visits N] [--households H] [--clients C]
                                     [--workers W] [--users U] [--keep]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import orjson  # noqa: E402
import psycopg  # noqa: E402
from common import (  # noqa: E402
    ROOT,
    add_common_args,
    backend_cpu_seconds,
    bench_database,
    console,
    print_facts,
    print_table,
    server_versions,
    timed,
)

GOAL_VISITS_PER_S = 10_000
BATCH = 500
COPY_COLUMNS = (
    "client_uuid, content_hash, county_code, village_id, grid_id, household_id, member_id, "
    "user_id, visited_at, received_at, geom, accuracy_m, method, notes, needs, attachment_ids, "
    "flags, review_status"
)
NOTES = ("家中一切正常", "了解生产生活情况", "宣讲惠民政策", "老人身体状况良好", "反映道路问题")
NEEDS = ("希望修缮村道", "咨询医保报销", "申请临时救助")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=200_000, help="visits to upload")
    parser.add_argument("--households", type=int, default=20_000, help="demo households")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, default=3, help="uvicorn worker processes")
    parser.add_argument("--users", type=int, default=100, help="uploading users")
    parser.add_argument("--seed", type=int, default=7, help="demo generator and visit seed")
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console.rule(
        f"visit ingest, {args.visits:,} visits, {args.clients} clients, {args.workers} workers"
    )
    with bench_database(keep=args.keep) as url:
        with timed("load demo county"):
            load_county(args.households, args.seed)
        usernames = clone_users(url, args.users)
        with timed("make visits"):
            batches = make_batches(url, usernames, args.visits, args.seed)
        return run(url, args, usernames, batches)


# -- setup (untimed) ------------------------------------------------------------------------------


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def load_county(households: int, seed: int) -> None:
    from gridgov.db import session_scope
    from gridgov.demo.load import load_demo

    with session_scope() as session:
        load_demo(session, households=households, seed=seed, activity=False)


def clone_users(url: str, n: int) -> list[str]:
    """n county-level users with the demo ``county`` user's role, unit and password hash."""
    with psycopg.connect(libpq(url)) as conn:
        conn.execute(
            "INSERT INTO users (username, display_name, password_hash, role, unit_id, county_code)"
            " SELECT 'bench' || lpad(g::text, 3, '0'), display_name, password_hash, role, unit_id,"
            " county_code FROM users, generate_series(1, %s) AS g WHERE username = 'county'",
            [n],
        )
    return [f"bench{i:03d}" for i in range(1, n + 1)]


def make_batches(
    url: str, usernames: list[str], n: int, seed: int
) -> list[tuple[int, bytes, list[str]]]:
    """(user index, JSON body, UUIDs) per batch of 500.

    Visits are at the household (GPS jitter of a few metres, good accuracy), by the user who
    works its village, at times spread over the last six days.
    """
    with psycopg.connect(libpq(url)) as conn:
        rows = conn.execute(
            "SELECT id, village_id, ST_X(geom), ST_Y(geom) FROM households "
            "WHERE removed_at IS NULL ORDER BY id"
        ).fetchall()
    rng = np.random.default_rng(seed)
    ids = np.array([r[0] for r in rows])
    villages = np.array([r[1] for r in rows])
    lon = np.array([r[2] for r in rows])
    lat = np.array([r[3] for r in rows])
    n_users = len(usernames)
    # Each user works a contiguous block of villages; within it, one visit after another at
    # nearby households, evenly paced over the last six days (so that the speed and burst
    # checks run on every visit but flag only the odd one, as with honest field work).
    village_rank = np.unique(villages, return_inverse=True)[1]
    owner = village_rank * n_users // (village_rank.max() + 1)
    per_user: dict[int, list[dict]] = {}
    now = datetime.now(UTC)
    span = 6 * 86400.0
    for user in range(n_users):
        count = n // n_users + (1 if user < n % n_users else 0)
        pool = np.flatnonzero(owner == user)
        if count == 0 or len(pool) == 0:
            continue
        pick = np.sort(rng.choice(pool, count))  # households by id: by village, then nearby
        order = np.lexsort((lon[pick], villages[pick]))
        pick = pick[order]
        step = span / count
        ago = span + 3600 - (np.arange(count) + rng.uniform(0.2, 0.8, count)) * step
        d_lon, d_lat = rng.normal(0, 0.00005, count), rng.normal(0, 0.00005, count)
        accuracy = rng.uniform(5, 30, count).round(1)
        note = rng.integers(0, len(NOTES), count)
        need = rng.integers(-6, len(NEEDS), count)
        per_user[user] = [
            {
                "client_uuid": str(uuid.UUID(bytes=rng.bytes(16), version=4)),
                "household_id": int(ids[i]),
                "visited_at": (now - timedelta(seconds=float(ago[k]))).isoformat(),
                "location": {
                    "type": "Point",
                    "coordinates": [
                        round(float(lon[i] + d_lon[k]), 7),
                        round(float(lat[i] + d_lat[k]), 7),
                    ],
                },
                "accuracy_m": float(accuracy[k]),
                "method": "door",
                "notes": NOTES[note[k]],
                "needs": [NEEDS[need[k]]] if need[k] >= 0 else [],
            }
            for k, i in enumerate(pick)
        ]
    batches = []
    for user, visits in per_user.items():
        for start in range(0, len(visits), BATCH):
            chunk = visits[start : start + BATCH]
            batches.append(
                (user, orjson.dumps({"visits": chunk}), [v["client_uuid"] for v in chunk])
            )
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, port: int, workers: int) -> subprocess.Popen:
    env = os.environ | {"GRIDGOV_DB__URL": url}
    env.pop("GRIDGOV_DB__STATEMENT_TIMEOUT_MS", None)  # the API's own limit applies
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "gridgov.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        # One log line per request would cost the client's terminal more than the server.
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/me", timeout=1)
            return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("server did not start within 60 s")


def login(base: str, username: str) -> str:
    from gridgov.demo.load import DEMO_PASSWORD

    r = httpx.post(
        f"{base}/auth/token",
        data={"username": username, "password": DEMO_PASSWORD},
        timeout=30,
    )
    r.raise_for_status()
    return r.json()["access_token"]


def server_cpu(url: str, server: subprocess.Popen) -> tuple[float, float]:
    """CPU seconds used so far by the server's processes and by the database backends connected
    to the benchmark database (the pools keep their connections, so none is lost)."""
    try:
        with open(f"/proc/{server.pid}/task/{server.pid}/children") as f:
            workers = [int(p) for p in f.read().split()]
    except OSError:
        workers = []
    dbname = url.rsplit("/", 1)[1]
    with psycopg.connect(libpq(url)) as conn:
        backends = [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [dbname],
            )
        ]
    python = sum(backend_cpu_seconds(p) or 0.0 for p in [server.pid, *workers])
    return python, sum(backend_cpu_seconds(p) or 0.0 for p in backends)


# -- the measured paths ---------------------------------------------------------------------------


def upload(
    base: str, tokens: list[str], batches: list[tuple[int, bytes, list[str]]], clients: int
) -> tuple[float, Counter, list[float]]:
    """All batches from ``clients`` threads; (wall seconds, outcome counts, batch latencies)."""
    counts: Counter = Counter()
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    queue = iter(batches)

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=120) as http:
            while True:
                with lock:
                    job = next(queue, None)
                if job is None or errors:
                    return
                user, body, uuids = job
                start = time.perf_counter()
                r = http.post(
                    "/visits/batch",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {tokens[user]}",
                        "Content-Type": "application/json",
                    },
                )
                took = time.perf_counter() - start
                r.raise_for_status()
                result = orjson.loads(r.content)
                mine = Counter(item["status"] for item in result["items"])
                assert [item["client_uuid"] for item in result["items"]] == uuids
                with lock:
                    counts.update(mine)
                    latencies.append(took)

    def guarded() -> None:
        try:
            worker()
        except BaseException as exc:  # reported after the others stop
            errors.append(exc)

    threads = [threading.Thread(target=guarded) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return wall, counts, latencies


def copy_baseline(url: str) -> tuple[float, float | None, int]:
    """Export the stored visits, truncate, COPY them back; (seconds and backend CPU seconds of
    the COPY, rows)."""
    with psycopg.connect(libpq(url)) as conn:
        buf = bytearray()
        with conn.cursor().copy(f"COPY (SELECT {COPY_COLUMNS} FROM visits) TO STDOUT") as copy:
            for chunk in copy:
                buf += chunk
        conn.execute("TRUNCATE visits CASCADE")
        conn.commit()
        pid = conn.info.backend_pid
        cpu_before = backend_cpu_seconds(pid)
        start = time.perf_counter()
        with conn.cursor().copy(f"COPY visits ({COPY_COLUMNS}) FROM STDIN") as copy:
            view = memoryview(buf)
            for at in range(0, len(buf), 1 << 20):
                copy.write(view[at : at + (1 << 20)])
        conn.commit()
        seconds = time.perf_counter() - start
        cpu_after = backend_cpu_seconds(pid)
        rows = conn.execute("SELECT count(*) FROM visits").fetchone()[0]  # type: ignore[index]
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return seconds, cpu, rows


# -- the benchmark --------------------------------------------------------------------------------


def run(
    url: str,
    args: argparse.Namespace,
    usernames: list[str],
    batches: list[tuple[int, bytes, list[str]]],
) -> int:
    n = sum(len(b[2]) for b in batches)
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    with timed("start server"):
        server = start_server(url, port, args.workers)
    try:
        with timed(f"log in {len(usernames)} users"), ThreadPoolExecutor(args.clients) as pool:
            tokens = list(pool.map(lambda name: login(base, name), usernames))
        (py_before, db_before), client_before = server_cpu(url, server), time.process_time()
        http_wall, counts, latencies = upload(base, tokens, batches, args.clients)
        py_after, db_after = server_cpu(url, server)
        py_cpu, db_cpu = py_after - py_before, db_after - db_before
        http_cpu = py_cpu + db_cpu
        client_cpu = time.process_time() - client_before
        console.print(f"[dim]http upload: {http_wall:.2f} s[/dim]")
    finally:
        server.terminate()
        server.wait(30)
    with psycopg.connect(libpq(url)) as conn:
        stored = conn.execute("SELECT count(*) FROM visits").fetchone()[0]  # type: ignore[index]
        flags = conn.execute(
            "SELECT f, count(*) FROM visits, unnest(flags) AS f GROUP BY f ORDER BY 2 DESC"
        ).fetchall()
        pending = conn.execute(
            "SELECT count(*) FROM visits WHERE review_status = 'pending'"
        ).fetchone()[0]  # type: ignore[index]
    copy_seconds, copy_cpu, copied = copy_baseline(url)

    http_rate, copy_rate = n / http_wall, n / copy_seconds
    lat = sorted(latencies)
    print_table(
        f"{n:,} visits in {len(batches):,} batches of ≤ {BATCH}, {args.clients} clients, "
        f"{args.workers} server workers",
        ["path", "seconds", "visits/s", "server CPU s", "µs CPU/visit"],
        [
            [
                "http (POST /visits/batch, all checks)",
                f"{http_wall:.2f}",
                f"{http_rate:,.0f}",
                f"{http_cpu:.1f}",
                f"{http_cpu / n * 1e6:.0f}",
            ],
            [
                "copy (raw COPY of the same rows)",
                f"{copy_seconds:.2f}",
                f"{copy_rate:,.0f}",
                f"{copy_cpu:.1f}" if copy_cpu is not None else "n/a",
                f"{copy_cpu / n * 1e6:.0f}" if copy_cpu is not None else "n/a",
            ],
        ],
    )
    cores = os.cpu_count() or 1
    verdict = "met" if http_rate >= GOAL_VISITS_PER_S else "MISSED"
    facts = {
        "http visits/s": f"{http_rate:,.0f} (goal ≥ {GOAL_VISITS_PER_S:,}: {verdict})",
        "ratio copy/http": f"{copy_rate / http_rate:.1f}× (http is {http_rate / copy_rate:.1%})",
        "http by CPU time": (
            f"server {http_cpu / n * 1e6:.0f} µs/visit (Python {py_cpu / n * 1e6:.0f}, "
            f"PostgreSQL {db_cpu / n * 1e6:.0f}), client {client_cpu / n * 1e6:.0f}; "
            f"on {cores} idle cores at most {cores * n / (http_cpu + client_cpu):,.0f} visits/s"
        ),
        "machine load average": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "outcomes": ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())),
        "stored after http / after copy": f"{stored:,} / {copied:,}",
        "batch latency p50 / p95": (
            f"{lat[len(lat) // 2]:.2f} s / {lat[int(len(lat) * 0.95)]:.2f} s"
        ),
        "flags raised": ", ".join(f"{f} {c:,}" for f, c in flags) or "none",
        "pending review": f"{pending:,}",
        "households / users": f"{args.households:,} / {len(usernames)}",
        "cores": str(os.cpu_count()),
        **server_versions(url),
        "date": date.today().isoformat(),
    }
    print_facts("result", facts)
    ok = counts == Counter(created=n) and stored == n and copied == n
    if not ok:
        console.print("[red]not every visit was created exactly once[/red]")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
