"""An export of 1,000,000 household points keeps the real server's memory flat (< 300 MB RSS),
also with its tile cache full (GRIDGOV_MAPS__TILE_CACHE_BYTES at its default).

The server runs as it does in production (uvicorn in a subprocess) against its own cloned
database, so its resident set is measured alone, sampled every 50 ms from /proc while the
response is streamed to nowhere. The points are test data written by one INSERT … SELECT
(write rules and change-log triggers bypassed), not through the service.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pyogrio
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from gridgov.geo.tiles import tiles_covering
from tests.conftest import token_for
from tests.fixtures.database import (
    ADMIN_URL,
    create_run_database,
    drop_database,
    ensure_template,
    url_for,
)

POINTS = 1_000_000
RSS_LIMIT = 300 * 1024 * 1024
LATTICE = (111.0, 26.0, 111.999, 26.999)  # the points' extent (SEED_SQL)
COUNTY = "439901"
VILLAGE = "439901001001"
GRID = "439901001001001"

SEED_SQL = f"""
INSERT INTO admin_units (code, name, level, parent_id, county_code, geom)
VALUES ('{COUNTY}', '测试县', 'county', NULL, '{COUNTY}',
        ST_Multi(ST_MakeEnvelope(111, 26, 112, 27, 4326)));
INSERT INTO admin_units (code, name, level, parent_id, county_code, geom)
SELECT '{COUNTY}001', '测试镇', 'township', id, '{COUNTY}', geom FROM admin_units
WHERE code = '{COUNTY}';
INSERT INTO admin_units (code, name, level, parent_id, county_code, geom)
SELECT '{VILLAGE}', '测试村', 'village', id, '{COUNTY}', geom FROM admin_units
WHERE code = '{COUNTY}001';
INSERT INTO grids (code, name, village_id, county_code, kind, geom)
SELECT '{GRID}', '测试网格', id, '{COUNTY}', 'general', geom FROM admin_units
WHERE code = '{VILLAGE}';
INSERT INTO households (county_code, village_id, grid_id, head_name, hamlet, size, tags, geom)
SELECT '{COUNTY}', v.id, g.id, '户主' || i, '第' || (i % 20) || '组', 1 + i % 6,
       CASE WHEN i % 7 = 0 THEN ARRAY['脱贫户', '高风险老人'] ELSE '{{}}' END,
       ST_SetSRID(ST_MakePoint(111 + (i % 1000) * 0.001, 26 + (i / 1000) * 0.001), 4326)
FROM generate_series(0, {POINTS - 1}) AS i,
     admin_units v JOIN grids g ON g.village_id = v.id
WHERE v.code = '{VILLAGE}';
"""


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    headers: dict[str, str]


def _superuser_url(dbname: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{dbname}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(dbname: str) -> None:
    with psycopg.connect(_superuser_url(dbname), autocommit=True) as conn:
        # Test data: skip the per-statement change logs (sync, tile versions) and foreign-key
        # triggers; a million sync_changes rows would only slow the load down.
        conn.execute("SET session_replication_role = replica")
        # The export reads households by primary key only; building the other indexes over a
        # million rows (two spatial, a GIN on tags) while loading costs more than the rest.
        conn.execute(
            "DROP INDEX ix_households_geom, ix_households_geom_3857, ix_households_tags,"
            " ix_households_county_code, ix_households_grid_id, ix_households_village_id"
        )
        conn.execute(SEED_SQL)
        # The tile index, built once over the loaded points (a sorted GiST build takes seconds):
        # the warm-cache test renders thousands of tiles, each a full scan without it.
        conn.execute("CREATE INDEX ix_households_geom_3857 ON households USING gist (geom_3857)")
        conn.execute("ANALYZE households")


def _create_admin(dbname: str) -> int:
    from gridgov.auth.service import create_user

    engine = create_engine(url_for(dbname))
    try:
        with Session(engine) as session:
            user = create_user(
                session,
                None,
                username="export_admin",
                password="export-admin-pass",
                role="county_admin",
                display_name="导出测试",
                unit_code=COUNTY,
            )
            session.commit()
            return user.id
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    dbname = create_run_database(ensure_template())
    process: subprocess.Popen[bytes] | None = None
    try:
        _seed(dbname)
        user_id = _create_admin(dbname)
        port = _free_port()
        env = {**os.environ, "GRIDGOV_DB__URL": url_for(dbname)}
        process = subprocess.Popen(
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
                "--log-level",
                "warning",
            ],
            env=env,
        )
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the server exited at start"
            try:
                httpx.get(f"{base_url}/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start within 30 s"
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token_for(user_id, 'county_admin', minutes=30)}"}
        yield Server(base_url, process, headers)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        drop_database(dbname)


def _tree(pid: int) -> list[int]:
    """The process and its descendants (uvicorn with workers forks children)."""
    pids = [pid]
    for p in pids:
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):  # the task ended meanwhile
                pids.extend(int(c) for c in (task / "children").read_text().split())
    return pids


def _rss(pid: int) -> int:
    total = 0
    for p in _tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


class RssSampler:
    """Peak resident set of a process tree, sampled every 50 ms on a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = _rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, _rss(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss(self.pid))


def _download(server: Server, path: str, sink: Path | None = None) -> tuple[int, int, int]:
    """(peak RSS, bytes, count of b'"Feature"' markers) of one streamed download."""
    needle = b'"Feature"'
    count = size = 0
    tail = b""
    with (
        RssSampler(server.process.pid) as sampler,
        httpx.stream("GET", server.base_url + path, headers=server.headers, timeout=120) as r,
        sink.open("wb") if sink else open(os.devnull, "wb") as out,
    ):
        assert r.status_code == 200, r.read()
        for chunk in r.iter_raw(256 * 1024):
            size += len(chunk)
            out.write(chunk)
            if sink is None:
                # Markers split across two chunks are counted once: the tail kept from the last
                # chunk is shorter than the marker, so no marker is seen twice.
                data = tail + chunk
                count += data.count(needle)
                tail = data[-(len(needle) - 1) :]
    print(f"{path}: peak server RSS {sampler.peak / 2**20:.0f} MB, {size:,} bytes")
    return sampler.peak, size, count


@pytest.mark.parametrize("fmt", ["ndjson", "geojson"])
def test_streamed_export_of_a_million_points_keeps_rss_flat(server: Server, fmt: str):
    peak, size, features = _download(server, f"/api/v1/exports/households.{fmt}")
    assert features == POINTS, f"{features} features in {size} bytes"
    assert peak < RSS_LIMIT, f"peak RSS {peak / 2**20:.0f} MB exporting {fmt}"


def test_gpkg_export_of_a_million_points_keeps_rss_flat(server: Server):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "households.gpkg"
        peak, _, _ = _download(server, "/api/v1/exports/households.gpkg", sink=path)
        assert pyogrio.read_info(path)["features"] == POINTS
        with contextlib.closing(sqlite3.connect(path)) as db:  # R-tree built once, at the end
            indexed = db.execute("SELECT count(*) FROM rtree_households_geom").fetchone()
        assert indexed == (POINTS,)
    assert peak < RSS_LIMIT, f"peak RSS {peak / 2**20:.0f} MB exporting gpkg"


def _cache_metrics(server: Server) -> dict[str, float]:
    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    found = re.findall(r'^gridgov_tile_cache_(\w+)\{pid="\d+"\} (\S+)$', text, re.M)
    return {name.removesuffix("_total"): float(value) for name, value in found}


def _fill_tile_cache(server: Server) -> dict[str, float]:
    """Household tiles (points from z14 on, no clusters) over the whole lattice, zoom after
    zoom, until the server's tile cache has evicted: it is then full to its cap."""
    with httpx.Client(base_url=server.base_url, headers=server.headers, timeout=60) as client:

        def get(url: str) -> None:
            assert client.get(url).status_code in (200, 204)

        with ThreadPoolExecutor(4) as pool:
            for z in (14, 15, 16):
                urls = [f"/tiles/households/{z}/{x}/{y}.mvt" for x, y in tiles_covering(LATTICE, z)]
                for start in range(0, len(urls), 500):
                    list(pool.map(get, urls[start : start + 500]))
                    stats = _cache_metrics(server)
                    if stats["evictions"] > 0:
                        return stats
    raise AssertionError(f"the tile cache never filled: {stats}")


def test_gpkg_export_with_the_tile_cache_full_stays_within_the_bound(server: Server):
    stats = _fill_tile_cache(server)
    assert stats["max_bytes"] > 0, "the default must keep a tile cache"
    assert stats["bytes"] > 0.95 * stats["max_bytes"] and stats["bytes"] <= stats["max_bytes"]
    print(f"tile cache full: {stats['entries']:.0f} tiles, {stats['bytes'] / 2**20:.1f} MB")
    peak, _, _ = _download(server, "/api/v1/exports/households.gpkg")
    assert peak < RSS_LIMIT, f"peak RSS {peak / 2**20:.0f} MB exporting gpkg, tile cache full"
