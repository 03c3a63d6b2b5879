"""The site's own pages: the home page ``/`` (what this server offers, with links) and the API
docs ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) — all served by the app itself, their
scripts and styles vendored under gridgov/static/vendor (``make vendor``), so they work on a
closed network: nothing is loaded from a CDN, and each page's Content-Security-Policy allows
only this server (and no inline script).

Paths follow the ASGI ``root_path``, so the pages also work behind a proxy under a prefix.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from gridgov.dashboard.page import STATIC, VENDOR_DIR, PageFiles

TEMPLATES = Path(__file__).resolve().parent
SITE_DIR = STATIC / "site"
# The vendored versions (gridgov/static/vendor/README.md); a new version is a new directory.
SWAGGER_UI = "vendor/swagger-ui-dist/5.35.0"
REDOC = "vendor/redoc/2.5.4"

_COMMON = [
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "object-src 'none'",
]


def csp(page: str) -> str:
    """What each page needs, and no more. ``home``: its stylesheets only (no script at all).
    ``swagger``: its two scripts, inline style attributes (Swagger UI sets them), images as
    data: URLs (its icons) and requests to this server ("Try it out", login). ``redoc``: the
    same, plus the search index's worker, which ReDoc starts from a ``blob:`` URL."""
    if page == "home":
        parts = ["default-src 'none'", "style-src 'self'", "img-src 'self' data:"]
    else:
        parts = [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
        ]
        if page == "redoc":
            parts += ["worker-src 'self' blob:", "child-src 'self' blob:"]
    return "; ".join(parts + _COMMON)


def _assets_csp() -> str:
    """Scripts and stylesheets need nothing of their own (no worker is loaded from here)."""
    return "default-src 'none'; frame-ancestors 'none'"


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def render(name: str, **values: str) -> str:
    """A template of this folder with ``{{key}}`` replaced by the HTML-escaped value."""
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", html.escape(value, quote=True))
    return text


def _page(name: str, policy: str, **values: str) -> Response:
    return HTMLResponse(
        render(name, **values),
        headers={"Content-Security-Policy": policy, "Cache-Control": "no-cache"},
    )


async def get_home(request: Request) -> Response:
    return _page("home.html", csp("home"), root=_root(request))


async def get_swagger_ui(request: Request) -> Response:
    root = _root(request)
    config = json.dumps({"openapi_url": f"{root}/openapi.json"}, ensure_ascii=False)
    return _page(
        "swagger.html", csp("swagger"), root=root, assets=f"{root}/site/{SWAGGER_UI}", config=config
    )


async def get_redoc(request: Request) -> Response:
    root = _root(request)
    return _page("redoc.html", csp("redoc"), root=root, assets=f"{root}/site/{REDOC}")


def install(app: Starlette) -> None:
    """The pages' routes (plain Starlette routes, not part of the OpenAPI document); the app is
    made with FastAPI's own CDN-based ``/docs`` and ``/redoc`` turned off."""
    app.router.routes.extend(
        [
            Route("/", get_home, methods=["GET", "HEAD"]),
            Route("/docs", get_swagger_ui, methods=["GET", "HEAD"]),
            Route("/redoc", get_redoc, methods=["GET", "HEAD"]),
            Mount("/site/vendor", PageFiles(VENDOR_DIR, immutable=True, policy=_assets_csp)),
            Mount("/site", PageFiles(SITE_DIR, immutable=False, policy=_assets_csp)),
        ]
    )
