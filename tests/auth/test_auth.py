"""Login, tokens, refresh rotation, rate limit, who-am-I and user creation."""

from __future__ import annotations

import uuid

import pytest
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gridgov.audit.models import AuditEntry
from gridgov.auth import security
from gridgov.auth.models import LoginAttempt, User
from gridgov.auth.permissions import ROLE_PERMS, Role
from gridgov.config import get_settings
from gridgov.hierarchy import service as hierarchy_service
from gridgov.hierarchy.rules import AreaRow
from tests.auth.helpers import assert_problem
from tests.conftest import token_for
from tests.fixtures.world import (
    COUNTY,
    GRID_A1,
    PASSWORD,
    TOWN_A,
    VILLAGE_A,
    VILLAGE_B,
    World,
)

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/me"
USERS = "/api/v1/users"
OTHER_COUNTY = "439903"


def login(client, username: str, password: str = PASSWORD):
    return client.post(TOKEN, data={"username": username, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- login ------------------------------------------------------------------------------------


def test_password_login_returns_access_and_refresh_tokens(client, world: World):
    r = login(client, "village_a")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == get_settings().auth.access_token_minutes * 60
    access = security.decode(body["access_token"], kind="access")
    refresh = security.decode(body["refresh_token"], kind="refresh")
    assert access and access["sub"] == str(world.users["village_a"])
    assert refresh and refresh["sub"] == str(world.users["village_a"])
    # The access token works, the refresh token is not an access token.
    assert client.get(ME, headers=bearer(body["access_token"])).status_code == 200
    r = client.get(ME, headers=bearer(body["refresh_token"]))
    assert_problem(r, 401, "invalid_token")


@pytest.mark.parametrize(
    ("username", "password"),
    [("village_a", "wrong-password"), ("nobody-here", PASSWORD), ("village_a", "")],
)
def test_wrong_credentials_are_401(client, username, password):
    r = login(client, username, password)
    if password == "":
        assert_problem(r, 422, "validation_error")  # an empty form field is malformed input
        return
    body = assert_problem(r, 401, "invalid_credentials")
    assert r.headers["www-authenticate"] == "Bearer"
    assert "access_token" not in body


def test_failed_login_is_recorded(client, session: Session):
    login(client, "village_b", "wrong-password")
    attempts = session.scalars(select(LoginAttempt).where(LoginAttempt.username == "village_b"))
    assert [a.success for a in attempts] == [False]


def test_login_rate_limit(client, session: Session):
    limit = get_settings().auth.login_max_failures
    for _ in range(limit):
        assert_problem(login(client, "village_b", "wrong-password"), 401, "invalid_credentials")
    # Even the right password is refused now: the failures were committed despite the 401s.
    r = login(client, "village_b")
    assert_problem(r, 429, "rate_limited")
    # The window runs from the first failure: a slow machine may have spent a second already.
    window = get_settings().auth.login_window_seconds
    assert window - 10 < int(r.headers["retry-after"]) <= window
    # Other users are not locked out by someone else's failures.
    assert login(client, "village_a").status_code == 200


def test_failed_logins_commit_through_the_real_session(engine):
    """The app's own request_session (no test override): a failed login's 401 still commits."""
    from fastapi.testclient import TestClient

    from gridgov.app import create_app

    ghost = f"ghost_{uuid.uuid4().hex[:10]}"  # committed to the run database, left there
    limit = get_settings().auth.login_max_failures
    # Its own client address, so these committed failures count against no other test.
    with TestClient(create_app(), client=(f"10.{uuid.uuid4().int % 250}.0.1", 50000)) as c:
        for _ in range(limit):
            assert_problem(login(c, ghost, "wrong-password"), 401, "invalid_credentials")
        assert_problem(login(c, ghost, "wrong-password"), 429, "rate_limited")
    with Session(engine) as s:
        attempts = s.scalars(select(LoginAttempt).where(LoginAttempt.username == ghost)).all()
        assert len(attempts) == limit and not any(a.success for a in attempts)


def test_inactive_user_cannot_log_in(client, session: Session, world: World):
    user = session.get(User, world.users["village_b"])
    user.is_active = False
    session.flush()
    assert_problem(login(client, "village_b"), 401, "invalid_credentials")
    token = token_for(world.users["village_b"], "village_admin")
    assert_problem(client.get(ME, headers=bearer(token)), 401, "invalid_token")


def test_password_is_argon2_hashed(session: Session, world: World):
    user = session.get(User, world.users["county"])
    assert user.password_hash.startswith("$argon2")
    assert PASSWORD not in user.password_hash
    assert security.verify_password(user.password_hash, PASSWORD)
    assert not security.verify_password(user.password_hash, PASSWORD + "x")


# -- tokens -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer ",
        "Bearer not-a-jwt",
        "Basic dXNlcjpwYXNz",
    ],
)
def test_missing_or_garbage_token_is_401(client, header):
    headers = {"Authorization": header} if header is not None else {}
    r = client.get(ME, headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["code"] in ("unauthenticated", "invalid_token")


def test_expired_access_token_is_401(client, world: World):
    token = token_for(world.users["county"], "county_admin", minutes=-1)
    assert_problem(client.get(ME, headers=bearer(token)), 401, "invalid_token")


def test_token_signed_with_other_key_is_401(client, world: World):
    import jwt

    forged = jwt.encode(
        {"sub": str(world.users["county"]), "typ": "access", "role": "county_admin"},
        "another-secret-that-is-long-enough-0123456789",
        algorithm="HS256",
    )
    assert_problem(client.get(ME, headers=bearer(forged)), 401, "invalid_token")


def test_role_comes_from_the_user_not_the_token(client, world: World):
    """A token claiming county_admin for a village admin grants nothing more."""
    token = token_for(world.users["village_a"], "county_admin")
    r = client.get(ME, headers=bearer(token))
    assert r.json()["role"] == "village_admin"
    assert_problem(client.get(USERS, headers=bearer(token)), 403, "forbidden")


def test_refresh_rotates_and_reuse_revokes_the_family(client):
    first = login(client, "grid_a1").json()
    r = client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert client.get(ME, headers=bearer(second["access_token"])).status_code == 200

    # The old one again: refused, and the whole family with it.
    r = client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert_problem(r, 401, "refresh_token_reused")
    r = client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 401, r.text
    # A fresh login starts a new family that works.
    third = login(client, "grid_a1").json()
    assert client.post(REFRESH, json={"refresh_token": third["refresh_token"]}).status_code == 200


def test_refresh_with_access_token_or_garbage_is_401(client):
    pair = login(client, "grid_a1").json()
    r = client.post(REFRESH, json={"refresh_token": pair["access_token"]})
    assert_problem(r, 401, "invalid_refresh_token")
    r = client.post(REFRESH, json={"refresh_token": "x" * 40})
    assert_problem(r, 401, "invalid_refresh_token")


# -- who am I ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "role", "unit_code", "grid_code", "units", "villages"),
    [
        ("county", "county_admin", COUNTY, None, 6, 3),
        ("town_a", "township_admin", TOWN_A, None, 3, 2),
        ("village_a", "village_admin", VILLAGE_A, None, 1, 1),
        ("grid_a1", "grid_member", None, GRID_A1, 1, 0),
        ("auditor", "auditor", COUNTY, None, 6, 3),
    ],
)
def test_me(client, as_user, world, username, role, unit_code, grid_code, units, villages):
    r = client.get(ME, headers=as_user(username))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["id"] == world.users[username]
    assert me["username"] == username
    assert me["role"] == role and me["role_label"]
    assert me["unit_code"] == unit_code and me["grid_code"] == grid_code
    assert me["county_code"] == COUNTY
    assert (me["unit_count"], me["village_count"]) == (units, villages)
    assert set(me["permissions"]) == {p.value for p in ROLE_PERMS[Role(role)]}


# -- creating users ---------------------------------------------------------------------------


def test_cli_user_create(engine, world: World):
    """Through the real engine: this commits to the run database (a unique name, left there)."""
    from gridgov.cli import app as cli

    username = f"cli_{uuid.uuid4().hex[:10]}"
    result = CliRunner().invoke(
        cli,
        [
            "user",
            "create",
            username,
            "--role",
            "village_admin",
            "--unit",
            VILLAGE_B,
            "--password",
            "Cli-pass-2026",
        ],
    )
    assert result.exit_code == 0, result.output
    with Session(engine) as s:
        user = s.scalar(select(User).where(User.username == username))
        assert user is not None
        assert (user.role, user.unit_id, user.grid_id) == (
            "village_admin",
            world.units[VILLAGE_B],
            None,
        )
        assert user.password_hash.startswith("$argon2")
        assert security.verify_password(user.password_hash, "Cli-pass-2026")
        entry = s.scalar(
            select(AuditEntry).where(
                AuditEntry.entity == "user", AuditEntry.entity_id == str(user.id)
            )
        )
        assert entry is not None and entry.action == "create" and entry.username == "system"
        assert "password_hash" not in (entry.after or {})


def test_cli_user_create_refuses_bad_input(engine, world: World):
    from gridgov.cli import app as cli

    result = CliRunner().invoke(
        cli,
        ["user", "create", "county", "--role", "auditor", "--unit", COUNTY, "--password", "x" * 12],
    )
    assert result.exit_code == 1  # the name is taken
    result = CliRunner().invoke(
        cli,
        [
            "user",
            "create",
            f"cli_{uuid.uuid4().hex[:10]}",
            "--role",
            "grid_member",
            "--unit",
            VILLAGE_A,
            "--password",
            "x" * 12,
        ],
    )
    assert result.exit_code == 1  # a grid member must be bound to a grid


@pytest.fixture
def other_county(session: Session) -> str:
    """A second county (in this test's transaction only), outside every world user's scope."""
    box = shapely.MultiPolygon([shapely.box(111.2, 26.0, 111.4, 26.2)])
    written = hierarchy_service.write_units(
        session,
        None,
        [AreaRow(0, OTHER_COUNTY, "邻县", box)],
        level="county",
        county_code=OTHER_COUNTY,
    )
    assert not written.errors, written.errors
    return OTHER_COUNTY


def user_body(**extra):
    return {
        "username": f"u_{uuid.uuid4().hex[:10]}",
        "display_name": "新用户",
        "password": "New-pass-2026",
        **extra,
    }


def test_county_admin_creates_user(client, as_user, session: Session, world: World):
    body = user_body(role="grid_member", grid_code=GRID_A1)
    r = client.post(USERS, headers=as_user("county"), json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["role"] == "grid_member" and created["grid_id"] == world.grids[GRID_A1]
    assert "password" not in created and "password_hash" not in created
    user = session.get(User, created["id"])
    assert user.password_hash.startswith("$argon2")
    # The new user can log in and sees the grid it is bound to.
    pair = login(client, body["username"], body["password"]).json()
    me = client.get(ME, headers=bearer(pair["access_token"])).json()
    assert me["grid_code"] == GRID_A1
    listed = client.get(USERS, headers=as_user("county")).json()
    assert created["id"] in {u["id"] for u in listed}


@pytest.mark.parametrize("username", ["village_a", "town_a", "grid_a1", "gis", "auditor"])
def test_only_county_admin_creates_users(client, as_user, username):
    body = user_body(role="village_admin", unit_code=VILLAGE_A)
    assert_problem(client.post(USERS, headers=as_user(username), json=body), 403, "forbidden")


def test_user_bound_outside_scope_is_404(client, as_user, other_county):
    body = user_body(role="village_admin", unit_code=other_county)
    assert_problem(client.post(USERS, headers=as_user("county"), json=body), 404, "not_found")


def test_user_create_rules(client, as_user):
    headers = as_user("county")
    r = client.post(USERS, headers=headers, json=user_body(role="grid_member", unit_code=VILLAGE_A))
    assert_problem(r, 422, "binding_mismatch")
    r = client.post(USERS, headers=headers, json=user_body(role="auditor", password="short"))
    assert_problem(r, 422, "validation_error")
    r = client.post(
        USERS, headers=headers, json=user_body(role="auditor", unit_code=COUNTY, username="county")
    )
    assert_problem(r, 409, "username_taken")
