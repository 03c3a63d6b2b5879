"""Exports of N household points (default: 150 000, then 1 000 000): gridgov over HTTP against
GDAL's ogr2ogr and a raw COPY, on the same database in the same run.

For each size a fresh database gets a demo-county-like hierarchy (20 townships, 300 villages,
10 grids each) and N households spread over the grids, written by INSERT … SELECT (write rules
and change-log triggers bypassed: only the reads are measured), then VACUUM ANALYZE. The real
server runs in a subprocess (uvicorn, one worker) as a county administrator sees it. Timed,
alternating and repeated, each result read to the end and thrown away:

* gridgov  GET /api/v1/exports/households.{geojson,ndjson,gpkg} (streamed to /dev/null through
           one kept-alive httpx client; GeoJSON and NDJSON from a binary COPY, GPKG written by
           pyogrio's own GDAL in one session);
* ogr2ogr  ``ogr2ogr -f GeoJSON|GPKG <tmp file> PG:… -sql "<the same rows>"``; GeoJSON with
           RFC7946=YES, 6 decimals, the columns in their PostgreSQL types as gridgov's GeoJSON
           has them; GPKG like for like with gridgov's file: the very SELECT gridgov runs for
           it (lists joined with ';', times as text; gridgov.gis.queries.export_rows_sql) with
           the geometry column itself instead of its WKB, a Point layer in EPSG:4326 with its
           R-tree spatial index, like gridgov's (the file is on the same disk as gridgov's
           temp file);
* COPY     ``COPY (SELECT json_build_object(<the same feature>) …) TO STDOUT`` read by psycopg
           on an open connection: what PostgreSQL alone needs to produce the same features as
           JSON rows (server defaults, JIT included);
* OGC page GET /ogc/collections/households/items?limit=10000 against the same 10 000 features
           as one ``json_agg`` query fetched by psycopg.

Goals: GeoJSON ≤ 0.8× ogr2ogr and ≤ 1.5× COPY; GPKG ≤ 0.8× ogr2ogr; OGC page ≤ 1.2× json_agg.
Each size's timings come with the load average (1 min) before and after them. On a machine
shared with other work, ``--lock FILE`` holds a shared flock on FILE while loading the data and
an exclusive one while timing.

    .venv/bin/python bench/exports.py [--points N [N …]] [--repeat R] [--lock FILE] [--keep]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from common import (  # noqa: E402
    ADMIN_URL,
    Samples,
    add_common_args,
    bench_database,
    console,
    print_facts,
    print_table,
    server_versions,
    timed,
)

COUNTY = "439902"
TOWNSHIPS = 20
VILLAGES_PER_TOWNSHIP = 15
GRIDS_PER_VILLAGE = 10
PAGE = 10_000
GOALS = {
    ("GeoJSON", "ogr2ogr"): 0.8,
    ("GeoJSON", "COPY"): 1.5,
    ("GPKG", "ogr2ogr"): 0.8,
    ("OGC page", "json_agg"): 1.2,
}

# Townships are 0.3° × 0.3° squares in a 5 × 4 block; each holds 15 villages of 0.06° × 0.1°
# (5 × 3), each village 10 grids of 0.03° × 0.02° (2 × 5). Households fill each grid on a
# jittered lattice, every point strictly inside its grid.
SEED_SQL = f"""
INSERT INTO admin_units (code, name, level, parent_id, county_code, geom)
VALUES ('{COUNTY}', '基准县', 'county', NULL, '{COUNTY}',
        ST_Multi(ST_MakeEnvelope(111, 26, 112.5, 27.2, 4326)));
INSERT INTO admin_units (code, name, level, parent_id, county_code, geom)
SELECT '{COUNTY}' || lpad((t + 1)::text, 3, '0'), '第' || (t + 1) || '镇', 'township', c.id,
       '{COUNTY}', ST_Multi(ST_MakeEnvelope(111 + (t % 5) * 0.3, 26 + (t / 5) * 0.3,
                                            111.3 + (t % 5) * 0.3, 26.3 + (t / 5) * 0.3, 4326))
FROM generate_series(0, {TOWNSHIPS - 1}) t, admin_units c WHERE c.code = '{COUNTY}';
INSERT INTO admin_units (code, name, level, parent_id, county_code, geom)
SELECT p.code || lpad((v + 1)::text, 3, '0'), p.name || '第' || (v + 1) || '村', 'village', p.id,
       '{COUNTY}', ST_Multi(ST_MakeEnvelope(
           ST_XMin(p.geom) + (v % 5) * 0.06, ST_YMin(p.geom) + (v / 5) * 0.1,
           ST_XMin(p.geom) + (v % 5 + 1) * 0.06, ST_YMin(p.geom) + (v / 5 + 1) * 0.1, 4326))
FROM admin_units p, generate_series(0, {VILLAGES_PER_TOWNSHIP - 1}) v
WHERE p.level = 'township';
INSERT INTO grids (code, name, village_id, county_code, kind, geom)
SELECT v.code || lpad((k + 1)::text, 3, '0'), v.name || '第' || (k + 1) || '网格', v.id,
       '{COUNTY}', 'general', ST_Multi(ST_MakeEnvelope(
           ST_XMin(v.geom) + (k % 2) * 0.03, ST_YMin(v.geom) + (k / 2) * 0.02,
           ST_XMin(v.geom) + (k % 2 + 1) * 0.03, ST_YMin(v.geom) + (k / 2 + 1) * 0.02, 4326))
FROM admin_units v, generate_series(0, {GRIDS_PER_VILLAGE - 1}) k WHERE v.level = 'village';
INSERT INTO households (county_code, village_id, grid_id, head_name, phone, hamlet, size, tags,
                        geom)
SELECT '{COUNTY}', g.village_id, g.id, '户主' || i, '139' || lpad(i::text, 8, '0'),
       '第' || (i % 12 + 1) || '村民小组', 1 + i % 6,
       CASE WHEN i % 7 = 0 THEN ARRAY['脱贫户', '高风险老人']
            WHEN i % 11 = 0 THEN ARRAY['留守儿童'] ELSE '{{}}' END,
       ST_SetSRID(ST_MakePoint(
           ST_XMin(g.geom) + 0.0005 + 0.029 * random(),
           ST_YMin(g.geom) + 0.0005 + 0.019 * random()), 4326)
FROM generate_series(0, {{points}} - 1) i
JOIN (SELECT id, village_id, geom, row_number() OVER (ORDER BY code) - 1 AS n FROM grids) g
  ON g.n = i % {TOWNSHIPS * VILLAGES_PER_TOWNSHIP * GRIDS_PER_VILLAGE}
ORDER BY i;
"""

# The same rows and columns gridgov's households layer exports (gridgov.gis.layers), in their
# PostgreSQL types: what ogr2ogr's GeoJSON is compared with.
FROM_WHERE = (
    "FROM households t JOIN admin_units v ON v.id = t.village_id"
    " LEFT JOIN grids g ON g.id = t.grid_id WHERE t.removed_at IS NULL"
)
OGR_SQL = (
    "SELECT t.id, v.code AS village_code, g.code AS grid_code, t.hamlet, t.size, t.tags,"
    f" t.flags, t.updated_at, t.geom {FROM_WHERE} ORDER BY t.id"
)


def ogr_gpkg_sql() -> str:
    """The SELECT gridgov runs for its GeoPackage (the same columns, cast the same way), with
    the geometry column itself where gridgov reads its WKB, and without the caller's scope
    (a county administrator's: every row). ogr2ogr reads the same values gridgov writes."""
    from gridgov.gis.layers import HOUSEHOLDS
    from gridgov.gis.queries import export_rows_sql

    sql = export_rows_sql(HOUSEHOLDS, HOUSEHOLDS.props, "t.removed_at IS NULL", point=False)
    geometry = "ST_AsBinary(t.geom)"
    if geometry not in sql:
        raise RuntimeError(f"gridgov's GeoPackage SELECT changed: {sql}")
    names = ", ".join(["id", *(p.name for p in HOUSEHOLDS.props), "geom"])  # gridgov's names
    return f"SELECT * FROM ({sql.replace(geometry, 't.geom')}) AS e({names})"


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def seed(url: str, points: int) -> None:
    dbname = url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL.rsplit("/", 1)[0] + f"/{dbname}", autocommit=True) as conn:
        # Bench data: no change logs (a million sync_changes rows) and no foreign-key triggers.
        conn.execute("SET session_replication_role = replica")
        conn.execute(SEED_SQL.replace("{points}", str(points)))
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


def create_admin() -> dict[str, str]:
    """A county administrator (everything in scope) and its bearer header."""
    from datetime import timedelta

    from gridgov.auth import security
    from gridgov.auth.service import create_user
    from gridgov.db import session_scope

    with session_scope() as session:
        user = create_user(
            session,
            None,
            username="bench_admin",
            password="bench-admin-pass",
            role="county_admin",
            display_name="基准测试",
            unit_code=COUNTY,
        )
        user_id = user.id
    token, _ = security.encode(
        {"sub": str(user_id), "typ": "access", "role": "county_admin"}, timedelta(hours=6)
    )
    return {"Authorization": f"Bearer {token}"}


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gridgov.app:create_app", "--factory"]
        + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env={**os.environ, "GRIDGOV_LOG_LEVEL": "WARNING"},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError("the server exited at start")
        try:
            httpx.get(f"{base}/openapi.json", timeout=2)
            return process, base
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def http_get(client: httpx.Client, path: str) -> Callable[[], int]:
    """A download read to the end and dropped; returns the bytes received. One client for the
    whole run (a kept-alive connection, as the baselines keep their psycopg connection): making
    an httpx client costs ~15 ms (its TLS context), which is no part of the server's time."""

    def run() -> int:
        size = 0
        with client.stream("GET", path) as r:
            if r.status_code != 200:
                raise RuntimeError(f"{path}: {r.status_code} {r.read()[:300]!r}")
            for chunk in r.iter_raw(256 * 1024):
                size += len(chunk)
        return size

    return run


def ogr2ogr(url: str, driver: str, suffix: str, tmp: Path) -> Callable[[], int]:
    from gridgov.config import get_settings

    db = psycopg.conninfo.conninfo_to_dict(libpq(get_settings().db.sqlalchemy_url))
    pg = " ".join(f"{k}={db[k]}" for k in ("dbname", "host", "port", "user") if k in db)
    if driver == "GeoJSON":
        sql, options = OGR_SQL, ["-lco", "RFC7946=YES", "-lco", "COORDINATE_PRECISION=6"]
    else:  # like gridgov's: a Point layer with its R-tree (GDAL's default, said out loud)
        sql, options = ogr_gpkg_sql(), ["-nlt", "POINT", "-lco", "SPATIAL_INDEX=YES"]

    def run() -> int:
        out = tmp / f"ogr.{suffix}"
        out.unlink(missing_ok=True)
        subprocess.run(
            ["ogr2ogr", "-f", driver, str(out), f"PG:{pg}", "-sql", sql, "-nln", "households"]
            + options,
            check=True,
            env={**os.environ, "CPL_LOG": os.devnull},  # no StringList warnings
        )
        size = out.stat().st_size
        out.unlink()
        return size

    return run


def raw_copy(url: str) -> Callable[[], int]:
    from gridgov.gis.layers import HOUSEHOLDS
    from gridgov.gis.queries import feature_sql

    sql = f"COPY (SELECT {feature_sql(HOUSEHOLDS)} {FROM_WHERE} ORDER BY t.id) TO STDOUT"

    conn = psycopg.connect(libpq(url), autocommit=True)  # connected once, like the server's pool

    def run() -> int:
        size = 0
        with conn.cursor().copy(sql) as copy:
            for data in copy:
                size += len(data)
        return size

    return run


def raw_json_agg(url: str) -> Callable[[], int]:
    from gridgov.gis.layers import HOUSEHOLDS
    from gridgov.gis.queries import feature_sql

    sql = (
        "SELECT json_build_object('type', 'FeatureCollection', 'features', json_agg(f))::text"
        f" FROM (SELECT {feature_sql(HOUSEHOLDS)} AS f {FROM_WHERE} ORDER BY t.id"
        f" LIMIT {PAGE}) p"
    )

    conn = psycopg.connect(libpq(url), autocommit=True)

    def run() -> int:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return len(row[0].encode())

    return run


def gdal_versions() -> dict[str, str]:
    """ogr2ogr's GDAL and the one gridgov writes files with (pyogrio's own): they may differ."""
    import pyogrio

    ogr = subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True, check=True)
    return {"ogr2ogr": ogr.stdout.strip(), "gridgov GDAL": pyogrio.__gdal_version_string__}


def measure(
    paths: dict[str, Callable[[], int]], repeat: int, *, warm: bool = False
) -> dict[str, Samples]:
    """Each path ``repeat`` times, alternating so drift hits all of them alike; with ``warm``
    one untimed run each first (first connections and imports weigh on a 0.1 s request)."""
    samples = {name: Samples(name) for name in paths}
    for run in paths.values() if warm else ():
        run()
    for _ in range(repeat):
        for name, run in paths.items():
            start = time.perf_counter()
            size = run()
            samples[name].seconds.append(time.perf_counter() - start)
            console.print(f"[dim]{name}: {samples[name].seconds[-1]:.2f} s, {size:,} bytes[/dim]")
    return samples


class CpuLock:
    """``--lock FILE``: a shared flock on FILE while loading (heavy, not timed), an exclusive one
    while timing (waits until no one else holds it; keeps others out until the timing ends)."""

    def __init__(self, path: Path | None) -> None:
        self.handle = path.open("a") if path is not None else None

    @contextmanager
    def hold(self, mode: int) -> Iterator[None]:
        if self.handle is None:
            yield
            return
        if mode == fcntl.LOCK_EX:
            console.print(f"[dim]waiting for an exclusive lock on {self.handle.name}[/dim]")
        fcntl.flock(self.handle, mode)  # a held lock is converted, not stacked
        try:
            yield
        finally:
            fcntl.flock(self.handle, fcntl.LOCK_UN)


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def run_size(points: int, args: argparse.Namespace, lock: CpuLock) -> tuple[dict[str, float], str]:
    """One size in its own database: the tables, and the ratios with the load averages."""
    with bench_database(keep=args.keep) as url, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with lock.hold(fcntl.LOCK_SH), timed(f"load {points:,} households"):
            seed(url, points)
        headers = create_admin()
        server, base = start_server()
        client = httpx.Client(base_url=base, headers=headers, timeout=600)
        try:
            http = lambda path: http_get(client, path)  # noqa: E731
            with lock.hold(fcntl.LOCK_EX):
                before = load()
                exports = measure(
                    {
                        "gridgov GeoJSON": http("/api/v1/exports/households.geojson"),
                        "ogr2ogr GeoJSON": ogr2ogr(url, "GeoJSON", "geojson", tmp),
                        "COPY JSON rows": raw_copy(url),
                        "gridgov NDJSON": http("/api/v1/exports/households.ndjson"),
                        "gridgov GPKG": http("/api/v1/exports/households.gpkg"),
                        "ogr2ogr GPKG": ogr2ogr(url, "GPKG", "gpkg", tmp),
                    },
                    args.repeat,
                )
                pages = measure(
                    {
                        "gridgov OGC page": http(
                            f"/ogc/collections/households/items?limit={PAGE}&f=json"
                        ),
                        "json_agg page": raw_json_agg(url),
                    },
                    args.page_repeat,
                    warm=True,
                )
                loads = f"{before} → {load()}"
        finally:
            client.close()
            server.terminate()
            server.wait(10)
        samples = exports | pages
        print_table(
            f"{points:,} households, median of {args.repeat} (pages: {args.page_repeat});"
            f" load average {loads}",
            ["path", "median s", "range s"],
            [(s.label, f"{s.median:.3f}", s.spread) for s in samples.values()],
        )
        m = {name: s.median for name, s in samples.items()}
        ratios = {
            ("GeoJSON", "ogr2ogr"): m["gridgov GeoJSON"] / m["ogr2ogr GeoJSON"],
            ("GeoJSON", "COPY"): m["gridgov GeoJSON"] / m["COPY JSON rows"],
            ("NDJSON", "COPY"): m["gridgov NDJSON"] / m["COPY JSON rows"],
            ("GPKG", "ogr2ogr"): m["gridgov GPKG"] / m["ogr2ogr GPKG"],
            ("OGC page", "json_agg"): m["gridgov OGC page"] / m["json_agg page"],
        }
        if points == args.points[0]:
            print_facts(
                "setup",
                {**server_versions(url), **gdal_versions(), "date": date.today().isoformat()},
            )
    return {f"{what} / {against}": ratio for (what, against), ratio in ratios.items()}, loads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, nargs="+", default=[150_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--page-repeat", type=int, default=10)
    parser.add_argument(
        "--lock",
        type=Path,
        help="a flock shared by others on this machine: shared while loading, exclusive while"
        " timing",
    )
    add_common_args(parser)
    args = parser.parse_args(argv)
    lock = CpuLock(args.lock)
    results = {points: run_size(points, args, lock) for points in args.points}
    rows = []
    for (what, against), goal in {**GOALS, ("NDJSON", "COPY"): None}.items():
        name = f"{what} / {against}"
        cells = [f"{results[p][0][name]:.2f}" for p in args.points]
        verdict = ""
        if goal is not None:
            met = all(results[p][0][name] <= goal for p in args.points)
            verdict = "met" if met else "MISSED"
        rows.append((f"gridgov {name}", *cells, f"≤ {goal}" if goal else "", verdict))
    rows.append(("load average (1 min)", *(results[p][1] for p in args.points), "", ""))
    print_table(
        "ratios (lower is better), each against its baseline of the same run",
        ["", *(f"{p:,}" for p in args.points), "goal", ""],
        rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
