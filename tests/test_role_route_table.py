"""Every route × every role, generated from the app's own route list.

A new route is covered the moment it is added: it must be public (listed below) or carry a role
guard made by ``gridgov.deps.require``; then each role either has the guard's permission (never
401/403) or gets 403 ``forbidden``, and an anonymous caller always gets 401.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from gridgov.app import create_app, route_table
from gridgov.auth.permissions import ROLE_PERMS, Perm, Role
from gridgov.deps import Allowed, require
from tests.conftest import bind_session, token_for
from tests.fixtures.world import GRID_A1, VILLAGE_A, World

# Reachable without a token; nothing else is.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/refresh"),
    # Open311 GeoReport v2: public reads; reports carry an api_key in the form instead.
    ("GET", "/open311/v2/discovery.{fmt}"),
    ("GET", "/open311/v2/services.{fmt}"),
    ("GET", "/open311/v2/services/{service_code}.{fmt}"),
    ("GET", "/open311/v2/requests.{fmt}"),
    ("GET", "/open311/v2/requests/{service_request_id}.{fmt}"),
    ("POST", "/open311/v2/requests.{fmt}"),
    ("GET", "/open311/v2/tokens/{token_id}.{fmt}"),
}
# Served by FastAPI itself (not APIRoutes): the OpenAPI document and the docs pages.
PUBLIC_DOCS = ("/openapi.json", "/docs")

# One world user per role; all of them have 东村 / 东村-001 in scope.
USER_BY_ROLE = {
    Role.grid_member: "grid_a1",
    Role.village_admin: "village_a",
    Role.township_admin: "town_a",
    Role.county_admin: "county",
    Role.gis_editor: "gis",
    Role.auditor: "auditor",
}


def _endpoints() -> list[tuple[str, str, APIRoute]]:
    out = []
    for path, route in route_table(create_app()):
        for method in sorted(route.methods or ()):
            out.append((method, path, route))
    return out


ENDPOINTS = _endpoints()


def guard_perms(dependant: Dependant) -> set[Perm]:
    """The permissions of every ``require(perm)`` guard anywhere in the dependency tree."""
    found: set[Perm] = set()
    for dep in dependant.dependencies:
        perm = getattr(dep.call, "perm", None)
        if perm is not None:
            found.add(perm)
        found |= guard_perms(dep)
    return found


GUARDED = [(m, p, r) for m, p, r in ENDPOINTS if (m, p) not in PUBLIC]


def _id(endpoint: tuple[str, str, Any]) -> str:
    return f"{endpoint[0]} {endpoint[1]}"


def path_values(world: World) -> dict[str, str]:
    """Path parameters filled with things that exist and lie in every world user's scope."""
    return {
        "code": VILLAGE_A,
        "unit_code": GRID_A1,  # a grid: in every world user's scope
        "grid_id": str(world.grids[GRID_A1]),
        "household_id": str(world.households["A1-1"]),
        "member_id": str(world.members["党员甲"]),
        "org_id": str(world.orgs[VILLAGE_A]),
        "job_id": str(uuid.uuid4()),  # no such job: a permitted caller gets 404
        "contact_id": "999999999",  # no such contact: a permitted caller gets 404
        "visit_id": "999999999",  # no such visit: a permitted caller gets 404
        "attachment_id": str(uuid.uuid4()),  # no such photo: 404 (GET) or 415 (PUT of "{}")
        "collection_id": "grids",
        "feature_id": str(world.grids[GRID_A1]),
        "layer": "grids",
        "check": "grid_gaps",
        "z": "0",
        "x": "0",
        "y": "0",
        "issue_id": "999999999",  # no such issue: a permitted caller gets 404
        "fmt": "json",
        "service_code": "0201",
        "service_request_id": "999999999",
        "token_id": str(uuid.uuid4()),
        "notification_id": "999999999",  # no such reminder: any signed-in caller gets 404
        "key_id": "999999999",  # no such API key: a permitted caller gets 404
    }


def fill(path: str, route: APIRoute, world: World) -> str:
    values = path_values(world)
    for param in route.dependant.path_params:
        assert param.name in values, (
            f"{path}: no test value for path parameter {param.name!r}; add one to path_values()"
        )
        path = path.replace("{" + param.name + "}", values[param.name])
    return path


def call(client: Any, method: str, url: str, headers: dict[str, str]) -> Any:
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return client.request(method, url, headers=headers, **body)


# -- the table is complete ------------------------------------------------------------------------


def test_public_set_matches_real_routes() -> None:
    """A stale PUBLIC entry would silently stop protecting nothing; keep the list exact."""
    existing = {(m, p) for m, p, _ in ENDPOINTS}
    assert existing >= PUBLIC, PUBLIC - existing


def test_every_role_has_a_world_user() -> None:
    assert set(USER_BY_ROLE) == set(Role)
    assert set(ROLE_PERMS) == set(Role)


@pytest.mark.parametrize("endpoint", GUARDED, ids=_id)
def test_route_has_role_guard(endpoint: tuple[str, str, APIRoute]) -> None:
    method, path, route = endpoint
    perms = guard_perms(route.dependant)
    assert perms, f"{method} {path} is neither public nor guarded by deps.require(perm)"
    assert len(perms) == 1, f"{method} {path} has several guards: {perms}"


# A route with no guard and one whose guard hides one level down, for the walker's own test.
_probe = APIRouter()


def _guarded_helper(scope: Allowed(Perm.audit_read)) -> None: ...


@_probe.get("/bare")
def _bare() -> None: ...


@_probe.get("/nested")
def _nested(_: Annotated[None, Depends(_guarded_helper)]) -> None: ...


def test_guard_walker_sees_nested_guards_and_missing_ones() -> None:
    """The completeness check above can fail: a bare route has no guard, a nested one is found."""
    routes = {r.path: r for r in _probe.routes if isinstance(r, APIRoute)}
    assert guard_perms(routes["/bare"].dependant) == set()
    assert guard_perms(routes["/nested"].dependant) == {Perm.audit_read}
    assert require(Perm.read).perm is Perm.read


def test_docs_are_public(client: Any) -> None:
    for path in PUBLIC_DOCS:
        assert client.get(path).status_code == 200, path


# -- who gets in ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_app() -> FastAPI:
    # Building the app costs ~0.1 s; hundreds of cases share one and only swap the session.
    return create_app()


@pytest.fixture
def app(shared_app: FastAPI, session: Session) -> Iterator[FastAPI]:
    """Overrides conftest's ``app``: the shared app bound to this test's rolled-back session."""

    bind_session(shared_app, session)
    yield shared_app
    shared_app.dependency_overrides.clear()


@pytest.fixture
def caller(client: Any, world: World) -> Callable[[str, str, APIRoute, Role | None], Any]:
    def run(method: str, path: str, route: APIRoute, role: Role | None) -> Any:
        headers = {}
        if role is not None:
            username = USER_BY_ROLE[role]
            headers["Authorization"] = f"Bearer {token_for(world.users[username], role.value)}"
        return call(client, method, fill(path, route, world), headers)

    return run


def _cases() -> Iterator[Any]:
    for method, path, route in GUARDED:
        for role in Role:
            yield pytest.param(method, path, route, role, id=f"{method} {path} as {role.value}")


@pytest.mark.parametrize(("method", "path", "route", "role"), list(_cases()))
def test_role_on_route(caller: Any, method: str, path: str, route: APIRoute, role: Role) -> None:
    (perm,) = guard_perms(route.dependant) or {None}
    assert perm is not None, f"{method} {path} has no guard"
    response = caller(method, path, route, role)
    if perm in ROLE_PERMS[role]:
        assert response.status_code not in (401, 403), (response.status_code, response.text)
        assert response.status_code < 500, response.text
    else:
        assert response.status_code == 403, (response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "forbidden"


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e[:2] in PUBLIC], ids=_id)
def test_public_routes_need_no_token(caller: Any, endpoint: tuple[str, str, APIRoute]) -> None:
    method, path, route = endpoint
    response = caller(method, path, route, None)
    assert response.status_code < 500 and response.status_code not in (401, 403), response.text


@pytest.mark.parametrize("endpoint", GUARDED, ids=_id)
def test_anonymous_gets_401(caller: Any, endpoint: tuple[str, str, APIRoute]) -> None:
    method, path, route = endpoint
    response = caller(method, path, route, None)
    assert response.status_code == 401, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers.get("www-authenticate") == "Bearer"
