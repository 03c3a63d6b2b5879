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
from typing import Any

import pytest
import uvicorn
from sqlalchemy import text

from tests.conftest import token_for
from tests.fixtures.world import (
    GRID_A1,
    GRID_A2,
    GRID_B1,
    HOUSEHOLDS,
    VILLAGE_A,
    VILLAGE_B,
    World,
)

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


# -- API keys and spatial QA collections --------------------------------------------------------

QA_EXPECTED = {  # on the world plus the crafted findings (tests/gis/conftest.py crafted_qa)
    "qa_grid_overlaps": 3,  # 东村-003 over 东村-001 and 东村-002; 西村-002 over 西村-001
    "qa_grid_gaps": 1,  # 南村's east half
    "qa_grids_outside_village": 1,  # 西村-002 sticks out of 西村
    "qa_households_outside_grids": 1,  # C-gap
    "qa_households_far_from_grid": 1,  # A1-1 filed under 东村-002
    "qa_members_far_from_households": 1,  # 党员甲 and A2-2, ~11 km apart
}


@pytest.fixture(scope="module")
def keys(engine, world: World) -> Iterator[dict[str, str]]:
    """Committed API keys (the server thread reads committed data), deleted afterwards."""
    from sqlalchemy.orm import Session

    from gridgov.auth import api_keys

    with Session(engine) as session, session.begin():
        made = {
            user: api_keys.create_key(session, None, name=f"GDAL {user}", username=user)
            for user in ("county", "grid_a1")
        }
        ids = [k.key.id for k in made.values()]
        secrets = {user: k.secret for user, k in made.items()}
    yield secrets
    with Session(engine) as session, session.begin():
        session.execute(text("DELETE FROM api_keys WHERE id = ANY(:ids)"), {"ids": ids})


def read_layer(
    url: str, layer: str, out: Path, *extra: str, header: str | None = None
) -> list[dict[str, Any]]:
    args = ["ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{url}", layer, *extra]
    print("STDERR")
    if header is not None:
        args += ["--config", "GDAL_HTTP_HEADERS", header]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text(encoding="utf-8"))["features"]


@pytest.mark.parametrize("how", ["header", "bearer", "query"])
def test_gdal_reads_with_an_api_key(
    server: str, keys: dict[str, str], tmp_path: Path, how: str
) -> None:
    """Key in X-API-Key (GDAL_HTTP_HEADERS), as a Bearer, or in the URL only: every page of the
    collection comes (PAGE_SIZE=3 over 10 households: 4 pages, next links followed)."""
    key = keys["county"]
    url, header = f"{server}/ogc", None
    if how == "header":
        header = f"X-API-Key: {key}"
    elif how == "bearer":
        header = f"Authorization: Bearer {key}"
    else:
        url = f"{server}/ogc?api_key={key}"
    out = tmp_path / "households.geojson"
    features = read_layer(url, "households", out, "-oo", "PAGE_SIZE=3", header=header)
    assert len(features) == len(HOUSEHOLDS)


def test_gdal_with_a_key_in_the_url_keeps_it_on_next_links_and_the_users_scope(
    server: str, keys: dict[str, str], tmp_path: Path
) -> None:
    """The grid member's key: their 4 households over two pages of 3."""
    url = f"{server}/ogc?api_key={keys['grid_a1']}"
    features = read_layer(url, "households", tmp_path / "h.geojson", "-oo", "PAGE_SIZE=3")
    assert len(features) == 4
    assert {f["properties"]["grid_code"] for f in features} == {GRID_A1}


def test_gdal_refuses_a_wrong_key(server: str, tmp_path: Path) -> None:
    args = ["ogrinfo", "-ro", "-q", f"OAPIF:{server}/ogc?api_key=ggk_00000000_{'x' * 43}"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0 and "401" in result.stderr


@pytest.mark.parametrize("layer", list(QA_EXPECTED))
def test_gdal_reads_qa_collections(
    server: str, keys: dict[str, str], crafted_qa: None, tmp_path: Path, layer: str
) -> None:
    header = f"X-API-Key: {keys['county']}"
    out = tmp_path / f"{layer}.geojson"
    features = read_layer(f"{server}/ogc", layer, out, "-oo", "PAGE_SIZE=1", header=header)
    assert len(features) == QA_EXPECTED[layer]
    if layer == "qa_grids_outside_village":
        (feature,) = features
        assert feature["properties"]["grid_code"] == VILLAGE_B + "002"
        assert feature["properties"]["area_m2"] > 1_000_000  # 0.01° × 0.01°
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
    if layer == "qa_grid_overlaps":
        pairs = {(f["properties"]["grid_code"], f["properties"]["other_code"]) for f in features}
        assert pairs == {
            (GRID_A1, VILLAGE_A + "003"),
            (GRID_A2, VILLAGE_A + "003"),
            (GRID_B1, VILLAGE_B + "002"),
        }


def test_gdal_qa_collection_in_the_grid_members_scope(
    server: str, keys: dict[str, str], crafted_qa: None, tmp_path: Path
) -> None:
    url = f"{server}/ogc?api_key={keys['grid_a1']}"
    features = read_layer(url, "qa_grid_overlaps", tmp_path / "o.geojson")
    assert [f["properties"]["grid_code"] for f in features] == [GRID_A1]
