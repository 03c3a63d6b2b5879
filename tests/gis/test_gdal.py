"""GDAL's own OAPIF driver reads every collection through a real HTTP server, page by page.

The server runs in a thread with the real session factory against the run database, so it sees
the committed world (the per-test rolled-back session would be invisible to it).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.conftest import token_for
from tests.fixtures.world import HOUSEHOLDS, World

pytestmark = pytest.mark.skipif(shutil.which("ogr2ogr") is None, reason="GDAL CLI not installed")

EXPECTED = {"counties": 1, "townships": 2, "villages": 3, "grids": 4, "households": len(HOUSEHOLDS)}


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[str]:
    from gridgov.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(500):  # wait for the socket, not for a time: the loop ends when it is up
        if srv.started:
            break
        time.sleep(0.01)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join()


def gdal(*args: str, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*args, "--config", "GDAL_HTTP_HEADERS", f"Authorization: Bearer {token}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_gdal_lists_every_collection(server: str, world: World) -> None:
    token = token_for(world.users["county"], "county_admin")
    result = gdal("ogrinfo", "-ro", "-q", f"OAPIF:{server}/ogc", token=token)
    assert result.returncode == 0, result.stderr
    for layer in EXPECTED:
        assert layer in result.stdout


@pytest.mark.parametrize("layer", list(EXPECTED))
def test_gdal_reads_whole_collection_following_next_links(
    server: str, world: World, layer: str, tmp_path: Path
) -> None:
    token = token_for(world.users["county"], "county_admin")
    out = tmp_path / f"{layer}.geojson"
    # PAGE_SIZE=2: every layer but the county spans several pages.
    result = gdal(
        "ogr2ogr",
        "-f",
        "GeoJSON",
        str(out),
        f"OAPIF:{server}/ogc",
        layer,
        "-oo",
        "PAGE_SIZE=2",
        token=token,
    )
    assert result.returncode == 0, result.stderr
    features = json.loads(out.read_text(encoding="utf-8"))["features"]
    assert len(features) == EXPECTED[layer]
    if layer == "grids":
        assert {f["properties"]["name"] for f in features} >= {"东村第一网格", "西村网格"}
    if layer == "households":
        assert all("head_name" not in f["properties"] for f in features)


def test_gdal_sees_only_the_callers_scope(server: str, world: World, tmp_path: Path) -> None:
    token = token_for(world.users["grid_a1"], "grid_member")
    out = tmp_path / "mine.geojson"
    result = gdal(
        "ogr2ogr",
        "-f",
        "GeoJSON",
        str(out),
        f"OAPIF:{server}/ogc",
        "households",
        "-oo",
        "PAGE_SIZE=3",
        token=token,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(out.read_text(encoding="utf-8"))["features"]) == 4
