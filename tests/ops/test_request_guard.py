"""D4, D9 (depth, NUL) and D11 of issue 11: what a request may send is decided before a route
reads it — credential first, then size, then JSON nesting — and every answer carries the
security headers.

The body tests drive the ASGI app directly with a ``receive`` that counts what was read, so
"never read" is measured, not assumed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gridgov.config import get_settings
from gridgov.middleware import json_depth
from gridgov.site import pages as site_pages
from tests.conftest import token_for
from tests.fixtures.world import World

PROBLEM = "application/problem+json"


class Sent:
    """What the app answered, and how many body bytes it pulled from the client."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.read = 0

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    app: Any,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    chunks: list[bytes] = (),
    declare: bool = True,
    query: bytes = b"",
) -> Sent:
    sent = Sent()
    pending = list(chunks)
    head = {k.lower(): v for k, v in (headers or {}).items()}
    if declare:
        head.setdefault("content-length", str(sum(len(c) for c in chunks)))
    else:
        head["transfer-encoding"] = "chunked"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(k.encode(), v.encode()) for k, v in head.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        if not pending:
            await asyncio.sleep(3600)  # a client that sends nothing more
        chunk = pending.pop(0)
        sent.read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent.status = message["status"]
            sent.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            sent.body += message.get("body", b"")

    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    return sent


def bearer(world: World, user: str = "grid_a1", role: str = "grid_member") -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(world.users[user], role)}"}


MB = 1024 * 1024


# -- D4: authentication before the body, size limits per route --------------------------------


def test_unauthenticated_big_batch_is_401_without_reading_the_body(app):
    body = [b"{" + b" " * (MB - 2) + b"}"] * 56  # the 56 MB
    sent = call(app, "POST", "/api/v1/visits/batch", chunks=body)
    assert sent.status == 401
    assert sent.headers["content-type"] == PROBLEM
    assert sent.json()["code"] == "unauthenticated"
    assert sent.headers["www-authenticate"] == "Bearer"
    assert sent.read == 0


def test_forged_token_is_401_without_reading_the_body(app, world: World):
    forged = token_for(world.users["county"], "county_admin") + "x"
    sent = call(
        app,
        "POST",
        "/api/v1/households",
        headers={"Authorization": f"Bearer {forged}", "Content-Type": "application/json"},
        chunks=[b"{}" * 1000],
    )
    assert (sent.status, sent.json()["code"], sent.read) == (401, "invalid_token", 0)


def test_declared_size_over_the_route_limit_is_413_unread(app, world: World):
    limit = get_settings().limits.visit_batch_max_bytes
    sent = call(
        app,
        "POST",
        "/api/v1/visits/batch",
        headers={**bearer(world), "Content-Type": "application/json"},
        chunks=[b" " * (limit + 1)],
    )
    assert sent.status == 413 and sent.read == 0
    body = sent.json()
    assert body["code"] == "payload_too_large" and body["errors"][0]["loc"] == ["body"]
    assert sent.headers["content-type"] == PROBLEM


def test_streamed_body_is_cut_at_the_limit(app, world: World):
    """No Content-Length (chunked): read only until the limit is passed, then 413."""
    limit = get_settings().limits.body_max_bytes
    chunks = [b" " * (256 * 1024)] * 40  # 10 MB offered
    sent = call(
        app,
        "POST",
        "/api/v1/households",
        headers={**bearer(world, "county", "county_admin"), "Content-Type": "application/json"},
        chunks=chunks,
        declare=False,
    )
    assert sent.status == 413 and sent.json()["code"] == "payload_too_large"
    assert limit < sent.read <= limit + 256 * 1024


def test_streamed_upload_is_cut_at_the_photo_limit(app, world: World):
    limit = get_settings().visits.attachment_max_bytes
    sent = call(
        app,
        "PUT",
        f"/api/v1/attachments/{uuid.uuid4()}",
        headers={**bearer(world), "Content-Type": "application/octet-stream"},
        chunks=[b"\xff\xd8\xff" + b"\x00" * (MB - 3)] * 30,
        declare=False,
    )
    assert sent.status == 413 and sent.json()["code"] == "payload_too_large"
    assert sent.read <= limit + MB


def test_default_limit_is_small_and_routes_that_need_more_get_more(app, world: World):
    county = {**bearer(world, "county", "county_admin"), "Content-Type": "application/json"}
    # 2 MB is too much for an ordinary JSON write …
    sent = call(app, "POST", "/api/v1/households", headers=county, chunks=[b" " * 2 * MB])
    assert sent.status == 413 and sent.read == 0
    # … but a visit batch of that size is read (and answered on its merits).
    batch = json.dumps({"visits": [{"notes": "x" * 5000}] * 500}).encode()
    assert len(batch) > 2 * MB
    sent = call(
        app,
        "POST",
        "/api/v1/visits/batch",
        headers={**bearer(world), "Content-Type": "application/json"},
        chunks=[batch],
    )
    assert sent.status == 200, sent.body[:300]
    assert sent.json()["rejected"] == 500


def test_500_full_visits_fit_the_batch_limit(client, as_user, world: World):
    """The batch limit holds 500 visits with everything a phone may send, in UTF-8."""
    now = datetime.now(UTC)
    items = [
        {
            "client_uuid": str(uuid.uuid4()),
            "household_id": world.households["A1-1"],
            "visited_at": (now - timedelta(hours=i + 1)).isoformat(),
            "location": {"type": "Point", "coordinates": [111.01, 26.01]},
            "accuracy_m": 10,
            "method": "door",
            "notes": "走" * 2000,
            "needs": ["需" * 200] * 20,
            "attachment_ids": [str(uuid.uuid4()) for _ in range(20)],
        }
        for i in range(500)
    ]
    body = json.dumps({"visits": items}, ensure_ascii=False).encode()
    assert 9 * MB < len(body) < get_settings().limits.visit_batch_max_bytes
    r = client.post(
        "/api/v1/visits/batch",
        content=body,
        headers={**as_user("grid_a1"), "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text[:300]
    assert r.json()["created"] == 500


def test_body_limits_name_real_routes():
    from gridgov.app import create_app, route_table
    from gridgov.middleware import BODY_LIMITS

    routes = {(m, p) for p, r in route_table(create_app()) for m in r.methods}
    assert set(BODY_LIMITS) <= routes


def _takes_a_file(route: Any) -> bool:
    from fastapi import UploadFile

    return any(f.field_info.annotation is UploadFile for f in route.dependant.body_params)


def test_every_file_upload_gets_the_upload_limit():
    """A file import (a county's code list may come as a GeoPackage with every boundary) is
    not held to the 1 MB of an ordinary JSON write."""
    from gridgov.app import create_app, route_table
    from gridgov.middleware import BODY_LIMITS

    settings = get_settings()
    uploads = {(m, p) for p, r in route_table(create_app()) for m in r.methods if _takes_a_file(r)}
    assert ("POST", "/api/v1/imports/units") in uploads and len(uploads) == 3
    for route in uploads:
        assert route in BODY_LIMITS, route
        assert BODY_LIMITS[route](settings) > settings.limits.upload_max_bytes, route


def test_a_code_list_bigger_than_a_json_body_is_read(app, world: World):
    """2 MB to the code-list import is read and judged on its content (not 413 unread)."""
    boundary = "gridgovboundary"
    payload = b"439902100,\xe7\x94\xb2\xe9\x95\x87\n" * (2 * MB // 16 + 1)
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="codes.csv"'
            "\r\nContent-Type: text/csv\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    assert len(body) > 2 * MB
    sent = call(
        app,
        "POST",
        "/api/v1/imports/units",
        headers={
            **bearer(world, "county", "county_admin"),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        chunks=[body],
    )
    assert sent.status != 413, sent.body[:300]
    assert sent.read == len(body)


def test_nginx_allows_what_the_app_allows_and_no_more():
    """deploy/nginx.conf: 1 MB by default (the app's default), and for each route with a larger
    limit a location that lets exactly that route's bodies through (D4); HSTS over TLS (D11)."""
    import re
    from pathlib import Path

    from gridgov.middleware import BODY_LIMITS

    conf = (Path(__file__).parents[2] / "deploy" / "nginx.conf").read_text()
    settings = get_settings()
    server = conf[conf.index("listen 443") :]
    default = re.search(r"^    client_max_body_size (\d+)m;", server, re.M)
    assert default and int(default[1]) * MB == settings.limits.body_max_bytes
    locations = re.findall(r"location (=|~|) ?(\S+) \{\s*client_max_body_size (\d+)m;", server)
    assert locations

    def nginx_limit(path: str) -> int:
        # Example path of the route template, matched the way nginx would (exact, regex, prefix).
        # (a format parameter takes one of its real values, as nginx's regex expects)
        concrete = re.sub(r"\{fmt\}", "json", path)
        concrete = re.sub(r"\{[^}]+\}", "x", concrete)
        for kind, pattern, size in locations:
            if (
                (kind == "=" and concrete == pattern)
                or (kind == "~" and re.search(pattern, concrete))
                or (kind == "" and concrete.startswith(pattern))
            ):
                return int(size) * MB
        return int(default[1]) * MB

    for (_, path), limit_of in BODY_LIMITS.items():
        assert nginx_limit(path) >= limit_of(settings), path
        assert nginx_limit(path) <= limit_of(settings) + MB, path
    assert nginx_limit("/api/v1/households") == settings.limits.body_max_bytes
    assert re.search(r'add_header Strict-Transport-Security "max-age=\d+', server)


# -- D9: JSON nesting depth, NUL in query strings and forms ------------------------------------


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"1", 0),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[[[[[["}', 1),
        (b'["\\"[[[", "\\\\", [[]]]', 3),
        (b'["\\\\\\"]]]]"]', 1),
    ],
)
def test_json_depth(text, depth):
    assert json_depth(text) == depth


@pytest.mark.parametrize("levels", [600, 900, 40])
def test_deeply_nested_visit_is_422_before_parsing(client, as_user, levels: int):
    nested = "[" * levels + "]" * levels
    body = '{"visits": [{"notes": ' + nested + "}]}"
    r = client.post(
        "/api/v1/visits/batch",
        content=body,
        headers={**as_user("grid_a1"), "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "json_too_deep" and problem["errors"][0]["loc"] == ["body"]


def test_nesting_within_the_limit_is_judged_per_item(client, as_user):
    nested = "[" * 20 + "]" * 20
    r = client.post(
        "/api/v1/visits/batch",
        content='{"visits": [{"notes": ' + nested + "}]}",
        headers={**as_user("grid_a1"), "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["status"] == "rejected"


@pytest.mark.parametrize(
    ("url", "loc"),
    [
        ("/api/v1/audit?entity=%00", ["query", "entity"]),
        ("/api/v1/households?q=a%00b", ["query", "q"]),
        ("/api/v1/units/%00", ["path"]),
    ],
)
def test_nul_in_query_or_path_is_422(client, as_user, url: str, loc: list[str]):
    r = client.get(url, headers=as_user("county"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["code"] == "nul_character" and body["errors"][0]["loc"] == loc


@pytest.mark.parametrize("field", ["username", "password"])
def test_nul_in_login_form_is_422(client, field: str):
    form = {"username": "county", "password": "x" * 10, field: "a\x00b"}
    r = client.post("/api/v1/auth/token", data=form)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "nul_character" and body["errors"][0]["loc"] == ["body", field]


# -- D11: security headers ---------------------------------------------------------------------


def _common(headers: Any) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"


def test_api_answers_are_not_stored(client, as_user):
    for url in ("/api/v1/me", "/api/v1/households?pii=true", "/api/v1/exports/households.csv"):
        r = client.get(url, headers=as_user("county"))
        assert r.status_code == 200, r.text
        _common(r.headers)
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
    refused = client.get("/api/v1/me")
    assert refused.status_code == 401
    _common(refused.headers)
    assert refused.headers["cache-control"] == "no-store"


def test_tiles_keep_their_etag_caching(client, as_user):
    r = client.get("/tiles/grids/12/3316/1733.mvt", headers=as_user("county"))
    assert r.status_code in (200, 204), r.text
    _common(r.headers)
    assert "no-store" not in r.headers.get("cache-control", "")
    assert r.headers["etag"]


def test_html_pages_keep_working(client, as_user):
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    _common(docs.headers)
    # The docs carry their own, stricter policy: scripts from this server only (tests/site).
    assert docs.headers["content-security-policy"] == site_pages.csp("swagger")
    page = client.get("/ogc?f=html", headers=as_user("county"))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    _common(page.headers)
    assert "default-src" not in page.headers["content-security-policy"]
