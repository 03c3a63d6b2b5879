"""Operations: health, readiness, metrics, request ids, and errors that never leak internals."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid

import pytest
from fastapi.testclient import TestClient

from gridgov import migrate
from gridgov.logging import JsonFormatter
from tests.fixtures.world import GRID_A1

PROBLEM = "application/problem+json"


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_reports_current_migration_and_postgis(client):
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready" and body["database"] is True
    assert body["migration_current"] == body["migration_head"] == migrate.head_revision()
    assert re.match(r"^3\.\d+", body["postgis"]), body["postgis"]


def test_readyz_not_ready_when_database_unreachable(client, monkeypatch):
    from gridgov.ops import service as ops_service

    def unreachable():
        raise OSError("connection refused")

    monkeypatch.setattr(ops_service, "get_engine", unreachable)
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "not_ready" and r.json()["database"] is False


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format whose labels include ``labels``."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line[line.index("{") :]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_use_route_templates(client, as_user, world):
    grid_id = world.grids[GRID_A1]
    template = "/api/v1/grids/{grid_id}"
    text = client.get("/metrics").text
    before = (
        _sample(text, "gridgov_http_requests_total", method="GET", route=template, status="200")
        or 0
    )
    for _ in range(2):
        assert client.get(f"/api/v1/grids/{grid_id}", headers=as_user("county")).status_code == 200
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    after = _sample(
        r.text, "gridgov_http_requests_total", method="GET", route=template, status="200"
    )
    assert after == before + 2
    # The concrete path never becomes a label (unbounded cardinality).
    assert f'route="/api/v1/grids/{grid_id}"' not in r.text
    assert _sample(r.text, "gridgov_http_request_duration_seconds_count", route=template)


def test_metrics_label_unmatched_paths_as_one_route(client):
    for i in range(3):
        client.get(f"/no/such/path/{uuid.uuid4().hex}{i}")
    text = client.get("/metrics").text
    assert "/no/such/path" not in text
    assert _sample(text, "gridgov_http_requests_total", route="unmatched", status="404")


def test_metrics_expose_db_pool(client):
    text = client.get("/metrics").text
    assert _sample(text, "gridgov_db_pool_connections", pool="orm", state="size") is not None
    assert _sample(text, "gridgov_db_pool_connections", pool="orm", state="checked_out") is not None
    assert "gridgov_http_in_flight" in text


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/me", "/api/v1/nowhere", "/metrics"])
def test_every_response_carries_a_request_id(client, path):
    r = client.get(path)
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    r = client.get(path, headers={"X-Request-ID": "lb-7f3a-42"})
    assert r.headers["x-request-id"] == "lb-7f3a-42"


def test_request_ids_differ(client):
    ids = {client.get("/healthz").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


def test_unknown_path_is_problem_json(client):
    r = client.get("/api/v1/nowhere")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == 404 and body["code"] and body["title"] and body["type"]


def test_wrong_method_is_problem_json(client):
    r = client.put("/healthz")
    assert r.status_code == 405
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["status"] == 405
    assert "GET" in r.headers["allow"]


def test_malformed_json_is_problem_json(client, as_user):
    r = client.post(
        "/api/v1/grids",
        headers={**as_user("county"), "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == "validation_error"


@pytest.fixture
def crashing_client():
    """A fresh app with one throwaway route that fails in an unexpected way."""
    from gridgov.app import create_app

    app = create_app()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret-internal-detail at /srv/gridgov/db.py line 42")

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_unexpected_error_is_generic_500(crashing_client):
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("gridgov.http")
    logger.addHandler(handler)
    try:
        r = crashing_client.get("/boom", headers={"X-Request-ID": "crash-1"})
    finally:
        logger.removeHandler(handler)
    assert r.status_code == 500
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == 500 and body["code"] == "internal_error"
    assert "secret-internal-detail" not in r.text
    assert "Traceback" not in r.text and "RuntimeError" not in r.text
    assert r.headers["x-request-id"] == "crash-1"
    # The trace is logged, with the request id the client saw.
    (record,) = [json.loads(line) for line in logged.getvalue().splitlines() if "exc" in line]
    assert record["request_id"] == "crash-1"
    assert "secret-internal-detail" in record["exc"]


def test_unexpected_error_is_counted(crashing_client):
    crashing_client.get("/boom")
    text = crashing_client.get("/metrics").text
    assert _sample(text, "gridgov_http_requests_total", route="/boom", status="500")


def test_startup_heap_is_frozen_and_gc_pauses_are_measured(client):
    """The app's lifespan (entered by the client fixture) froze the start-up heap, so full
    collections no longer walk it; every pause is timed in gridgov_gc_pause_seconds."""
    import gc

    assert gc.get_freeze_count() > 50_000  # the app, its routes and models at least

    def collections() -> float:
        text = client.get("/metrics").text
        line = next(
            ln
            for ln in text.splitlines()
            if ln.startswith('gridgov_gc_pause_seconds_count{generation="2"}')
        )
        return float(line.rsplit(" ", 1)[1])

    before = collections()
    gc.collect()
    assert collections() == before + 1
