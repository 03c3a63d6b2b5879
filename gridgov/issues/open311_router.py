"""Open311 GeoReport v2 over HTTP: public, JSON or XML by the path's extension, errors as
Open311 error arrays (not problem+json: Open311 clients expect their own shape)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile

from gridgov.config import get_settings
from gridgov.deps import SessionDep
from gridgov.issues import open311

router = APIRouter(prefix="/open311/v2", tags=["open311"])

JURISDICTION = Query(None, max_length=12, description="县代码")


def _render(
    fmt: str, kind: str, call: Callable[[], Any], status: int = 200, texts: tuple = ()
) -> Response:
    try:
        fmt = open311.check_format(fmt)
        if any("\x00" in t for t in texts if t):
            raise open311.Open311Error(400, "参数中不能包含空字符（\\0）")
        payload = call()
    except open311.Open311Error as exc:
        status = exc.status
        kind, payload = "errors", [{"code": exc.status, "description": exc.description}]
        fmt = fmt if fmt in open311.FORMATS else "json"
    if fmt == "xml":
        return Response(open311.to_xml(kind, payload), status, media_type="text/xml")
    return Response(orjson.dumps(payload), status, media_type="application/json")


def error_response(path: str, status: int, description: str) -> Response:
    """An Open311 error array for a refusal made before the route ran (FastAPI's validation,
    routing): Open311 clients read this shape, in the format the path asks for."""
    fmt = "xml" if path.endswith(".xml") else "json"
    return _render(fmt, "errors", lambda: _raise(status, description))


def _raise(status: int, description: str) -> Any:
    raise open311.Open311Error(status, description)


@router.get("/discovery.{fmt}", summary="Open311 服务发现")
def get_discovery(fmt: str, request: Request) -> Response:
    # The address clients use (GRIDGOV_PUBLIC_URL behind a proxy), else this request's own.
    base = get_settings().public_url or str(request.base_url)
    return _render(fmt, "discovery", lambda: open311.discovery(base))


@router.get("/services.{fmt}", summary="Open311 服务（公开的事件分类）")
def list_services(
    fmt: str, session: SessionDep, jurisdiction_id: str | None = JURISDICTION
) -> Response:
    return _render(
        fmt,
        "services",
        lambda: open311.services(session, jurisdiction_id=jurisdiction_id),
        texts=(jurisdiction_id,),
    )


@router.get("/services/{service_code}.{fmt}", summary="Open311 服务定义")
def get_service_definition(
    service_code: str, fmt: str, session: SessionDep, jurisdiction_id: str | None = JURISDICTION
) -> Response:
    return _render(
        fmt,
        "service_definition",
        lambda: open311.service_definition(session, service_code, jurisdiction_id=jurisdiction_id),
        texts=(service_code, jurisdiction_id),
    )


@router.get("/requests.{fmt}", summary="Open311 诉求列表")
def list_requests(
    fmt: str,
    session: SessionDep,
    jurisdiction_id: str | None = JURISDICTION,
    service_request_id: str | None = Query(None, max_length=2000),
    service_code: str | None = Query(None, max_length=500),
    start_date: str | None = Query(None, max_length=40),
    end_date: str | None = Query(None, max_length=40),
    status: str | None = Query(None, max_length=20),
) -> Response:
    return _render(
        fmt,
        "requests",
        lambda: open311.requests(
            session,
            jurisdiction_id=jurisdiction_id,
            service_request_id=service_request_id,
            service_code=service_code,
            start_date=start_date,
            end_date=end_date,
            status=status,
        ),
        texts=(jurisdiction_id, service_request_id, service_code, start_date, end_date, status),
    )


@router.get("/requests/{service_request_id}.{fmt}", summary="Open311 单个诉求")
def get_request(
    service_request_id: str,
    fmt: str,
    session: SessionDep,
    jurisdiction_id: str | None = JURISDICTION,
) -> Response:
    return _render(
        fmt,
        "requests",
        lambda: open311.request(session, service_request_id, jurisdiction_id=jurisdiction_id),
        texts=(service_request_id, jurisdiction_id),
    )


def _read(files: list[UploadFile]) -> list[bytes]:
    """The media files' bytes, each read only up to one byte past the photo limit (the service
    refuses it then; the request guard has capped the whole body already)."""
    limit = get_settings().visits.attachment_max_bytes
    return [f.file.read(limit + 1) for f in files]


@router.post(
    "/requests.{fmt}",
    summary="Open311 提交诉求（需 api_key；可附照片：media 文件或 media_url）",
    # GeoReport v2 posts a urlencoded form; photos come as multipart (its media extension).
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"$ref": "#/components/schemas/Body_open311-create_request"}
                }
            }
        }
    },
)
def create_request(
    fmt: str,
    request: Request,
    session: SessionDep,
    api_key: str | None = Form(None, max_length=200),
    jurisdiction_id: str | None = Form(None, max_length=12),
    service_code: str | None = Form(None, max_length=10),
    lat: str | None = Form(None, max_length=40),
    long: str | None = Form(None, max_length=40),
    address_string: str | None = Form(None, max_length=500),
    description: str | None = Form(None, max_length=4000),
    media_url: str | None = Form(None, max_length=500, description="本服务器上已上传的照片地址"),
    media: list[UploadFile] = File(
        default_factory=list, description="照片文件（JPEG/PNG/WebP，multipart/form-data）"
    ),
    media_brackets: list[UploadFile] = File(
        default_factory=list, alias="media[]", description="同 media（PHP 式字段名）"
    ),
) -> Response:
    return _render(
        fmt,
        "requests",
        lambda: open311.create_request(
            session,
            api_key=api_key,
            jurisdiction_id=jurisdiction_id,
            service_code=service_code,
            lat=lat,
            long=long,
            description=description,
            address_string=address_string,
            media=_read([*media, *media_brackets]),
            media_url=media_url,
            here=str(request.base_url),
        ),
        status=201,
        texts=(
            api_key,
            jurisdiction_id,
            service_code,
            lat,
            long,
            address_string,
            description,
            media_url,
        ),
    )


@router.get("/tokens/{token_id}.{fmt}", summary="Open311 由 token 查诉求编号")
def get_token(
    token_id: str, fmt: str, session: SessionDep, jurisdiction_id: str | None = JURISDICTION
) -> Response:
    return _render(
        fmt,
        "requests",
        lambda: open311.token(session, token_id, jurisdiction_id=jurisdiction_id),
        texts=(token_id, jurisdiction_id),
    )
