"""API keys: made by county administrators for users in their scope, shown once, stored as a
hash; a key acts as its user (role and scope), and unknown, revoked or expired keys and keys of
deactivated users are all the same 401."""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gridgov.audit.models import AuditEntry
from gridgov.auth import api_keys
from gridgov.auth import service as auth_service
from gridgov.auth.models import ApiKey, User
from tests.auth.helpers import assert_problem
from tests.fixtures.world import COUNTY, GRID_A1, TOWN_A, VILLAGE_A, World

KEYS = "/api/v1/api-keys"
ME = "/api/v1/me"
KEY_FORMAT = re.compile(r"^ggk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$")


def make_key(client: Any, as_user: Any, username: str, **extra: Any) -> dict[str, Any]:
    r = client.post(
        KEYS,
        json={"name": f"测试 {username}", "username": username, **extra},
        headers=as_user("county"),
    )
    assert r.status_code == 201, r.text
    return r.json()


def tile_of(lon: float, lat: float, z: int) -> str:
    """``z/x/y`` of the web-mercator tile holding the point."""
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return f"{z}/{int((lon + 180) / 360 * n)}/{int(y)}"


def key_row(session: Session, key_id: int) -> ApiKey:
    session.expire_all()
    row = session.get(ApiKey, key_id)
    assert row is not None
    return row


def test_create_shows_the_secret_once_and_stores_only_its_hash(
    client, as_user, session: Session, world: World
):
    created = make_key(client, as_user, "village_a")
    secret = created["key"]
    assert KEY_FORMAT.match(secret), secret
    assert created["prefix"] == secret[4:12]
    assert (created["username"], created["role"], created["county_code"]) == (
        "village_a",
        "village_admin",
        COUNTY,
    )
    assert created["active"] is True and created["last_used_at"] is None
    row = key_row(session, created["id"])
    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(
        session.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": row.id}).one()
    )
    assert (row.user_id, row.created_by) == (world.users["village_a"], world.users["county"])

    listed = client.get(KEYS, headers=as_user("county"))
    assert listed.status_code == 200
    (item,) = [k for k in listed.json() if k["id"] == created["id"]]
    assert item["prefix"] == created["prefix"] and "key" not in item
    assert secret not in listed.text and secret[12:] not in listed.text


def test_a_key_authenticates_as_its_user_by_header_or_bearer(client, as_user, world: World):
    secret = make_key(client, as_user, "village_a")["key"]
    for headers in ({"X-API-Key": secret}, {"Authorization": f"Bearer {secret}"}):
        me = client.get(ME, headers=headers)
        assert me.status_code == 200, me.text
        assert (me.json()["username"], me.json()["role"]) == ("village_a", "village_admin")
    # The query parameter is for map clients only (OGC API, tiles): not for the JSON API.
    assert_problem(client.get(f"{ME}?api_key={secret}"), 401, "unauthenticated")
    grids = client.get(f"/ogc/collections/grids/items?api_key={secret}")
    assert grids.status_code == 200, grids.text
    assert {f["properties"]["village_code"] for f in grids.json()["features"]} == {VILLAGE_A}
    tile = client.get(f"/tiles/grids/{tile_of(111.05, 26.05, 12)}.mvt?api_key={secret}")
    assert tile.status_code == 200 and tile.content
    # Other methods never read it from the URL.
    assert client.post(f"{KEYS}?api_key={secret}", json={}).status_code == 401


def test_a_key_has_its_users_scope_and_role(client, as_user, world: World):
    secret = make_key(client, as_user, "village_a")["key"]
    headers = {"X-API-Key": secret}
    mine = client.get(f"/api/v1/households/{world.households['A1-1']}", headers=headers)
    assert mine.status_code == 200, mine.text
    assert mine.json()["id"] == world.households["A1-1"]
    assert_problem(
        client.get(f"/api/v1/households/{world.households['B1-1']}", headers=headers),
        404,
        "not_found",
    )
    assert_problem(client.get(KEYS, headers=headers), 403, "forbidden")  # a village admin's key
    # A grid member's key sees that grid only, through the OGC API as well.
    grid_key = make_key(client, as_user, "grid_a1")["key"]
    page = client.get(f"/ogc/collections/households/items?api_key={grid_key}").json()
    assert {f["properties"]["grid_code"] for f in page["features"]} == {GRID_A1}
    assert len(page["features"]) == 4


def _refused(client: Any, secret: str) -> None:
    for headers in ({"X-API-Key": secret}, {"Authorization": f"Bearer {secret}"}):
        body = assert_problem(client.get(ME, headers=headers), 401, "invalid_api_key")
        assert body["detail"] == api_keys.INVALID_MESSAGE
    r = client.get(f"/ogc/collections/grids/items?api_key={secret}")
    assert_problem(r, 401, "invalid_api_key")
    assert r.headers["www-authenticate"] == "Bearer"


def test_unknown_revoked_expired_and_deactivated_are_the_same_401(
    client, as_user, session: Session, world: World
):
    _refused(client, "ggk_00000000_" + "x" * 43)
    _refused(client, "ggk_nonsense")

    revoked = make_key(client, as_user, "village_a")
    assert client.get(ME, headers={"X-API-Key": revoked["key"]}).status_code == 200
    r = client.delete(f"{KEYS}/{revoked['id']}", headers=as_user("county"))
    assert r.status_code == 204 and r.content == b""
    _refused(client, revoked["key"])
    again = client.delete(f"{KEYS}/{revoked['id']}", headers=as_user("county"))
    assert again.status_code == 204  # revoking twice changes nothing
    (item,) = [
        k for k in client.get(KEYS, headers=as_user("county")).json() if k["id"] == revoked["id"]
    ]
    assert item["active"] is False and item["revoked_at"] is not None

    soon = datetime.now(UTC) + timedelta(days=1)
    expired = make_key(client, as_user, "village_a", expires_at=soon.isoformat())
    assert client.get(ME, headers={"X-API-Key": expired["key"]}).status_code == 200
    session.execute(
        text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"),
        {"id": expired["id"]},
    )
    session.commit()  # a refused request rolls back what was not committed
    _refused(client, expired["key"])

    inactive = make_key(client, as_user, "village_b")
    assert client.get(ME, headers={"X-API-Key": inactive["key"]}).status_code == 200
    session.execute(
        text("UPDATE users SET is_active = false WHERE id = :id"), {"id": world.users["village_b"]}
    )
    session.commit()
    _refused(client, inactive["key"])


def test_last_used_at_is_written_at_most_once_a_minute(client, as_user, session: Session):
    created = make_key(client, as_user, "village_a")
    headers = {"X-API-Key": created["key"]}

    def version() -> tuple[Any, Any]:
        # ctid: every UPDATE writes a new row version, even one that stores the same value.
        return session.execute(
            text("SELECT ctid::text, last_used_at FROM api_keys WHERE id = :id"),
            {"id": created["id"]},
        ).one()

    assert version()[1] is None
    assert client.get(ME, headers=headers).status_code == 200
    first = version()
    assert first[1] is not None
    for _ in range(3):
        assert client.get(ME, headers=headers).status_code == 200
    assert version() == first  # no write at all on the following requests
    session.execute(
        text("UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = :id"),
        {"id": created["id"]},
    )
    session.commit()
    stale = version()
    assert client.get(ME, headers=headers).status_code == 200
    fresh = version()
    assert fresh[1] > stale[1] and fresh[0] != stale[0]
    listed = client.get(KEYS, headers=as_user("county")).json()
    assert next(k for k in listed if k["id"] == created["id"])["last_used_at"] is not None


@pytest.mark.parametrize("username", ["town_a", "village_a", "grid_a1", "gis", "auditor"])
def test_only_county_admins_manage_keys(client, as_user, world: World, username: str):
    body = {"name": "x", "username": "village_a"}
    assert_problem(client.post(KEYS, json=body, headers=as_user(username)), 403, "forbidden")
    assert_problem(client.get(KEYS, headers=as_user(username)), 403, "forbidden")
    created = make_key(client, as_user, "village_a")
    r = client.delete(f"{KEYS}/{created['id']}", headers=as_user(username))
    assert_problem(r, 403, "forbidden")
    assert client.get(ME, headers={"X-API-Key": created["key"]}).status_code == 200


def test_keys_only_for_users_in_the_callers_scope(client, session: Session, world: World):
    """A county administrator bound to 甲镇 manages keys of 甲镇's users only."""
    from tests.conftest import token_for

    admin = auth_service.create_user(
        session,
        None,
        username=f"town_admin_{uuid.uuid4().hex[:6]}",
        password="Test-pass-2026",
        role="county_admin",
        display_name="甲镇县级管理员",
        unit_code=TOWN_A,
    )
    session.flush()
    headers = {"Authorization": f"Bearer {token_for(admin.id, 'county_admin')}"}
    ok = client.post(KEYS, json={"name": "西村", "username": "village_b"}, headers=headers)
    assert ok.status_code == 201, ok.text
    by_id = client.post(
        KEYS, json={"name": "村", "user_id": world.users["grid_a1"]}, headers=headers
    )
    assert by_id.status_code == 201 and by_id.json()["username"] == "grid_a1"
    # gis is bound to the county: outside 甲镇.
    for body in ({"name": "x", "username": "gis"}, {"name": "x", "user_id": world.users["gis"]}):
        assert_problem(client.post(KEYS, json=body, headers=headers), 404, "not_found")
    assert_problem(
        client.post(KEYS, json={"name": "x", "username": "nobody"}, headers=headers),
        404,
        "not_found",
    )
    foreign = api_keys.create_key(session, None, name="县 GIS", username="gis")
    session.flush()
    listed = client.get(KEYS, headers=headers).json()
    assert {k["username"] for k in listed} <= {"town_a", "village_a", "village_b", "grid_a1"}
    assert foreign.key.id not in {k["id"] for k in listed}
    r = client.delete(f"{KEYS}/{foreign.key.id}", headers=headers)
    assert_problem(r, 404, "not_found")
    assert key_row(session, foreign.key.id).revoked_at is None


def test_bad_bodies_are_422(client, as_user, world: World):
    cases = [
        {"name": "x"},  # neither username nor user_id
        {"name": "x", "username": "village_a", "user_id": world.users["village_a"]},
        {"name": "", "username": "village_a"},
        {"name": "x", "username": "village_a", "expires_at": "2030-01-01T00:00:00"},  # no offset
        {"name": "x", "username": "village_a", "secret": "mine"},
    ]
    for body in cases:
        r = client.post(KEYS, json=body, headers=as_user("county"))
        assert_problem(r, 422, "validation_error")
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    r = client.post(
        KEYS,
        json={"name": "x", "username": "village_a", "expires_at": past},
        headers=as_user("county"),
    )
    body = assert_problem(r, 422, "expires_in_past")
    assert body["errors"][0]["loc"] == ["expires_at"]


def test_creation_and_revocation_are_audited(client, as_user, session: Session, world: World):
    created = make_key(client, as_user, "village_a")
    client.delete(f"{KEYS}/{created['id']}", headers=as_user("county"))
    entries = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.entity == "api_key", AuditEntry.entity_id == str(created["id"]))
        .order_by(AuditEntry.id)
    ).all()
    assert [(e.action, e.username, e.county_code) for e in entries] == [
        ("create", "county", COUNTY),
        ("revoke", "county", COUNTY),
    ]
    create, revoke = entries
    assert create.after["prefix"] == created["prefix"]
    assert create.after["user_id"] == world.users["village_a"]
    assert revoke.before["revoked_at"] is None and revoke.after["revoked_at"] is not None
    for entry in entries:
        dumped = repr((entry.before, entry.after))
        assert "key_hash" not in dumped and created["key"][12:] not in dumped


def test_cli_create_list_revoke(engine, world: World, monkeypatch):
    """Through the real engine (commits); the key is deleted at the end."""
    from gridgov.cli import app as cli
    from gridgov.cli import console as cli_console

    name = f"cli-{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(
        cli, ["apikey", "create", "--user", "gis", "--name", name, "--expires-days", "30"]
    )
    assert result.exit_code == 0, result.output
    (secret,) = re.findall(r"ggk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", result.output)
    try:
        with Session(engine) as s:
            row = s.scalar(select(ApiKey).where(ApiKey.name == name))
            assert row is not None and row.key_hash == api_keys.hash_key(secret)
            assert row.created_by is None and row.expires_at is not None
            assert s.get(User, row.user_id).username == "gis"
            assert api_keys.user_for_api_key(s, secret).username == "gis"
            key_id = row.id
            monkeypatch.setattr(cli_console, "width", 200)  # one table row per line
        listed = CliRunner().invoke(cli, ["apikey", "list", "--county", COUNTY])
        assert listed.exit_code == 0, listed.output
        assert name in listed.output and f"ggk_{row.prefix}" in listed.output
        assert secret[12:] not in listed.output
        revoked = CliRunner().invoke(cli, ["apikey", "revoke", str(key_id)])
        assert revoked.exit_code == 0, revoked.output
        with Session(engine) as s:
            assert s.get(ApiKey, key_id).revoked_at is not None
            with pytest.raises(Exception, match="invalid_api_key"):
                api_keys.user_for_api_key(s, secret)
        missing = CliRunner().invoke(cli, ["apikey", "revoke", "999999999"])
        assert missing.exit_code == 1
        unknown = CliRunner().invoke(cli, ["apikey", "create", "--user", "nobody", "--name", "x"])
        assert unknown.exit_code == 1
    finally:
        with Session(engine) as s, s.begin():
            s.execute(text("DELETE FROM api_keys WHERE name = :n"), {"n": name})
