"""The error answers of the OpenAPI document: every operation lists the problem+json statuses it
can answer, each one shared response object over one ``Problem`` schema (what ``app.problem``,
the request guard and the validation handler really send).

The statuses are derived from each route when the document is built, so a new route cannot
forget them:

- 401 — the route needs a credential (a dependency on the caller or their scope);
- 403 — a role guard (``deps.require``) applies;
- 404 — the path names something, or a parameter or body field names another record
  (``household_id``, ``unit_code`` …);
- 409 — a write (POST/PUT/PATCH/DELETE) by a signed-in caller: duplicates, stale versions,
  rules about state (DESIGN §4);
- 413, 415 — the route takes a body (the guard's size limit per route; JSON/form media types);
  400 as well for a form (multipart that cannot be parsed);
- 422 — the route takes parameters or a body.

What a route's own logic adds beyond these (a public login answering 401 and 429, OGC's 400
for a bad query parameter) it declares with
``responses=problems(…)``. Open311 routes answer Open311 error arrays instead (JSON or XML).
A non-JSON media type a route declares without a schema gets one: bytes or text.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute

PROBLEM = "application/problem+json"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORMS = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
OPEN311_PREFIX = "/open311/"

# status → (name of the shared response object, its description)
RESPONSES: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "请求无效（如 OGC API 的查询参数不正确、multipart 无法解析）"),
    401: ("Unauthorized", "未登录，或凭据无效、已过期"),
    403: ("Forbidden", "您的角色无权执行此操作"),
    404: ("NotFound", "不存在，或不在您的权限范围内"),
    409: ("Conflict", "与现有数据冲突（重复、版本已变、状态不允许）"),
    413: ("PayloadTooLarge", "请求体过大"),
    415: ("UnsupportedMediaType", "不支持的请求体格式（Content-Type）"),
    422: ("ValidationFailed", "参数或请求体不符合要求；errors 逐项列出"),
    429: ("TooManyRequests", "请求过于频繁（见 Retry-After）"),
}

FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "title": "FieldError",
    "type": "object",
    "required": ["loc", "msg", "code"],
    "properties": {
        "loc": {
            "type": "array",
            "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "description": '出错的位置，如 ["body", "location"]、["query", "limit"]',
        },
        "msg": {"type": "string", "description": "中文说明"},
        "code": {"type": "string", "description": "英文错误代码"},
        "index": {"type": "integer", "description": "导入文件中的行号/要素序号"},
        "id": {"type": "string", "description": "该行/要素自身的编号（代码、外部编号）"},
        "detail_en": {"type": "string", "description": "底层库（GEOS、GDAL）的英文原文"},
    },
}

# RFC 9457 with the API's ``code`` and ``errors``; further members carry a conflict's details
# (``current_version``, ``allowed_actions`` …), so other properties are allowed.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 错误对象（application/problem+json）",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string", "description": "错误类型的 URI"},
        "title": {"type": "string", "description": "中文标题"},
        "status": {"type": "integer", "description": "HTTP 状态码"},
        "code": {"type": "string", "description": "英文错误代码"},
        "detail": {"type": "string", "description": "中文说明"},
        "errors": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/FieldError"},
            "description": "逐项的错误（校验、规则、导入）",
        },
        "current_version": {"type": "integer", "description": "版本冲突时服务器上的版本号"},
    },
}

OPEN311_ERRORS_SCHEMA: dict[str, Any] = {
    "title": "Open311Errors",
    "type": "array",
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}
# Every Open311 route: 400 (a bad parameter or format), 404 (an unknown format or record); a
# report (POST) also 403 (api_key) and 415 — all Open311 arrays. The request guard's refusals
# come before any route and stay problem+json (a NUL in the path or query: 422; a report's
# body over its limit: 413).
OPEN311_ERROR_STATUSES = (400, 404)
OPEN311_WRITE_STATUSES = (403, 415)
OPEN311_GUARD_STATUSES = (422,)
OPEN311_GUARD_WRITE_STATUSES = (413,)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route that can answer these statuses beyond the derived ones."""
    unknown = [s for s in statuses if s not in RESPONSES]
    if unknown:
        raise ValueError(f"no shared problem response for {unknown}")
    return {s: {"description": RESPONSES[s][1]} for s in statuses}


def _calls(dependant: Any) -> list[Any]:
    out = []
    for dep in dependant.dependencies:
        out.append(dep.call)
        out.extend(_calls(dep))
    return out


def _has_params(dependant: Any) -> bool:
    if dependant.path_params or dependant.query_params or dependant.header_params:
        return True
    if dependant.cookie_params or dependant.body_params:
        return True
    return any(_has_params(d) for d in dependant.dependencies)


# A parameter or body field naming another record (``household_id``, ``unit_code`` …): one not
# there, or not in the caller's scope, is 404 (DESIGN §8).
REFERENCE = re.compile(r"(^|_)(id|ids|code|codes)$")


def _input_names(operation: dict[str, Any], schemas: dict[str, Any]) -> list[str]:
    names = [p["name"] for p in operation.get("parameters", [])]
    for media in operation.get("requestBody", {}).get("content", {}).values():
        schema = media.get("schema", {})
        ref = schema.get("$ref", "")
        if ref:
            schema = schemas.get(ref.rsplit("/", 1)[-1], {})
        names.extend(schema.get("properties", {}))
    return names


def derived_statuses(
    route: APIRoute, method: str, operation: dict[str, Any], schemas: dict[str, Any]
) -> set[int]:
    """The problem statuses a route can answer by what it depends on and takes."""
    from gridgov.deps import get_current_user, get_scope

    calls = _calls(route.dependant)
    statuses: set[int] = set()
    # A role guard (deps.require) looks the caller up itself: it needs a credential too.
    guarded = any(getattr(c, "perm", None) is not None for c in calls)
    signed_in = guarded or any(c in (get_scope, get_current_user) for c in calls)
    if signed_in:
        statuses.add(401)
    if guarded:
        statuses.add(403)
    if route.dependant.path_params or any(
        REFERENCE.search(n) for n in _input_names(operation, schemas)
    ):
        statuses.add(404)
    if signed_in and method in WRITES:
        statuses.add(409)
    if "requestBody" in operation:
        statuses |= {413, 415, 422}
        if set(operation["requestBody"].get("content", {})) & FORMS:
            statuses.add(400)  # a multipart body that cannot be parsed
    if _has_params(route.dependant):
        statuses.add(422)
    return statuses


def with_problems(document: dict[str, Any], routes: list[tuple[str, APIRoute]]) -> dict[str, Any]:
    """The document with every operation's problem answers (see the module's docstring)."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's, never sent
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["FieldError"] = FIELD_ERROR_SCHEMA
    schemas["Open311Errors"] = OPEN311_ERRORS_SCHEMA
    shared = components.setdefault("responses", {})
    for name, description in RESPONSES.values():
        shared[name] = {
            "description": description,
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    by_operation = {
        (path, method.lower()): route for path, route in routes for method in route.methods or ()
    }
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            declared = {int(s) for s in responses if s.isdigit() and 400 <= int(s) < 500}
            for status in declared:  # FastAPI's 422, a route's own problems(…)
                del responses[str(status)]
            route = by_operation.get((path, method))
            if path.startswith(OPEN311_PREFIX):
                _open311_errors(responses, write=method.upper() in WRITES)
                continue
            statuses = declared | (
                derived_statuses(route, method.upper(), operation, schemas) if route else set()
            )
            for status in sorted(statuses):
                responses[str(status)] = {"$ref": f"#/components/responses/{RESPONSES[status][0]}"}
            _typed_media(responses)
    return document


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _typed_media(responses: dict[str, Any]) -> None:
    """Binary answers (XLSX, GPKG, zipped SHP, MVT, photos …) say they are bytes, text ones
    (CSV, KML, HTML) text: a route declares the media type, the schema follows from it."""
    for response in responses.values():
        for media_type, media in response.get("content", {}).items():
            if media.get("schema") or _is_json(media_type):
                continue
            textual = media_type.startswith("text/") or media_type.endswith(("+xml", "ndjson"))
            media["schema"] = (
                {"type": "string"} if textual else {"type": "string", "format": "binary"}
            )


def _open311_errors(responses: dict[str, Any], *, write: bool) -> None:
    content = {
        "application/json": {"schema": {"$ref": "#/components/schemas/Open311Errors"}},
        "text/xml": {"schema": {"type": "string"}},
    }
    own = OPEN311_ERROR_STATUSES + (OPEN311_WRITE_STATUSES if write else ())
    for status in own:
        responses[str(status)] = {
            "description": "Open311 错误数组（JSON 或 XML，按路径的扩展名）",
            "content": content,
        }
    guard = OPEN311_GUARD_STATUSES + (OPEN311_GUARD_WRITE_STATUSES if write else ())
    for status in guard:
        responses[str(status)] = {"$ref": f"#/components/responses/{RESPONSES[status][0]}"}
