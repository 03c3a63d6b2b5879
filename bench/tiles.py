"""Vector tiles: gridgov's /tiles against tipg, same database, same layers, in the same run.

The demo county (150,000 households by default) is loaded into a throwaway database. tipg is
installed in the bench's own environment (bench/.venv, created when missing) and served on a
free port against that database; gridgov is served on another (uvicorn, one worker each),
called as a county administrator. 500 deterministic random tiles z8–z16 whose point lies inside
the county are fetched by 16 concurrent clients: for each server an uncached pass, then the
same tiles again (gridgov answers from its tile cache; tipg has none, so its second figure is
just a repeat). Both layers are measured separately:

* grids — gridgov: simplified polygons with code, name, kind, village code/name, household and
  covered counts (joined); tipg: the grids table's geom_3857 with code, name, kind.
* households — gridgov: below z14 clusters per 16 px cell with ``count`` (every household
  counted), from z14 points with village/grid code, hamlet, size, tags, flags (joined); tipg:
  the households table's geom_3857 with hamlet, size, tags, flags at every zoom, capped at its
  default 10,000 features per tile.

PostgreSQL's buffers are warmed by one unmeasured pass before anything is timed.

    .venv/bin/python bench/tiles.py [--households N] [--tiles N] [--clients N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from common import (  # noqa: E402
    ROOT,
    add_common_args,
    bench_database,
    print_facts,
    print_table,
    server_versions,
    timed,
)

BENCH_VENV = ROOT / "bench" / ".venv"
SEED = 20260601
MIN_ZOOM, MAX_ZOOM = 8, 16
GOAL_UNCACHED, GOAL_CACHED = 1.5, 5.0
LAYERS = ("grids", "households")
# What tipg exposes: the same tables, their stored EPSG:3857 geometry, the layers' own columns
# (tipg reads one table, so the joined properties gridgov adds are not available to it).
TIPG_PROPERTIES = {
    "grids": ["id", "code", "name", "kind"],
    "households": ["id", "hamlet", "size", "tags", "flags"],
}


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_tipg() -> Path:
    """bench/.venv with tipg and uvicorn; its python."""
    python = BENCH_VENV / "bin" / "python"
    probe = [str(python), "-c", "import tipg, uvicorn"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    with timed("install tipg into bench/.venv"):
        subprocess.run(["python3", "-m", "venv", str(BENCH_VENV)], check=True)
        pip = [str(BENCH_VENV / "bin" / "pip"), "install", "-q", "tipg", "uvicorn"]
        subprocess.run(pip, check=True)
    return python


def load(households: int) -> str:
    from gridgov.db import session_scope
    from gridgov.demo.load import load_demo

    with timed(f"load demo county ({households:,} households)"), session_scope() as session:
        summary = load_demo(session, households=households, activity=False)
    return summary.county_code


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


def pick_tiles(url: str, county: str, count: int) -> list[tuple[int, int, int]]:
    """``count`` tiles z8–z16, each holding a random point of the county polygon (seeded)."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        points = conn.execute(
            "SELECT ST_X(p.geom), ST_Y(p.geom) FROM admin_units u,"
            " ST_Dump(ST_GeneratePoints(u.geom_3857, %s, %s)) p"
            " WHERE u.code = %s AND u.level = 'county' AND u.valid_to IS NULL",
            (count, SEED, county),
        ).fetchall()
    rng = random.Random(SEED)
    half = 20037508.342789244
    tiles = []
    for x, y in points:
        z = rng.randint(MIN_ZOOM, MAX_ZOOM)
        n = 2**z
        tx = min(n - 1, int((x + half) / (2 * half) * n))
        ty = min(n - 1, int((half - y) / (2 * half) * n))
        tiles.append((z, tx, ty))
    return tiles


def wait_up(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 60
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


def start_gridgov() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gridgov.app:create_app", "--factory"]
        + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env={**os.environ, "GRIDGOV_LOG_LEVEL": "WARNING"},
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    wait_up(process, f"{base}/openapi.json")
    return process, base


def start_tipg(python: Path, url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": libpq(url),
        "TIPG_DB_SCHEMAS": '["public"]',
        "TIPG_DB_TABLES": json.dumps([f"public.{layer}" for layer in LAYERS]),
        # Same MVT buffer as gridgov (queries.MVT_BUFFER) so both clip the same margin.
        "TIPG_TILE_BUFFER": "64",
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
        + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd="/tmp",  # tipg reads a .env from its working directory
    )
    base = f"http://127.0.0.1:{port}"
    wait_up(process, f"{base}/collections")
    return process, base


def gridgov_path(layer: str, z: int, x: int, y: int) -> str:
    return f"/tiles/{layer}/{z}/{x}/{y}.mvt"


def tipg_path(layer: str, z: int, x: int, y: int) -> str:
    return f"/collections/public.{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}"


def run_pass(
    base: str, headers: dict[str, str], paths: list[str], clients: int
) -> tuple[float, dict[int, int], int]:
    """All paths fetched by ``clients`` threads; (requests/s, status counts, bytes)."""
    statuses: dict[int, int] = {}
    received = 0
    with httpx.Client(
        base_url=base,
        headers=headers,
        timeout=120,
        limits=httpx.Limits(max_connections=clients, max_keepalive_connections=clients),
    ) as client:

        def fetch(path: str) -> tuple[int, int]:
            r = client.get(path)
            return r.status_code, len(r.content)

        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(fetch, paths))
        seconds = time.perf_counter() - start
    for status, size in results:
        statuses[status] = statuses.get(status, 0) + 1
        received += size
    bad = {s: n for s, n in statuses.items() if s not in (200, 204)}
    if bad:
        raise RuntimeError(f"{base}: unexpected statuses {bad}")
    return len(paths) / seconds, statuses, received


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=150_000)
    parser.add_argument("--tiles", type=int, default=500)
    parser.add_argument("--clients", type=int, default=16)
    add_common_args(parser)
    args = parser.parse_args(argv)

    python = ensure_tipg()
    with bench_database(keep=args.keep) as url:
        county = load(args.households)
        headers = create_admin(county)
        tiles = pick_tiles(url, county, args.tiles)
        print_facts(
            "setup",
            server_versions(url)
            | {
                "households": f"{args.households:,}",
                "tiles": f"{len(tiles)} (z{MIN_ZOOM}–z{MAX_ZOOM}, seed {SEED})",
                "clients": args.clients,
            },
        )
        servers: list[subprocess.Popen[bytes]] = []
        try:
            gridgov, gbase = start_gridgov()
            servers.append(gridgov)
            tipg, tbase = start_tipg(python, url)
            servers.append(tipg)
            rows = []
            verdicts = []
            for layer in LAYERS:
                gpaths = [gridgov_path(layer, *t) for t in tiles]
                tpaths = [tipg_path(layer, *t) for t in tiles]
                # Unmeasured: warms PostgreSQL's buffers for both servers alike.
                run_pass(tbase, {}, tpaths, args.clients)
                t_cold, t_status, t_bytes = run_pass(tbase, {}, tpaths, args.clients)
                t_warm, _, _ = run_pass(tbase, {}, tpaths, args.clients)
                g_cold, g_status, g_bytes = run_pass(gbase, headers, gpaths, args.clients)
                g_warm, _, _ = run_pass(gbase, headers, gpaths, args.clients)
                for name, rps, status, size in (
                    ("tipg", t_cold, t_status, t_bytes),
                    ("tipg (repeat)", t_warm, t_status, t_bytes),
                    ("gridgov uncached", g_cold, g_status, g_bytes),
                    ("gridgov cached", g_warm, g_status, g_bytes),
                ):
                    rows.append(
                        (
                            layer,
                            name,
                            f"{rps:.0f}",
                            f"{status.get(200, 0)}/{status.get(204, 0)}",
                            f"{size / 1e6:.1f}",
                        )
                    )
                for label, ratio, goal in (
                    ("uncached", g_cold / t_cold, GOAL_UNCACHED),
                    ("cached", g_warm / t_warm, GOAL_CACHED),
                ):
                    met = "met" if ratio >= goal else "MISSED"
                    verdicts.append((layer, label, f"{ratio:.2f}×", f"≥ {goal}×", met))
            print_table(
                "tiles: requests/s (16 clients)".replace("16", str(args.clients)),
                ["layer", "server", "req/s", "200/204", "MB"],
                rows,
            )
            print_table("gridgov / tipg", ["layer", "pass", "ratio", "goal", "result"], verdicts)
        finally:
            for process in servers:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
