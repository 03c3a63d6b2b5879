"""CORS: off by default; with an allow-list, browsers on those origins may call the API, tiles,
OGC and Open311 — preflights answered before the guard (they carry no token), every answer
marked, the guard's own refusals included — and every other origin gets nothing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gridgov.config import CorsSettings, Settings, get_settings
from tests.fixtures.world import World
from tests.ops.test_request_guard import bearer, call

MAP = "https://map.example.gov.cn"
ELSEWHERE = "https://evil.example.com"
ACAO = "access-control-allow-origin"


def preflight(client, path: str, origin: str, method: str = "GET", headers: str = ""):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return client.options(path, headers=h)


@pytest.fixture
def cors_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings().cors, "allow_origins", [MAP])


def test_off_by_default(client, as_user) -> None:
    assert get_settings().cors.allow_origins == []
    r = preflight(client, "/api/v1/me", MAP, headers="authorization")
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"
    assert not any(k.startswith("access-control-") for k in r.headers)
    r = client.get("/api/v1/me", headers={**as_user("county"), "Origin": MAP})
    assert r.status_code == 200
    assert not any(k.startswith("access-control-") for k in r.headers)
    assert "origin" not in r.headers.get("vary", "").lower()


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/me", "GET"),
        ("/api/v1/visits/batch", "POST"),
        ("/tiles/grids/12/3316/1733.mvt", "GET"),
        ("/ogc", "GET"),
        ("/ogc/collections/grids/items", "GET"),
        ("/open311/v2/requests.json", "POST"),
        ("/openapi.json", "GET"),
    ],
)
def test_preflight_for_an_allowed_origin(client, cors_on, path: str, method: str) -> None:
    r = preflight(client, path, MAP, method, "authorization, content-type")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert r.headers[ACAO] == MAP
    assert method in r.headers["access-control-allow-methods"].split(", ")
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-api-key", "if-none-match"} <= allowed
    assert r.headers["access-control-max-age"] == "600"
    assert "Origin" in r.headers["vary"]
    assert "access-control-allow-credentials" not in r.headers  # never cookies
    assert r.headers["x-content-type-options"] == "nosniff"  # the usual headers too


def test_preflight_names_the_routes_methods(client, cors_on) -> None:
    r = preflight(client, "/api/v1/households/1", MAP, "PATCH")
    assert r.status_code == 204
    assert set(r.headers["access-control-allow-methods"].split(", ")) == {
        "GET",
        "PATCH",
        "OPTIONS",
    }


def test_nothing_for_other_origins(client, cors_on, as_user) -> None:
    for path, origin in [
        ("/api/v1/me", ELSEWHERE),  # origin not listed
        ("/api/v1/me", MAP + ":8443"),  # another port is another origin
        ("/api/v1/me", "http://map.example.gov.cn"),  # another scheme too
        ("/dashboard/", MAP),  # the pages are for this origin only
        ("/docs", MAP),
    ]:
        r = preflight(client, path, origin)
        assert r.status_code == 405, (path, origin)
        assert r.headers["content-type"] == "application/problem+json"
        assert not any(k.startswith("access-control-") for k in r.headers), (path, origin)
    r = client.get("/api/v1/me", headers={**as_user("county"), "Origin": ELSEWHERE})
    assert r.status_code == 200 and ACAO not in r.headers
    assert "Origin" in r.headers["vary"]  # caches keep the two answers apart


def test_preflight_for_what_no_route_answers_fails(client, cors_on) -> None:
    """An allowed origin asking for a method or a path no route has: the app's own 404/405
    (not 2xx, so the browser refuses), no methods granted."""
    for path, method, status in [
        ("/api/v1/me", "DELETE", 405),
        ("/api/v1/nothing", "GET", 404),
        ("/tiles/grids/12/3316/1733.mvt", "POST", 405),
    ]:
        r = preflight(client, path, MAP, method)
        assert r.status_code == status, (path, method)
        assert r.headers["content-type"] == "application/problem+json"
        assert "access-control-allow-methods" not in r.headers, (path, method)


def test_answers_to_an_allowed_origin_are_readable(client, cors_on, as_user) -> None:
    r = client.get("/api/v1/me", headers={**as_user("county"), "Origin": MAP})
    assert r.status_code == 200 and r.json()["username"] == "county"
    assert r.headers[ACAO] == MAP
    exposed = {h.strip() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"ETag", "X-Request-Id", "Retry-After", "Content-Disposition"} <= exposed
    assert r.headers["vary"].count("Origin") == 1
    # errors too: the page can read why
    r = client.get("/api/v1/households/999999999", headers={**as_user("county"), "Origin": MAP})
    assert r.status_code == 404 and r.headers[ACAO] == MAP
    assert r.json()["code"] == "not_found"
    # tiles keep their ETag, which the page may read
    r = client.get("/tiles/grids/12/3316/1733.mvt", headers={**as_user("county"), "Origin": MAP})
    assert r.status_code in (200, 204) and r.headers[ACAO] == MAP and r.headers["etag"]


def test_refusals_carry_cors_so_the_page_sees_them(app, cors_on, world: World) -> None:
    """The request guard answers before routing (auth before body): its 401 still carries the
    CORS headers, and the body is still never read; so does the route's 415."""
    sent = call(
        app,
        "POST",
        "/api/v1/visits/batch",
        headers={"Origin": MAP, "Content-Type": "application/json"},
        chunks=[b'{"visits": []}'],
    )
    assert (sent.status, sent.read) == (401, 0)
    assert sent.headers[ACAO] == MAP and sent.json()["code"] == "unauthenticated"
    sent = call(
        app,
        "POST",
        "/api/v1/visits/batch",
        headers={**bearer(world), "Origin": MAP, "Content-Type": "text/plain"},
        chunks=[b"{}"],
    )
    assert sent.status == 415 and sent.headers[ACAO] == MAP


def test_a_preflight_never_reaches_the_guard_or_the_route(app, cors_on) -> None:
    """No token, no body: answered by the CORS layer, nothing read, no 401."""
    sent = call(
        app,
        "OPTIONS",
        "/api/v1/visits/batch",
        headers={"Origin": MAP, "Access-Control-Request-Method": "POST"},
        declare=False,
    )
    assert (sent.status, sent.read) == (204, 0)
    assert sent.headers[ACAO] == MAP


def test_any_origin(client, monkeypatch: pytest.MonkeyPatch, as_user) -> None:
    monkeypatch.setattr(get_settings().cors, "allow_origins", ["*"])
    r = client.get("/api/v1/me", headers={**as_user("county"), "Origin": ELSEWHERE})
    assert r.headers[ACAO] == "*"
    r = preflight(client, "/api/v1/me", ELSEWHERE)
    assert r.status_code == 204 and r.headers[ACAO] == ELSEWHERE


def test_origins_are_checked_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    assert CorsSettings(allow_origins=[" HTTPS://Map.Example.gov.cn "]).allow_origins == [
        "https://map.example.gov.cn"
    ]
    for bad in ("map.example.gov.cn", "https://map.example.gov.cn/", "https://a.cn/path", ""):
        with pytest.raises(ValidationError):
            CorsSettings(allow_origins=[bad])
    monkeypatch.setenv("GRIDGOV_CORS__ALLOW_ORIGINS", f'["{MAP}", "http://127.0.0.1:5173"]')
    assert Settings().cors.allow_origins == [MAP, "http://127.0.0.1:5173"]
