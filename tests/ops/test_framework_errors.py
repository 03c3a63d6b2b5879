"""Framework-level errors — an unknown path, a wrong method, a body of the wrong type, a broken
multipart body, a bad Range — answer like every other error: problem+json with an English
``code`` and a Chinese ``detail`` (never Starlette's "Not Found" or plain text)."""

from __future__ import annotations

import re

import pytest

from tests.fixtures.world import World
from tests.ops.test_request_guard import bearer, call

PROBLEM = "application/problem+json"
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert set(body) >= {"type", "title", "status", "code", "detail"}
    assert body["status"] == status
    assert CHINESE.search(body["title"]) and CHINESE.search(body["detail"]), body
    assert not re.search(r"Not Found|Method Not Allowed|Unsupported Media", body["detail"])
    return body


@pytest.mark.parametrize("path", ["/nothing", "/api/v1/nothing", "/ogc/nothing/at/all", "/x.y"])
def test_unknown_path_is_404_in_chinese(client, path: str) -> None:
    body = problem(client.get(path), 404)
    assert body["code"] == "http_404" and body["title"] == "未找到"
    assert body["detail"] == f"地址 {path} 不存在（接口说明见 /docs）"


def test_unknown_static_file_is_404_in_chinese(client) -> None:
    for path in ("/dashboard/nothing.js", "/site/nothing.css", "/site/vendor/nothing/1.0/x.js"):
        assert problem(client.get(path), 404)["code"] == "http_404", path


def test_wrong_method_is_405_naming_the_allowed_ones(client, as_user) -> None:
    r = client.delete("/healthz")
    body = problem(r, 405)
    assert body["code"] == "http_405" and body["title"] == "不支持的请求方法"
    assert body["detail"] == "地址 /healthz 不支持 DELETE 请求，可用：GET"
    assert r.headers["allow"] == "GET"
    # an API route, with a token; and a static file
    r = client.put("/api/v1/me", headers=as_user("county"))
    assert "不支持 PUT 请求" in problem(r, 405)["detail"]
    assert "不支持 POST 请求" in problem(client.post("/dashboard/app.js"), 405)["detail"]


def test_json_route_refuses_another_media_type_with_415(app, world: World) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = bearer(world)
        if content_type:
            headers["Content-Type"] = content_type
        sent = call(
            app, "POST", "/api/v1/visits/batch", headers=headers, chunks=[b'{"visits": []}']
        )
        assert sent.status == 415, content_type
        assert sent.headers["content-type"] == PROBLEM
        body = sent.json()
        assert body["code"] == "unsupported_media_type" and body["title"] == "不支持的内容类型"
        assert body["detail"].startswith("请求体须为 JSON，Content-Type: application/json")
        assert (content_type or "未声明") in body["detail"]
    # JSON spelled otherwise is JSON: the route answers (its own 422 for an empty batch or 200)
    sent = call(
        app,
        "POST",
        "/api/v1/visits/batch",
        headers={**bearer(world), "Content-Type": "application/json; charset=utf-8"},
        chunks=[b'{"visits": []}'],
    )
    assert sent.status != 415


def test_credential_and_role_come_before_the_media_type(app, world: World) -> None:
    """No token and the wrong type: 401 (auth before body, nothing read), not 415; a caller
    without the role: 403, not 415 (the route's guard runs before its body is judged)."""
    sent = call(
        app,
        "POST",
        "/api/v1/visits/batch",
        headers={"Content-Type": "text/plain"},
        chunks=[b"hello"],
    )
    assert (sent.status, sent.json()["code"], sent.read) == (401, "unauthenticated", 0)
    sent = call(
        app,
        "POST",
        "/api/v1/imports/households",
        headers={**bearer(world), "Content-Type": "application/json"},
        chunks=[b"{}"],
    )
    assert (sent.status, sent.json()["code"]) == (403, "forbidden")


def test_form_route_refuses_json_with_415(client) -> None:
    r = client.post("/api/v1/auth/token", json={"username": "county", "password": "x"})
    body = problem(r, 415)
    assert body["detail"].startswith("请求体须为表单")
    assert "application/json" in body["detail"]


def test_broken_multipart_is_400_in_chinese(client, as_user) -> None:
    r = client.post(
        "/api/v1/imports/households",
        content=b"--x\r\nbroken",
        headers={**as_user("county"), "Content-Type": "multipart/form-data"},
    )
    body = problem(r, 400)
    assert body["code"] == "http_400" and body["detail"] == "multipart 请求缺少 boundary"


def test_range_requests_on_page_files_get_the_whole_file(client) -> None:
    whole = client.get("/dashboard/app.js")
    for value in ("bytes=99999999-", "lines=1-2", "bytes=5-1"):
        r = client.get("/dashboard/app.js", headers={"Range": value})
        assert r.status_code == 200 and r.content == whole.content, value
