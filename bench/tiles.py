"""Vector tiles: gridgov's /tiles against tipg 1.6.1, same database, same tiles, in the same run.

The demo county (150,000 households by default) is loaded into a throwaway database (or one
kept by ``--keep``, measured again with ``--reuse``). Three servers run side by side on it,
each under uvicorn with ``--workers`` (2):

* **tipg** 1.6.1 (bench/.venv), serving the tables' own ``geom_3857`` with extent 4096 and
  gridgov's buffer (64), no feature cap (``TIPG_MAX_FEATURES_PER_TILE`` above any tile here);
* **gridgov uncached**: ``GRIDGOV_MAPS__TILE_CACHE_BYTES=0``, so every request renders its
  tile — proven per response (``X-Tile-Cache: miss`` counted by the wrk script) and by the
  ``gridgov_tile_cache_hits`` counter of every worker on /metrics;
* **gridgov cached**: the default cache, measured after warm passes that go on until a pass
  renders nothing (its hits and misses are printed too).

For each zoom (z8, z10, z12, z14, z16) and layer, the tiles are **every distinct tile**
covering the county polygon at that zoom (a seeded sample of ``--max-tiles`` where there are
more). wrk (Debian) drives each server through that list for ``--seconds`` with ``--clients``
(16) connections; each of its 2 threads starts at another point of the list. Printed per cell:
req/s, p50/p95/p99, ratios against tipg, hit/miss counts, wrk's own CPU (share of a core) and
the load average.

What is compared:

* grids — both send polygons clipped to the tile with the buffer. gridgov simplifies to one
  MVT unit and adds the village code/name and household/covered counts; tipg sends the table's
  id, code, name, kind (it reads one table): gridgov sends more, so the ratio is conservative.
* households z14, z16 (``cluster_below`` = 14): points against points, every household in the
  tile; gridgov adds the village and grid codes (joined); tipg sends id, hamlet, size, tags,
  flags.
* households z8–z12: gridgov sends clusters (16 × 16 cells per tile, ``count`` per cell at
  its points' centroid). tipg serves a **function layer** (``public.bench_household_clusters``,
  created here) running the same clustering query, so both send the same clusters.

PostgreSQL's buffers are warmed by one unmeasured pass per cell for tipg and gridgov alike.
Goals (issue 14): uncached ≥ 1.5× tipg, cached ≥ 5× tipg, at every zoom and layer.

    .venv/bin/python bench/tiles.py [--households N] [--seconds S] [--zooms 8,12]
        [--layers grids] [--servers tipg,uncached] [--keep | --reuse DATABASE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from common import (  # noqa: E402
    ROOT,
    add_common_args,
    bench_database,
    console,
    print_facts,
    print_table,
    server_versions,
    timed,
)
from rich.console import Console  # noqa: E402

BENCH_VENV = ROOT / "bench" / ".venv"
TIPG_VERSION = "1.6.1"
SEED = 20260601
ZOOMS = (8, 10, 12, 14, 16)
GOAL_UNCACHED, GOAL_CACHED = 1.5, 5.0
LAYERS = ("grids", "households")
SERVERS = ("tipg", "uncached", "cached")
# What tipg exposes: the same tables, their stored EPSG:3857 geometry, the layers' own columns
# (tipg reads one table, so the joined properties gridgov adds are not available to it).
TIPG_PROPERTIES = {
    "grids": ["id", "code", "name", "kind"],
    "households": ["id", "hamlet", "size", "tags", "flags"],
}
MVT_BUFFER = 64  # gridgov.gis.queries.MVT_BUFFER
CLUSTER_CELLS = 16  # gridgov.gis.queries.CLUSTER_CELLS
CLUSTER_BELOW = 14  # gridgov.gis.layers.HOUSEHOLDS.cluster_below
TIPG_CLUSTERS = "bench_household_clusters"

# The tipg function layer for households below z14: gridgov's clustering query
# (queries.cluster_tile_sql) over the same rows, one row per non-empty cell. tipg assumes a
# function's geometry is EPSG:4326 (no typmod to read), so the centroids go out in 4326 and
# tipg projects them back to 3857, as it does for any 4326 layer.
TIPG_CLUSTERS_SQL = f"""
CREATE OR REPLACE FUNCTION public.{TIPG_CLUSTERS}(z integer, x integer, y integer)
RETURNS TABLE (count integer, cluster boolean, geom geometry)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH b AS (
        SELECT e AS env, ST_XMin(e) AS minx, ST_YMin(e) AS miny, ST_XMax(e) AS maxx,
               ST_YMax(e) AS maxy, (ST_XMax(e) - ST_XMin(e)) / {CLUSTER_CELLS} AS cell
        FROM ST_TileEnvelope(z, x, y) AS e
    ), xy AS (
        SELECT ST_X(t.geom_3857) AS x, ST_Y(t.geom_3857) AS y
        FROM b CROSS JOIN households t
        WHERE t.removed_at IS NULL AND t.geom_3857 && b.env
    )
    SELECT count(*)::int, true,
           ST_Transform(ST_SetSRID(ST_MakePoint(avg(xy.x), avg(xy.y)), 3857), 4326)
    FROM xy CROSS JOIN b
    WHERE xy.x >= b.minx AND xy.x < b.maxx AND xy.y > b.miny AND xy.y <= b.maxy
    GROUP BY floor((xy.x - b.minx) / b.cell), floor((b.maxy - xy.y) / b.cell)
$$
"""


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_tipg() -> Path:
    """bench/.venv with tipg (pinned) and uvicorn; its python."""
    python = BENCH_VENV / "bin" / "python"
    probe = [
        str(python),
        "-c",
        f"import importlib.metadata as m, uvicorn; assert m.version('tipg') == '{TIPG_VERSION}'",
    ]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    with timed(f"install tipg {TIPG_VERSION} into bench/.venv"):
        if not python.exists():
            subprocess.run(["python3", "-m", "venv", str(BENCH_VENV)], check=True)
        pip = [str(BENCH_VENV / "bin" / "pip"), "install", "-q", f"tipg=={TIPG_VERSION}"]
        subprocess.run(pip + ["uvicorn"], check=True)
    return python


def ensure_wrk() -> str:
    from dashboard import ensure_wrk as ensure

    return ensure()


def load(households: int) -> str:
    from gridgov.db import session_scope
    from gridgov.demo.load import load_demo

    with timed(f"load demo county ({households:,} households)"), session_scope() as session:
        summary = load_demo(session, households=households, activity=False)
    return summary.county_code


def county_of(url: str) -> str:
    with psycopg.connect(libpq(url)) as conn:
        row = conn.execute(
            "SELECT code FROM admin_units WHERE level = 'county' AND valid_to IS NULL"
        ).fetchone()
    assert row is not None, "no county in the database"
    return row[0]


def create_admin(county: str) -> dict[str, str]:
    from datetime import timedelta

    from sqlalchemy import text

    from gridgov.auth import security
    from gridgov.auth.service import create_user
    from gridgov.db import session_scope

    with session_scope() as session:
        # A kept database (--reuse) already has the user.
        user_id = session.scalar(text("SELECT id FROM users WHERE username = 'bench_tiles'"))
        if user_id is None:
            user_id = create_user(
                session,
                None,
                username="bench_tiles",
                password="bench-tiles-pass",
                role="county_admin",
                display_name="瓦片基准",
                unit_code=county,
            ).id
    token, _ = security.encode(
        {"sub": str(user_id), "typ": "access", "role": "county_admin"}, timedelta(hours=6)
    )
    return {"Authorization": f"Bearer {token}"}


def prepare(url: str) -> None:
    """The tipg function layer; fresh statistics."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute(TIPG_CLUSTERS_SQL)
        conn.execute("VACUUM ANALYZE")


def county_tiles(url: str, county: str, z: int, limit: int) -> tuple[list[tuple[int, int]], int]:
    """Every tile at ``z`` that intersects the county polygon (a seeded sample of ``limit`` if
    there are more), and how many there are."""
    n = 2**z
    with psycopg.connect(libpq(url)) as conn:
        xmin, ymin, xmax, ymax = conn.execute(
            "SELECT ST_XMin(g), ST_YMin(g), ST_XMax(g), ST_YMax(g) FROM"
            " (SELECT geom_3857 AS g FROM admin_units WHERE code = %s AND level = 'county'"
            " AND valid_to IS NULL) u",
            (county,),
        ).fetchone()
        half = 20037508.342789244

        def tx(v: float) -> int:
            return min(n - 1, int((v + half) / (2 * half) * n))

        def ty(v: float) -> int:
            return min(n - 1, int((half - v) / (2 * half) * n))

        tiles = conn.execute(
            "SELECT x, y FROM generate_series(%s::int, %s::int) x,"
            " generate_series(%s::int, %s::int) y,"
            " admin_units u WHERE u.code = %s AND u.level = 'county' AND u.valid_to IS NULL"
            " AND ST_Intersects(u.geom_3857, ST_TileEnvelope(%s::int, x, y)) ORDER BY x, y",
            (tx(xmin), tx(xmax), ty(ymax), ty(ymin), county, z),
        ).fetchall()
    found = [(x, y) for x, y in tiles]
    total = len(found)
    if total > limit:
        found = random.Random(SEED + z).sample(found, limit)
    return found, total


# -- servers --------------------------------------------------------------------------------------


def wait_up(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited at start: {url}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not start: {url}")
        time.sleep(0.2)


def start_gridgov(workers: int = 1, cache_bytes: int | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "GRIDGOV_LOG_LEVEL": "WARNING"}
    if cache_bytes is not None:
        env["GRIDGOV_MAPS__TILE_CACHE_BYTES"] = str(cache_bytes)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gridgov.app:create_app", "--factory"]
        + ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        + ["--log-level", "warning", "--no-access-log"],
        env=env,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    wait_up(process, f"{base}/healthz")
    return process, base


def start_tipg(python: Path, url: str, workers: int = 1) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": libpq(url),
        "TIPG_DB_SCHEMAS": '["public"]',
        "TIPG_DB_TABLES": json.dumps([f"public.{layer}" for layer in LAYERS]),
        "TIPG_DB_FUNCTIONS": json.dumps([f"public.{TIPG_CLUSTERS}"]),
        # Same MVT extent (4096, tipg's default) and buffer as gridgov (queries.MVT_BUFFER).
        "TIPG_TILE_RESOLUTION": "4096",
        "TIPG_TILE_BUFFER": str(MVT_BUFFER),
        # gridgov never caps a tile; neither does tipg here (its default is 10,000 features).
        "TIPG_MAX_FEATURES_PER_TILE": "1000000",
        "TIPG_DB_MAX_CONN_SIZE": "16",
        "TIPG_DB_SPATIAL_EXTENT": "false",
        "TIPG_DB_DATETIME_EXTENT": "false",
    }
    for layer, props in TIPG_PROPERTIES.items():
        key = f"TIPG_TABLE_CONFIG__public_{layer}__"
        env[key + "GEOMCOL"] = "geom_3857"
        env[key + "PK"] = "id"
        env[key + "PROPERTIES"] = json.dumps(props)
    process = subprocess.Popen(
        [str(python), "-m", "uvicorn", "tipg.main:app"]
        + ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        + ["--log-level", "warning", "--no-access-log"],
        env=env,
        cwd="/tmp",  # tipg reads a .env from its working directory
    )
    base = f"http://127.0.0.1:{port}"
    wait_up(process, f"{base}/collections")
    return process, base


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def gridgov_path(layer: str, z: int, x: int, y: int) -> str:
    return f"/tiles/{layer}/{z}/{x}/{y}.mvt"


def tipg_path(layer: str, z: int, x: int, y: int) -> str:
    collection = f"public.{layer}"
    if layer == "households" and z < CLUSTER_BELOW:
        collection = f"public.{TIPG_CLUSTERS}"
    return f"/collections/{collection}/tiles/WebMercatorQuad/{z}/{x}/{y}"


# -- wrk ------------------------------------------------------------------------------------------

# Each wrk thread cycles through the list from its own starting point; response() counts the
# statuses and the X-Tile-Cache header of every answer (per thread), done() adds them up.
WRK_LUA = """
local paths = {}
for line in io.lines("%(file)s") do paths[#paths + 1] = line end
local threads = {}
local counter = 0
function setup(thread)
  thread:set("start", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  i = math.floor(start * #paths / %(threads)d)
  hits, misses, nocache, ok, empty, other = 0, 0, 0, 0, 0, 0
end
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], {["Authorization"] = "%(auth)s"})
end
response = function(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 204 then empty = empty + 1
  else other = other + 1 end
  local c = headers["x-tile-cache"] or headers["X-Tile-Cache"]
  if c == "hit" then hits = hits + 1 elseif c == "miss" then misses = misses + 1
  else nocache = nocache + 1 end
end
done = function(summary, latency, requests)
  local t = {hits = 0, misses = 0, nocache = 0, ok = 0, empty = 0, other = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  io.write(string.format("RESULT %%d %%d %%d %%.3f %%.3f %%.3f %%d %%d %%d %%d %%d %%d %%d\\n",
    summary.requests, summary.duration, summary.bytes, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, t.ok, t.empty, t.other, t.hits, t.misses, t.nocache))
end
"""
WRK_THREADS = 2
RESULT = re.compile(r"RESULT" + r" ([\d.]+)" * 13)


def run_wrk(
    base: str, headers: dict[str, str], paths: list[str], clients: int, seconds: float
) -> dict[str, float]:
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "paths.txt"
        listing.write_text("\n".join(paths) + "\n")
        script = Path(tmp) / "tiles.lua"
        script.write_text(
            WRK_LUA
            % {
                "file": listing,
                "auth": headers.get("Authorization", ""),
                "threads": WRK_THREADS,
            }
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(
            [wrk, "-t", str(WRK_THREADS), "-c", str(clients), "-d", f"{int(seconds)}s"]
            + ["--timeout", "60s", "-s", str(script), base],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = RESULT.search(out)
    assert match, out
    keys = "requests duration bytes p50 p95 p99 socket_errors ok empty other hits misses none"
    r = dict(zip(keys.split(), map(float, match.groups()), strict=True))
    duration = r["duration"] / 1e6
    r["rps"] = r["requests"] / duration
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    r["wrk_cpu"] = wrk_cpu / duration
    r["load"] = os.getloadavg()[0]
    if r["other"] or r["socket_errors"]:
        bad = f"{r['other']:.0f} bad statuses, {r['socket_errors']:.0f} socket errors"
        raise RuntimeError(f"{base}: {bad}")
    return r


def cache_counters(base: str, workers: int) -> dict[str, dict[str, float]]:
    """gridgov_tile_cache_* of every worker process (a scrape reaches one of them; new
    connections until each pid has been seen)."""
    seen: dict[str, dict[str, float]] = {}
    pattern = re.compile(r'^gridgov_tile_cache_(\w+?)(?:_total)?\{pid="(\d+)"\} (\S+)$', re.M)
    for _ in range(200):
        text = httpx.get(f"{base}/metrics", timeout=10).text
        for name, pid, value in pattern.findall(text):
            seen.setdefault(pid, {})[name] = float(value)
        if len(seen) >= workers:
            break
    return seen


def total(counters: dict[str, dict[str, float]], name: str) -> float:
    return sum(c.get(name, 0.0) for c in counters.values())


# -- the run --------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, url: str, county: str) -> int:
    headers = create_admin(county)
    python = ensure_tipg()
    zooms = [int(z) for z in args.zooms.split(",")]
    layers = args.layers.split(",")
    servers = args.servers.split(",")
    lists = {}
    for z in zooms:
        lists[z] = county_tiles(url, county, z, args.max_tiles)
    print_facts(
        "setup",
        server_versions(url)
        | {
            "households": county_households(url),
            "tiles per zoom (distinct, sampled if more)": ", ".join(
                f"z{z} {len(t)}" + (f" of {n}" if n > len(t) else "") for z, (t, n) in lists.items()
            ),
            "load": f"wrk, {args.clients} connections, {WRK_THREADS} threads, {args.seconds} s"
            " per cell after an unmeasured pass",
            "servers": f"uvicorn --workers {args.workers} each; tipg {TIPG_VERSION}",
            "cached": f"GRIDGOV_MAPS__TILE_CACHE_BYTES={args.cache_bytes or 'default'}",
            "load average at start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        },
    )
    running: dict[str, tuple[subprocess.Popen, str]] = {}
    results: dict[tuple[str, int, str], dict[str, float]] = {}
    try:
        if "tipg" in servers:
            running["tipg"] = start_tipg(python, url, args.workers)
        if "uncached" in servers:
            running["uncached"] = start_gridgov(args.workers, cache_bytes=0)
        if "cached" in servers:
            running["cached"] = start_gridgov(args.workers, cache_bytes=args.cache_bytes)
        for layer in layers:
            for z in zooms:
                tiles = lists[z][0]
                for name in servers:
                    process, base = running[name]
                    if name == "tipg":
                        paths, h = [tipg_path(layer, z, x, y) for x, y in tiles], {}
                    else:
                        paths, h = [gridgov_path(layer, z, x, y) for x, y in tiles], headers
                    warm = args.warm_seconds
                    run_wrk(base, h, paths, args.clients, warm)  # PostgreSQL's buffers
                    if name == "cached":
                        # Until a whole pass renders nothing: each worker has every tile.
                        for _ in range(8):
                            if run_wrk(base, h, paths, args.clients, warm)["misses"] == 0:
                                break
                    before = cache_counters(base, args.workers) if name != "tipg" else {}
                    r = run_wrk(base, h, paths, args.clients, args.seconds)
                    if name != "tipg":
                        after = cache_counters(base, args.workers)
                        r["metric_hits"] = total(after, "hits") - total(before, "hits")
                        r["metric_misses"] = total(after, "misses") - total(before, "misses")
                        r["pids"] = len(after)
                    results[(layer, z, name)] = r
                    console.print(
                        f"[dim]{layer} z{z} {name}: {r['rps']:.0f} req/s, p95 {r['p95']:.1f}"
                        f" ms, hits {r['hits']:.0f} misses {r['misses']:.0f}, wrk"
                        f" {r['wrk_cpu']:.2f} core, load {r['load']:.2f}[/dim]"
                    )
    finally:
        for process, _ in running.values():
            stop(process)
    return report(results, layers, zooms, servers, lists)


def county_households(url: str) -> str:
    with psycopg.connect(libpq(url)) as conn:
        row = conn.execute("SELECT count(*) FROM households WHERE removed_at IS NULL").fetchone()
    assert row is not None
    return f"{row[0]:,}"


def what(layer: str, z: int) -> str:
    if layer == "grids":
        return "polygons"
    if z >= CLUSTER_BELOW:
        return "points"
    return "clusters (tipg: function layer)"


def report(results, layers, zooms, servers, lists) -> int:
    rows = []
    verdicts = []
    for layer in layers:
        for z in zooms:
            tipg = results.get((layer, z, "tipg"))
            for name in servers:
                r = results[(layer, z, name)]
                ratio = f"{r['rps'] / tipg['rps']:.2f}×" if tipg and name != "tipg" else ""
                cache = "" if name == "tipg" else f"{r['hits']:.0f}/{r['misses']:.0f}"
                metric = (
                    "" if name == "tipg" else f"{r['metric_hits']:.0f}/{r['metric_misses']:.0f}"
                )
                rows.append(
                    (
                        f"{layer} z{z}",
                        name,
                        f"{r['rps']:.0f}",
                        f"{r['p50']:.1f}",
                        f"{r['p95']:.1f}",
                        f"{r['p99']:.1f}",
                        ratio,
                        cache,
                        metric,
                        f"{r['ok']:.0f}/{r['empty']:.0f}",
                        f"{r['bytes'] / max(r['requests'], 1) / 1024:.1f}",
                        f"{r['wrk_cpu']:.2f}",
                        f"{r['load']:.2f}",
                    )
                )
            if tipg is None:
                continue
            for name, goal in (("uncached", GOAL_UNCACHED), ("cached", GOAL_CACHED)):
                r = results.get((layer, z, name))
                if r is None:
                    continue
                ratio = r["rps"] / tipg["rps"]
                proven = (
                    ""
                    if name == "cached"
                    else ("0 hits" if r["hits"] == 0 and r["metric_hits"] == 0 else "HITS!")
                )
                verdicts.append(
                    (
                        f"{layer} z{z}",
                        what(layer, z),
                        name,
                        f"{ratio:.2f}×",
                        f"≥ {goal}×",
                        "met" if ratio >= goal else "MISSED",
                        proven,
                    )
                )
    wide = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
    print_table(
        "tiles: wrk per zoom × layer (ms; hits/misses: X-Tile-Cache headers counted by wrk,"
        " then gridgov_tile_cache_* on /metrics summed over the workers)",
        [
            "cell",
            "server",
            "req/s",
            "p50",
            "p95",
            "p99",
            "vs tipg",
            "hit/miss",
            "metrics h/m",
            "200/204",
            "kB/tile",
            "wrk CPU",
            "load 1m",
        ],
        rows,
        to=wide,
    )
    if verdicts:
        print_table(
            "gridgov / tipg (req/s ratio)",
            ["cell", "output", "pass", "ratio", "goal", "result", "uncached proof"],
            verdicts,
        )
    unproven = [v for v in verdicts if v[6] == "HITS!"]
    return 1 if unproven else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=150_000)
    parser.add_argument("--zooms", default=",".join(map(str, ZOOMS)))
    parser.add_argument("--layers", default=",".join(LAYERS))
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per server")
    parser.add_argument("--seconds", type=int, default=10, help="measured, per cell")
    parser.add_argument("--warm-seconds", type=int, default=3, help="unmeasured, per cell")
    parser.add_argument("--max-tiles", type=int, default=2000, help="distinct tiles per zoom")
    parser.add_argument(
        "--cache-bytes", type=int, default=None, help="cached server's cache (default: setting)"
    )
    parser.add_argument(
        "--reuse", metavar="DATABASE", help="measure again on a database kept by --keep"
    )
    add_common_args(parser)
    args = parser.parse_args(argv)
    with bench_database(keep=args.keep, reuse=args.reuse) as url:
        county = county_of(url) if args.reuse else load(args.households)
        prepare(url)
        return measure(args, url, county)


if __name__ == "__main__":
    raise SystemExit(main())
