"""The web dashboard page, ``/dashboard/``: one HTML page, its ES modules and the vendored
MapLibre GL JS and ECharts (gridgov/static), served by the app itself — no CDN, no build step.
The page talks only to the public API with the user's own token.

Every answer under ``/dashboard/`` carries the page's own Content-Security-Policy (the security
headers middleware keeps a CSP a response already has): scripts, styles, workers and requests
from this server only, plus the 天地图 tile hosts when ``GRIDGOV_DASHBOARD__TIANDITU_KEY`` is set.
The static files carry it too: MapLibre's module worker is governed by its own response's CSP.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from gridgov.config import Settings, get_settings

STATIC = Path(__file__).resolve().parent.parent / "static"
PAGE_DIR = STATIC / "dashboard"
VENDOR_DIR = STATIC / "vendor"
# The HTML is a template (the configuration goes into it), kept out of the static directory.
TEMPLATE = Path(__file__).resolve().parent / "page.html"
TIANDITU_HOSTS = "https://*.tianditu.gov.cn"

_TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".css": "text/css"}


def csp(settings: Settings | None = None) -> str:
    """Exactly what the page needs: its own scripts and module worker (``blob:`` for the
    fallback MapLibre takes when a module worker cannot start), inline styles (ECharts'
    tooltips and MapLibre's controls set style attributes), images as data:/blob: URLs
    (MapLibre's canvas images), requests to this server, and 天地图 only when configured."""
    settings = settings or get_settings()
    outside = f" {TIANDITU_HOSTS}" if settings.dashboard.tianditu_key else ""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "worker-src 'self' blob:",
            "child-src 'self' blob:",
            f"connect-src 'self'{outside}",
            f"img-src 'self' data: blob:{outside}",
            "style-src 'self' 'unsafe-inline'",
            "font-src 'self'",
            "manifest-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "object-src 'none'",
        ]
    )


def page_config(settings: Settings | None = None) -> dict[str, object]:
    """What the page reads from the server's configuration (rendered into its HTML)."""
    settings = settings or get_settings()
    return {
        "tianditu_key": settings.dashboard.tianditu_key,
        "refresh_seconds": settings.dashboard.refresh_seconds,
        "issue_due_soon_share": settings.dashboard.warning.issue_due_soon_share,
    }


def render() -> str:
    template = TEMPLATE.read_text(encoding="utf-8")
    config = html.escape(json.dumps(page_config(), ensure_ascii=False), quote=True)
    return template.replace("{{config}}", config)


async def get_page(request: Request) -> Response:
    return HTMLResponse(
        render(),
        headers={"Content-Security-Policy": csp(), "Cache-Control": "no-cache"},
    )


async def redirect_to_page(request: Request) -> Response:
    query = request.url.query
    return RedirectResponse("/dashboard/" + (f"?{query}" if query else ""), status_code=308)


class PageFiles(StaticFiles):
    """Static files with the page's CSP (``policy``); the page's own modules are revalidated on
    every load (so an upgrade shows at once), vendored libraries live under a versioned path
    for good. A ``Range`` header is ignored — the whole file, 200, as RFC 9110 allows — so
    that no request gets Starlette's plain-text 400/416 instead of the app's problem+json."""

    def __init__(
        self, directory: Path, *, immutable: bool, policy: Callable[[], str] | None = None
    ) -> None:
        super().__init__(directory=directory)
        self.immutable = immutable
        self.policy = policy or csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = scope.get("headers") or []
        if any(key == b"range" for key, _ in headers):
            scope = {**scope, "headers": [(k, v) for k, v in headers if k != b"range"]}
        await super().__call__(scope, receive, send)

    def file_response(self, full_path, stat_result, scope: Scope, status_code: int = 200):  # type: ignore[no-untyped-def]
        response = super().file_response(full_path, stat_result, scope, status_code)
        media = _TYPES.get(Path(str(full_path)).suffix)
        if media is not None:
            charset = "; charset=utf-8" if media.startswith("text/") else ""
            response.headers["content-type"] = media + charset
        response.headers["Content-Security-Policy"] = self.policy()
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if self.immutable else "no-cache"
        )
        return response


def install(app: Starlette) -> None:
    """Add the page's routes (plain Starlette routes: not part of the API's OpenAPI document)."""
    app.router.routes.extend(
        [
            Route("/dashboard", redirect_to_page, methods=["GET", "HEAD"]),
            Route("/dashboard/", get_page, methods=["GET", "HEAD"]),
            Mount("/dashboard/vendor", PageFiles(VENDOR_DIR, immutable=True)),
            Mount("/dashboard", PageFiles(PAGE_DIR, immutable=False)),
        ]
    )
