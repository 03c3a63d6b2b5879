"""FastAPI dependencies: the session, the caller, their scope, and role guards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, APIKeyQuery, OAuth2PasswordBearer
from sqlalchemy.orm import Session

from gridgov.auth import api_keys as api_keys_service
from gridgov.auth import security
from gridgov.auth import service as auth_service
from gridgov.auth.cache import SCOPES
from gridgov.auth.models import User
from gridgov.auth.permissions import Perm
from gridgov.auth.scope import Scope, scope_for
from gridgov.config import get_settings
from gridgov.db import request_session
from gridgov.errors import FieldError, Forbidden, PayloadInvalid, Unauthenticated
from gridgov.geo import CoordSys
from gridgov.listing import BBox, parse_bbox

# scope="function": the transaction commits when the handler returns, before the response goes.
SessionDep = Annotated[Session, Depends(request_session, scope="function")]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="API 密钥（ggk_…）；也可写作 Authorization: Bearer ggk_…",
)
API_KEY_QUERY = "api_key"
# Documents ``?api_key=`` on the map routes (OpenAPI); the value is read by query_api_key.
api_key_query = APIKeyQuery(
    name=API_KEY_QUERY,
    auto_error=False,
    description="API 密钥（ggk_…），仅地图服务（/ogc、/tiles）的 GET 请求可放在网址中",
)


def query_api_key(request: Request) -> str | None:
    """Map clients (QGIS, GDAL) can often only edit a URL: GET requests of the OGC API and the
    tiles also take the key as ``?api_key=``. Nowhere else: a key in a URL ends up in proxy
    logs and browser histories."""
    path = request.scope["path"].removeprefix(request.scope.get("root_path", ""))
    if request.method == "GET" and (path == "/ogc" or path.startswith(("/ogc/", "/tiles/"))):
        return request.query_params.get(API_KEY_QUERY)
    return None


def get_current_user(
    session: SessionDep,
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    header_key: Annotated[str | None, Depends(api_key_header)],
) -> User:
    """The caller, by the first credential present: ``Authorization: Bearer`` (an access
    token, or an API key ``ggk_…``), ``X-API-Key``, then (map reads only) ``?api_key=``."""
    if token:
        if api_keys_service.looks_like_key(token):
            return api_keys_service.user_for_api_key(session, token)
        return auth_service.user_for_access_token(session, token)
    key = header_key or query_api_key(request)
    if key:
        return api_keys_service.user_for_api_key(session, key)
    raise Unauthenticated()


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_scope(
    session: SessionDep,
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    header_key: Annotated[str | None, Depends(api_key_header)],
) -> Scope:
    """The caller's scope. The credential is verified on every request (an access token's
    signature and expiry); which scope it stands for is remembered for a few seconds
    (``gridgov.auth.cache``), so map clients' bursts of tiles cost no query for it.

    async: a remembered scope is a check in hand, not worth a trip through the thread pool;
    only a scope to look up goes there (it queries the database)."""
    credential = token or header_key or query_api_key(request)
    if not credential:
        raise Unauthenticated()
    if api_keys_service.looks_like_key(credential):
        key = "k:" + api_keys_service.hash_key(credential)
    else:
        claims = security.decode(credential, kind="access")
        if claims is None:
            raise Unauthenticated("访问令牌无效或已过期", code="invalid_token")
        key = f"u:{claims['sub']}"
    scope = SCOPES.get(key)
    if scope is None:
        scope = await run_in_threadpool(_look_up_scope, session, request, token, header_key)
        SCOPES.put(key, scope)
    request.state.user = scope.username
    return scope


def _look_up_scope(
    session: Session, request: Request, token: str | None, header_key: str | None
) -> Scope:
    return scope_for(session, get_current_user(session, request, token, header_key))


ScopeDep = Annotated[Scope, Depends(get_scope)]


def require(perm: Perm) -> Callable[..., Any]:
    """A guard: the caller's scope, if their role has ``perm``; 403 otherwise.

    It takes get_scope's own parameters and calls it, rather than depending on it: one node
    less for FastAPI to solve on every guarded request (each costs ~2 % of a cheap read)."""

    # async: a check of a value in hand, not worth a trip through the thread pool
    async def guard(
        session: SessionDep,
        request: Request,
        token: Annotated[str | None, Depends(oauth2_scheme)],
        header_key: Annotated[str | None, Depends(api_key_header)],
    ) -> Scope:
        scope = await get_scope(session, request, token, header_key)
        if not scope.can(perm):
            raise Forbidden()
        return scope

    guard.perm = perm  # type: ignore[attr-defined]  # read by the role × route test
    guard.__name__ = f"require_{perm.name}"
    return guard


def Allowed(perm: Perm) -> type[Scope]:  # noqa: N802  (reads like a type in signatures)
    return Annotated[Scope, Depends(require(perm))]  # type: ignore[return-value]


ReadScope = Allowed(Perm.read)


# -- shared query parameters ------------------------------------------------------------------
# async: FastAPI runs a plain ``def`` dependency in its thread pool, a hop that costs more than
# parsing a query parameter.


async def get_coord_sys(
    coord_sys: Annotated[
        CoordSys,
        Query(
            description="坐标系：wgs84（默认）、gcj02（高德/腾讯）、bd09（百度）；输入与输出均按此"
        ),
    ] = CoordSys.wgs84,
) -> CoordSys:
    return coord_sys


CoordSysDep = Annotated[CoordSys, Depends(get_coord_sys)]


async def get_bbox(
    bbox: Annotated[
        str | None,
        Query(max_length=200, description="minLon,minLat,maxLon,maxLat（按 coord_sys）"),
    ] = None,
) -> BBox | None:
    return None if bbox is None else parse_bbox(bbox)


BBoxDep = Annotated[BBox | None, Depends(get_bbox)]


# The maximum is a setting (GRIDGOV_LIMITS__PAGE_MAX), so the OpenAPI document states it in
# words rather than as a fixed ``maximum``; above it is a 422 naming the field, never a shorter
# page than asked for without a word.
PAGE_LIMIT_RULE = "至多 GRIDGOV_LIMITS__PAGE_MAX 条（默认 1000），超过时 422 limit_too_large"


def checked_limit(limit: int | None, default: int) -> int:
    """``limit`` if within the page maximum, ``default`` (capped by it) if not given."""
    limits = get_settings().limits
    if limit is None:
        return min(default, limits.page_max)
    if limit > limits.page_max:
        raise PayloadInvalid(
            [FieldError(["query", "limit"], f"每页最多 {limits.page_max} 条", "limit_too_large")]
        )
    return limit


async def get_page_params(
    limit: Annotated[
        int | None, Query(ge=1, description=f"每页条数（默认 100；{PAGE_LIMIT_RULE}）")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=500, description="上一页返回的游标")] = None,
) -> tuple[int, str | None]:
    return (checked_limit(limit, get_settings().limits.page_default), cursor)


PageDep = Annotated[tuple[int, str | None], Depends(get_page_params)]


def next_url(request: Request) -> Callable[[str], str]:
    return lambda cursor: str(request.url.include_query_params(cursor=cursor))


def json_bytes(body: bytes, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type="application/json")
