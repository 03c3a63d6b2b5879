"""The FastAPI application factory: routers, middleware, and the one error table."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridgov import errors, wiring  # noqa: F401  (wiring: every subscriber of domain events)
from gridgov.config import get_settings
from gridgov.logging import configure_logging, new_request_id, request_id_var
from gridgov.middleware import CorsMiddleware, RequestGuardMiddleware, SecurityHeadersMiddleware
from gridgov.openapi_links import with_links
from gridgov.openapi_problems import with_problems
from gridgov.ops.metrics import IN_FLIGHT, LATENCY, REQUESTS
from gridgov.routing import include_flat

log = logging.getLogger("gridgov.http")

PROBLEM = "application/problem+json"

# The one place a domain error becomes an HTTP status (most specific class first).
STATUS_BY_ERROR: list[tuple[type[errors.DomainError], int]] = [
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.TooManyRequests, 429),
    (errors.PayloadTooLarge, 413),
    (errors.UnsupportedMedia, 415),
    (errors.RuleViolation, 422),
    (errors.DomainError, 400),
]

# Chinese messages for pydantic's error types; anything else keeps pydantic's own text.
_VALIDATION_MESSAGES = {
    "missing": "缺少必填字段",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "string_pattern_mismatch": "格式不正确",
    "int_parsing": "应为整数",
    "float_parsing": "应为数字",
    "bool_parsing": "应为布尔值",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "greater_than": "数值过小",
    "less_than": "数值过大",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "json_invalid": "JSON 格式错误",
    "uuid_parsing": "应为 UUID",
    "date_parsing": "日期格式不正确",
    "datetime_parsing": "时间格式不正确",
    "list_type": "应为数组",
    "dict_type": "应为对象",
    "model_attributes_type": "应为对象",
    "string_type": "应为字符串",
    "int_type": "应为整数",
    "float_type": "应为数字",
    "too_short": "元素过少",
    "too_long": "元素过多",
    "extra_forbidden": "不允许的字段",
    "value_error": "取值不正确",
}


def problem(
    status: int,
    *,
    code: str,
    title: str,
    detail: str | None = None,
    errors_: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://gridgov.cn/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if errors_:
        body["errors"] = errors_
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def status_for(exc: errors.DomainError) -> int:
    return next(status for cls, status in STATUS_BY_ERROR if isinstance(exc, cls))


async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DomainError)
    status = status_for(exc)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if "retry_after" in exc.extra:
        headers["Retry-After"] = str(exc.extra["retry_after"])
    return problem(
        status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        errors_=[e.as_dict() for e in exc.errors] or None,
        headers=headers,
        **{k: v for k, v in exc.extra.items() if k != "retry_after"},
    )


def _validation_item(err: dict[str, Any]) -> dict[str, Any]:
    kind = err.get("type", "value_error")
    msg = _VALIDATION_MESSAGES.get(kind, err.get("msg", "取值不正确"))
    ctx = err.get("ctx") or {}
    if kind == "value_error" and ctx.get("error"):
        msg = str(ctx["error"])  # our own validators raise Chinese messages
    return {"loc": list(err.get("loc", [])), "msg": msg, "code": kind}


OPEN311_PREFIX = "/open311/"


def open311_error(request: Request, status: int, description: str) -> Response:
    from gridgov.issues.open311_router import error_response

    return error_response(request.url.path, status, description)


_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


def media_refusal(request: Request) -> str | None:
    """Why the route could not read this request's body — not JSON for a JSON body, not a form
    for a form — or None. FastAPI takes such a body as bytes (or an empty form) and reports a
    puzzling "应为对象" or "缺少必填字段": answered as 415 instead. Only after the route's
    dependencies ran, so a caller without the role still gets 403 first (and 401 comes from
    the request guard before any body is read)."""
    from fastapi import params

    field = getattr(request.scope.get("route"), "body_field", None)
    if field is None:
        return None
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    given = f"（收到：{media[:100]}）" if media else "（未声明 Content-Type）"
    if isinstance(field.field_info, params.Form):
        if media not in _FORMS:
            return f"请求体须为表单，{' 或 '.join(_FORMS)}{given}"
    elif media != "application/json" and not media.endswith("+json"):
        return "请求体须为 JSON，Content-Type: application/json" + given
    return None


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    refusal = media_refusal(request)
    if refusal is not None:
        if request.url.path.startswith(OPEN311_PREFIX):
            return open311_error(request, 415, refusal)
        return problem(415, code="unsupported_media_type", title="不支持的内容类型", detail=refusal)
    items = [_validation_item(e) for e in exc.errors()]
    if request.url.path.startswith(OPEN311_PREFIX):  # Open311 clients read their own shape
        where = "；".join(f"{i['loc'][-1]}：{i['msg']}" for i in items[:5] if i["loc"])
        detail = f"请求参数不正确：{where}" if where else "请求参数不正确"
        return open311_error(request, 400, detail)
    return problem(
        422,
        code="validation_error",
        title="请求参数不正确",
        detail="；".join(f"{'.'.join(map(str, i['loc']))}：{i['msg']}" for i in items[:5]),
        errors_=items,
    )


_HTTP_TITLES = {
    400: "请求无效",
    401: "未登录",
    403: "无权操作",
    404: "未找到",
    405: "不支持的请求方法",
    406: "不支持的响应格式",
    413: "请求体过大",
    415: "不支持的内容类型",
    416: "请求的范围无效",
    429: "请求过于频繁",
}

# Framework-level refusals (Starlette's routing and static files, FastAPI's body reading,
# python-multipart) carry English words: each answers with a Chinese ``detail`` instead.
_HTTP_DETAILS = {
    400: "请求无法解析",
    401: "请先登录",
    403: "无权访问",
    406: "无法按请求的格式（Accept）作答",
    413: "请求体过大",
    415: "不支持该请求体格式（Content-Type）",
    416: "请求的范围（Range）超出内容",
    429: "请求过于频繁，请稍后再试",
}
_FRAMEWORK_DETAILS = [
    ("There was an error parsing the body", "请求体无法解析"),
    ("Missing boundary in multipart", "multipart 请求缺少 boundary"),
    ("The Content-Disposition header field", "multipart 的每一部分都须有 name"),
    ("Too many files", "上传的文件过多"),
    ("Too many fields", "表单字段过多"),
    ("Part exceeded maximum size", "表单字段过长"),
]
_CHINESE = re.compile(r"[\u4e00-\u9fff]")


def http_detail(request: Request, status: int, detail: Any, headers: dict[str, str]) -> str:
    """The Chinese ``detail`` of a framework-level error: ours are kept, English is replaced."""
    text_ = detail if isinstance(detail, str) else ""
    if _CHINESE.search(text_):
        return text_
    path = request.url.path[:200]
    if status == 404:
        return f"地址 {path} 不存在（接口说明见 /docs）"
    if status == 405:
        allowed = "、".join(m.strip() for m in headers.get("Allow", "").split(",") if m.strip())
        detail_ = f"地址 {path} 不支持 {request.method} 请求"
        return detail_ + (f"，可用：{allowed}" if allowed else "")
    for english, chinese in _FRAMEWORK_DETAILS:
        if text_.startswith(english):
            return chinese
    return _HTTP_DETAILS.get(status, "请求无法处理")


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    title = _HTTP_TITLES.get(exc.status_code, "请求无法处理")
    headers = dict(getattr(exc, "headers", None) or {})
    if request.url.path.startswith(OPEN311_PREFIX):
        detail = http_detail(request, exc.status_code, exc.detail, headers)
        answer = open311_error(request, exc.status_code, detail)
        answer.headers.update(headers)
        return answer
    return problem(
        exc.status_code,
        code=f"http_{exc.status_code}",
        title=title,
        detail=http_detail(request, exc.status_code, exc.detail, headers),
        headers=headers or None,
    )


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return problem(
        500, code="internal_error", title="服务器内部错误", detail="请稍后重试或联系管理员"
    )


def route_table(app: FastAPI) -> list[tuple[str, APIRoute]]:
    """Every API route with its full path template (FastAPI includes routers lazily)."""
    out = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if isinstance(route, APIRoute) and ctx.path:
            out.append((ctx.path, route))
    return out


class RequestContextMiddleware:
    """Request id, JSON access log and Prometheus metrics, as plain ASGI (streams untouched)."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self._templates: dict[int, str] | None = None

    def template(self, route: object) -> str:
        if route is None:
            return "unmatched"
        if self._templates is None:
            self._templates = {id(r): path for path, r in route_table(self.fastapi_app)}
        return self._templates.get(id(route)) or getattr(route, "path", "unmatched")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")[:64]
        rid = incoming or new_request_id()
        token = request_id_var.set(rid)
        status = 500
        started = time.perf_counter()
        responded = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
                responded = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            # Answered here rather than by Starlette's outermost ServerErrorMiddleware: inside
            # the request's context, the 500 carries the request id and so does the logged trace.
            if responded:
                raise
            response = await on_unexpected(Request(scope), exc)
            await response(scope, receive, send_wrapper)
        finally:
            IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            template = self.template(scope.get("route"))
            method = scope["method"]
            REQUESTS.labels(method, template, str(status)).inc()
            LATENCY.labels(method, template).observe(elapsed)
            state = scope.get("state") or {}
            log.info(
                "%s %s %s",
                method,
                scope["path"],
                status,
                extra={
                    "method": method,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                    "user": state.get("user"),
                },
            )
            request_id_var.reset(token)


def operation_id(route: APIRoute) -> str:
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


def api_routers() -> list[APIRouter]:
    """The routers under /api/v1, in matching order."""
    from gridgov.audit.router import router as audit_router
    from gridgov.auth.api_keys_router import router as api_keys_router
    from gridgov.auth.router import router as auth_router
    from gridgov.auth.router import users_router
    from gridgov.contacts.router import router as contacts_router
    from gridgov.dashboard.router import router as dashboard_router
    from gridgov.hierarchy.router import router as hierarchy_router
    from gridgov.households.router import router as households_router
    from gridgov.imports.router import router as imports_router
    from gridgov.issues.router import router as issues_router
    from gridgov.members.router import router as members_router
    from gridgov.notifications.router import router as notifications_router
    from gridgov.sync.router import router as sync_router
    from gridgov.visits.router import router as visits_router

    return [
        auth_router,
        users_router,
        api_keys_router,
        hierarchy_router,
        households_router,
        imports_router,
        members_router,
        contacts_router,
        visits_router,
        sync_router,
        issues_router,
        notifications_router,
        audit_router,
        dashboard_router,
    ]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start-up and background work of one API process: the start-up heap frozen (with the
    OpenAPI document built, so it is part of it), the dashboard rollup refresher (one at a
    time across processes, by an advisory lock)."""
    from gridgov.dashboard.rollups import Refresher
    from gridgov.ops.gc import freeze_startup_heap

    freeze_startup_heap(prepare=app.openapi)
    seconds = get_settings().dashboard.refresh_seconds
    refresher = Refresher(seconds) if seconds > 0 else None
    if refresher is not None:
        refresher.start()
    try:
        yield
    finally:
        if refresher is not None:
            refresher.stop()


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    app = FastAPI(
        lifespan=lifespan,
        title="gridgov 网格治理",
        version="0.1.0",
        description="行政村党组织—网格—党员联系户 后端接口。错误统一为 application/problem+json。",
        generate_unique_id_function=operation_id,
        # /docs and /redoc are the site's own pages (gridgov/site): FastAPI's load from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    from gridgov.gis.router import exports_router, qa_router, tiles_router
    from gridgov.gis.router import router as ogc_router
    from gridgov.issues.open311_router import router as open311_router
    from gridgov.ops.router import router as ops_router

    # Routes are matched in order, one after another: the map routes, which a client hits
    # dozens of times a second, go first (after the ~90 API routes they cost ~0.2 ms each).
    include_flat(app, tiles_router)
    include_flat(app, ogc_router)
    include_flat(app, ops_router)
    for router in api_routers():
        include_flat(app, router, "/api/v1")
    include_flat(app, open311_router)
    include_flat(app, exports_router)
    include_flat(app, qa_router)
    # The web dashboard page (/dashboard/): HTML and static files, not part of the OpenAPI.
    from gridgov.dashboard import page
    from gridgov.site import pages as site_pages

    page.install(app)
    # The home page /, the API docs /docs and /redoc, with their vendored assets.
    site_pages.install(app)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_links(with_problems(default_openapi(), route_table(app)))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(errors.DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
    # Outermost last: request id and access log around everything, security headers on every
    # answer (the guard's own 401/413/422 included), CORS around the guard (a preflight has no
    # token; a page elsewhere must be able to read the guard's 401), the guard before any body
    # is read.
    app.add_middleware(RequestGuardMiddleware, fastapi_app=app)
    app.add_middleware(CorsMiddleware, fastapi_app=app)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware, fastapi_app=app)
    return app
