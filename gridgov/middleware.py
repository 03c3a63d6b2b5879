"""ASGI middleware guarding what a request may send, and the security headers of every answer.

``RequestGuardMiddleware`` runs before routing and before any body is read:

- NUL characters in the path or query string → 422 (PostgreSQL text cannot hold them);
- on a route that needs a credential, a request with a body but without a credential, or
  with an access token that does not verify, → 401 before a byte of the body is read;
- the body's size per route (``BODY_LIMITS``, in settings) → 413 from ``Content-Length``
  before reading, or as soon as the streamed bytes pass the limit;
- JSON bodies nested deeper than ``limits.json_max_depth`` → 422 before they are parsed;
- NUL characters in urlencoded form fields → 422.

``CorsMiddleware`` lets browsers on the origins of ``GRIDGOV_CORS__ALLOW_ORIGINS`` (none by
default) call the API, tiles, OGC and Open311: it answers their preflights and marks the
answers (the guard's refusals included, so a page can read a 401); any other origin gets no
CORS header at all and its preflight is answered by the app (405), as without CORS.

``SecurityHeadersMiddleware`` adds nosniff, frame and referrer policies to every response and
``Cache-Control: no-store`` to the JSON API and exports (never to tiles, which rely on ETags).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
from fastapi import FastAPI
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridgov.auth import api_keys as api_keys_service
from gridgov.auth import security
from gridgov.config import Settings, get_settings
from gridgov.deps import get_current_user, get_scope

# Multipart framing around an uploaded file (boundaries, part headers, form fields).
MULTIPART_SLACK = 1024 * 1024

# Routes whose bodies may be bigger than ``limits.body_max_bytes``: (method, path template) →
# the limit in bytes. Every other route with a body gets the default.
BODY_LIMITS: dict[tuple[str, str], Callable[[Settings], int]] = {
    ("POST", "/api/v1/visits/batch"): lambda s: s.limits.visit_batch_max_bytes,
    ("PUT", "/api/v1/attachments/{attachment_id}"): lambda s: s.visits.attachment_max_bytes,
    ("POST", "/api/v1/imports/units"): lambda s: s.limits.upload_max_bytes + MULTIPART_SLACK,
    ("POST", "/api/v1/imports/boundaries"): lambda s: s.limits.upload_max_bytes + MULTIPART_SLACK,
    ("POST", "/api/v1/imports/households"): lambda s: s.limits.upload_max_bytes + MULTIPART_SLACK,
    ("POST", "/api/v1/units"): lambda s: s.limits.geometry_body_max_bytes,
    ("PATCH", "/api/v1/units/{code}"): lambda s: s.limits.geometry_body_max_bytes,
    ("POST", "/api/v1/grids"): lambda s: s.limits.geometry_body_max_bytes,
    ("PATCH", "/api/v1/grids/{grid_id}"): lambda s: s.limits.geometry_body_max_bytes,
    # An Open311 report with its photos (multipart ``media``).
    ("POST", "/open311/v2/requests.{fmt}"): lambda s: (
        s.open311.media_max_files * s.visits.attachment_max_bytes + MULTIPART_SLACK
    ),
}

PROBLEM_HEADERS = [(b"content-type", b"application/problem+json")]


class BodyTooLarge(Exception):
    """Raised into the app from ``receive`` once the streamed body passes its limit."""


def _default_limit(settings: Settings) -> int:
    return settings.limits.body_max_bytes


@dataclass(frozen=True)
class RouteInfo:
    path: str
    limit_of: Callable[[Settings], int]
    needs_credential: bool

    @property
    def limit(self) -> int:
        return self.limit_of(get_settings())


def _needs_credential(dependant: Any) -> bool:
    for dep in dependant.dependencies:
        # A role guard (deps.require) asks for the scope itself.
        guard = getattr(dep.call, "perm", None) is not None
        if guard or dep.call in (get_scope, get_current_user) or _needs_credential(dep):
            return True
    return False


class _Routes:
    """Which route a method and path will reach, found the way Starlette will (first match)."""

    def __init__(self, app: FastAPI) -> None:
        from gridgov.app import route_table  # the app factory imports this module

        self.entries: list[tuple[set[str], re.Pattern[str], RouteInfo]] = []
        for path, route in route_table(app):
            regex, _, _ = compile_path(path)
            methods = set(route.methods or ())
            for method in methods:
                limit_of = BODY_LIMITS.get((method, path), _default_limit)
                info = RouteInfo(path, limit_of, _needs_credential(route.dependant))
                self.entries.append(({method}, regex, info))
        self.default = RouteInfo("", _default_limit, False)
        self.find = lru_cache(maxsize=4096)(self._find)

    def _find(self, method: str, path: str) -> RouteInfo:
        for methods, regex, info in self.entries:
            if method in methods and regex.match(path):
                return info
        return self.default

    def methods(self, path: str) -> list[str]:
        """Every method some route answers at ``path``."""
        found = {m for methods, regex, _ in self.entries if regex.match(path) for m in methods}
        return sorted(found)


def problem_message(
    status: int, code: str, title: str, detail: str, loc: list[Any] | None = None
) -> bytes:
    import orjson

    body: dict[str, Any] = {
        "type": f"https://gridgov.cn/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if loc is not None:
        body["errors"] = [{"loc": loc, "msg": detail, "code": code}]
    return orjson.dumps(body)


async def send_problem(
    send: Send,
    status: int,
    code: str,
    title: str,
    detail: str,
    loc: list[Any] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = problem_message(status, code, title, detail, loc)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *PROBLEM_HEADERS,
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- JSON nesting depth, measured on the bytes ---------------------------------------------------

_KEEP = b'"[]{}'
_DROP = bytes(c for c in range(256) if c not in _KEEP)
_STEP = np.zeros(256, dtype=np.int32)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1


def json_depth(body: bytes) -> int:
    """How deeply a JSON text nests arrays and objects, without parsing it (C-speed passes:
    escaped backslashes and quotes dropped, then everything but quotes and brackets, then the
    insides of strings; a running sum of the remaining brackets)."""
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = body.translate(None, _DROP)
    if b'"' in structure:
        structure = b"".join(structure.split(b'"')[::2])
    if not structure:
        return 0
    return int(np.cumsum(_STEP[np.frombuffer(structure, dtype=np.uint8)]).max())


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _nul_in_query(query: bytes) -> str | None:
    """The name of the first query parameter holding a NUL character (or '' for a bare one)."""
    if b"%00" not in query and b"\x00" not in query:
        return None
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in key or "\x00" in value:
            return key.replace("\x00", "") or ""
    return ""


class _RoutesMiddleware:
    """A middleware that looks up the route a request is for (built on first use: the app's
    routes are all registered by then)."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self._routes: _Routes | None = None

    @property
    def routes(self) -> _Routes:
        if self._routes is None:
            self._routes = _Routes(self.fastapi_app)
        return self._routes


class RequestGuardMiddleware(_RoutesMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        if b"%00" in raw_path or "\x00" in scope["path"]:
            await send_problem(
                send,
                422,
                "nul_character",
                "请求参数不正确",
                "路径中不能包含空字符（\\0）",
                ["path"],
            )
            return
        name = _nul_in_query(scope.get("query_string", b""))
        if name is not None:
            await send_problem(
                send,
                422,
                "nul_character",
                "请求参数不正确",
                "查询参数中不能包含空字符（\\0）",
                ["query", name],
            )
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body: nothing more to guard
            return
        size = int(declared) if declared is not None and declared.isdigit() else None
        if size == 0:
            await self.app(scope, receive, send)
            return
        route = self.routes.find(scope["method"], scope["path"])
        if route.needs_credential and (refusal := _credential_refusal(headers)) is not None:
            code, detail = refusal
            await send_problem(
                send, 401, code, "未登录", detail, headers=[(b"www-authenticate", b"Bearer")]
            )
            return
        limit = route.limit
        if size is not None and size > limit:
            await _too_large(send, limit)
            return
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        media = content_type.split(";", 1)[0].strip().lower()
        if _is_json(content_type) or media == "application/x-www-form-urlencoded":
            await self._buffered(scope, receive, send, limit, form=not _is_json(content_type))
        else:
            await self._streamed(scope, receive, send, limit)

    async def _buffered(
        self, scope: Scope, receive: Receive, send: Send, limit: int, *, form: bool
    ) -> None:
        """Small structured bodies: read whole (within the limit), checked, then handed on."""
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                await _too_large(send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if form:
            name = _nul_in_query(body)
            if name is not None:
                await send_problem(
                    send,
                    422,
                    "nul_character",
                    "请求参数不正确",
                    "表单字段中不能包含空字符（\\0）",
                    ["body", name],
                )
                return
        else:
            max_depth = get_settings().limits.json_max_depth
            if json_depth(body) > max_depth:
                await send_problem(
                    send,
                    422,
                    "json_too_deep",
                    "请求参数不正确",
                    f"JSON 嵌套不能超过 {max_depth} 层",
                    ["body"],
                )
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Uploads (files, photos): passed on as they arrive, counted, cut at the limit."""
        received = 0
        exceeded = False
        started = False

        async def counted() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the app made of the cut body, the answer is the 413 below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except BodyTooLarge:
            if started:
                raise
        if exceeded and not started:
            await _too_large(send, limit)


async def _too_large(send: Send, limit: int) -> None:
    await send_problem(
        send,
        413,
        "payload_too_large",
        "请求体过大",
        f"请求体不能超过 {_size(limit)}",
        ["body"],
        headers=[(b"connection", b"close")],
    )


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):g} MB"
    return f"{n / 1024:g} KB"


def _credential_refusal(headers: dict[bytes, bytes]) -> tuple[str, str] | None:
    """Why a request cannot be authenticated, judged from its headers alone (no database): no
    credential, or an access token whose signature, expiry or claims do not verify. API keys
    are looked up later by the route's own dependency (a malformed one is refused here)."""
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, token = authorization.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    key = headers.get(b"x-api-key", b"").decode("latin-1").strip()
    if token:
        if api_keys_service.looks_like_key(token):
            return None
        if security.decode(token, kind="access") is None:
            return "invalid_token", "访问令牌无效或已过期"
        return None
    if key:
        return None
    return "unauthenticated", "请先登录"


# -- cross-origin requests (CORS) ------------------------------------------------------------------

# What browsers elsewhere may use: the JSON API, map tiles, OGC API Features, Open311 and the
# OpenAPI document a generated client reads (not the pages: those are for this origin).
CORS_PREFIXES = ("/api/v1/", "/tiles/", "/ogc/", "/open311/")
CORS_PATHS = ("/ogc", "/openapi.json")
# Served by FastAPI itself, not by an API route the guard's table knows.
CORS_OWN_METHODS = {"/openapi.json": ["GET", "HEAD"]}
# Request headers a page may send (beyond the CORS-safelisted ones) and answer headers it may
# read: credentials, conditional tiles, request ids, rate limits, file names, created records.
CORS_ALLOW_HEADERS = b"Authorization, Content-Type, X-API-Key, X-Request-Id, If-None-Match"
PREFLIGHT_VARY = b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
CORS_EXPOSE_HEADERS = (
    b"ETag, X-Request-Id, Retry-After, WWW-Authenticate, Content-Disposition, Location"
)


def _cors_path(path: str) -> bool:
    return path.startswith(CORS_PREFIXES) or path in CORS_PATHS


class CorsMiddleware(_RoutesMiddleware):
    """CORS for the allow-listed origins only (``cors`` settings), on the ``CORS_PREFIXES``.

    A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) from an
    allowed origin, for a method some route answers at that path, is answered here — 204, the
    route's methods, the headers above — before the guard (a preflight carries no token). Any
    other preflight goes on to the app and gets its 404/405 without a CORS header, so the
    browser refuses it. Every answer to an allowed origin carries ``Access-Control-Allow-Origin``
    and the exposed headers; ``Vary: Origin`` on all answers of these paths while CORS is on.
    Credentials mode (cookies) is never allowed: the API authenticates by header.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = get_settings().cors
        if not settings.allow_origins or not _cors_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin-1")
        allowed = bool(origin) and settings.allows(origin)
        requested = headers.get(b"access-control-request-method")
        if scope["method"] == "OPTIONS" and requested is not None and allowed:
            methods = CORS_OWN_METHODS.get(scope["path"]) or self.routes.methods(scope["path"])
            if requested.decode("latin-1").upper() in methods:
                await self._preflight(send, origin, methods, settings.max_age_seconds)
                return
        allow_all = "*" in settings.allow_origins

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = [(k, v) for k, v in message.get("headers") or [] if k.lower() != b"vary"]
                vary = [v for k, v in message.get("headers") or [] if k.lower() == b"vary"]
                out.append((b"vary", b", ".join([*vary, b"Origin"])))
                if allowed:
                    out.append(
                        (b"access-control-allow-origin", b"*" if allow_all else origin.encode())
                    )
                    out.append((b"access-control-expose-headers", CORS_EXPOSE_HEADERS))
                message["headers"] = out
            await send(message)

        await self.app(scope, receive, marked)

    @staticmethod
    async def _preflight(send: Send, origin: str, methods: list[str], max_age: int) -> None:
        allowed_methods = ", ".join(sorted({*methods, "OPTIONS"}))
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-origin", origin.encode()),
                    (b"access-control-allow-methods", allowed_methods.encode()),
                    (b"access-control-allow-headers", CORS_ALLOW_HEADERS),
                    (b"access-control-max-age", str(max_age).encode()),
                    (b"vary", PREFLIGHT_VARY),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


# -- security headers ----------------------------------------------------------------------------

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
# JSON, tiles, files: never rendered as a page, so nothing may load from them.
_CSP_DATA = b"default-src 'none'; frame-ancestors 'none'"
# HTML pages without a policy of their own (OGC landing/items): no framing, no plugins,
# no base or form hijack; their own scripts and styles keep working.
_CSP_HTML = b"frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'"
# Answers holding personal data and files made for download: no copy kept by any cache.
_NO_STORE_PREFIXES = ("/api/v1/",)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = scope["path"].startswith(_NO_STORE_PREFIXES)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {k.lower() for k, _ in headers}
                for key, value in _COMMON:
                    if key not in present:
                        headers.append((key, value))
                if b"content-security-policy" not in present:
                    content_type = next(
                        (v for k, v in headers if k.lower() == b"content-type"), b""
                    )
                    html = content_type.startswith(b"text/html")
                    headers.append((b"content-security-policy", _CSP_HTML if html else _CSP_DATA))
                if no_store and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
