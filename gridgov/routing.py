"""The app's route table, flat.

FastAPI (0.163) keeps an included router as a nested branch and matches a request through
each branch twice (once to find it, again to handle it), which made finding a route the
largest single cost of a dashboard read (~16 % of a worker's CPU, py-spy). ``include_flat``
registers each route of a router on the app itself, through the public ``add_api_route``,
with everything the route was declared with: one linear pass over plain routes, as Starlette
does. The OpenAPI document is the same (tests/test_schemas_fresh.py compares it with
schemas/openapi.json).
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute


@cache
def _route_options() -> tuple[str, ...]:
    """What ``add_api_route`` accepts besides path and endpoint — each one an attribute of
    the APIRoute it builds, so a route can be registered again exactly as it was declared."""
    names = inspect.signature(APIRouter.add_api_route).parameters
    return tuple(n for n in names if n not in ("self", "path", "endpoint"))


def include_flat(app: FastAPI, router: APIRouter, prefix: str = "") -> None:
    """Every route of ``router`` (its own prefix, tags and dependencies already applied by
    FastAPI when the route was declared) on ``app``, under ``prefix``."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r}: only API routes are included flat")
        options: dict[str, Any] = {
            name: getattr(route, name) for name in _route_options() if hasattr(route, name)
        }
        app.router.add_api_route(prefix + route.path, route.endpoint, **options)
