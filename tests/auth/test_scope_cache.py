"""The per-process memory of callers' scopes (gridgov/auth/cache.py): it saves the queries,
never the credential check, and forgets on every committed change to users, keys or areas."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, text

from gridgov.auth import api_keys
from gridgov.auth.cache import SCOPES
from gridgov.auth.models import User
from gridgov.config import get_settings
from gridgov.hierarchy.models import AdminUnit
from tests.conftest import token_for
from tests.fixtures.world import VILLAGE_A, VILLAGE_B, World

ME = "/api/v1/me"
UNITS = "/api/v1/units"


@pytest.fixture
def remembering(monkeypatch):
    """The memory on (the suite runs with it off), empty before and after."""
    monkeypatch.setattr(get_settings().auth, "scope_cache_seconds", 30.0)
    SCOPES.clear()
    yield SCOPES
    SCOPES.clear()


def village_codes(client, headers) -> set[str]:
    r = client.get(UNITS, params={"level": "village"}, headers=headers)
    assert r.status_code == 200, r.text
    return {u["code"] for u in r.json()["items"]}


def queries_during(session, call):
    """The SQL statements ``call`` runs on the test session's connection."""
    from sqlalchemy import event

    seen: list[str] = []

    def note(conn, cursor, statement, *args):
        seen.append(statement)

    connection = session.connection()
    event.listen(connection, "before_cursor_execute", note)
    try:
        call()
    finally:
        event.remove(connection, "before_cursor_execute", note)
    return seen


def test_a_remembered_scope_saves_the_user_and_subtree_queries(
    client, session, world: World, remembering
):
    headers = {"Authorization": f"Bearer {token_for(world.users['village_a'], 'village_admin')}"}
    first = queries_during(session, lambda: village_codes(client, headers))
    assert len(remembering) == 1
    again = queries_during(session, lambda: village_codes(client, headers))
    assert any("WITH RECURSIVE" in q for q in first)
    assert not any("WITH RECURSIVE" in q for q in again)  # the subtree query is not repeated
    assert len(again) < len(first)
    assert village_codes(client, headers) == {VILLAGE_A}


def test_the_token_is_still_checked_on_every_request(client, world: World, remembering):
    user_id = world.users["village_a"]
    good = {"Authorization": f"Bearer {token_for(user_id, 'village_admin')}"}
    assert client.get(ME, headers=good).status_code == 200
    expired = {"Authorization": f"Bearer {token_for(user_id, 'village_admin', minutes=-1)}"}
    r = client.get(UNITS, headers=expired)
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"
    forged = {"Authorization": good["Authorization"][:-4] + "AAAA"}
    assert client.get(UNITS, headers=forged).status_code == 401


def test_a_committed_user_change_is_seen_at_once(client, session, world: World, remembering):
    headers = {"Authorization": f"Bearer {token_for(world.users['village_a'], 'village_admin')}"}
    assert village_codes(client, headers) == {VILLAGE_A}
    user = session.get(User, world.users["village_a"])
    user.unit_id = session.scalar(select(AdminUnit.id).where(AdminUnit.code == VILLAGE_B))
    session.commit()
    assert len(remembering) == 0
    assert village_codes(client, headers) == {VILLAGE_B}
    user.is_active = False
    session.commit()
    assert client.get(UNITS, headers=headers).status_code == 401


def test_a_revoked_api_key_stops_at_once(client, session, world: World, remembering):
    created = api_keys.create_key(session, None, name="QGIS", username="village_a")
    session.commit()
    headers = {"X-API-Key": created.secret}
    assert village_codes(client, headers) == {VILLAGE_A}
    assert len(remembering) == 1
    api_keys.revoke_key(session, None, created.key.id)
    session.commit()
    assert client.get(UNITS, headers=headers).status_code == 401


def test_a_rolled_back_change_forgets_nothing_and_the_memory_expires(
    client, session, world: World, remembering, monkeypatch
):
    headers = {"Authorization": f"Bearer {token_for(world.users['village_a'], 'village_admin')}"}
    village_codes(client, headers)
    with session.begin_nested():
        session.get(User, world.users["village_a"]).display_name = "改名"
        session.flush()
        session.rollback()
    assert len(remembering) == 1
    # A change made elsewhere (another process, plain SQL) is seen once the entry expires.
    session.execute(
        text(
            "UPDATE users SET unit_id = (SELECT id FROM admin_units WHERE code = :c) WHERE id = :u"
        ),
        {"c": VILLAGE_B, "u": world.users["village_a"]},
    )
    assert village_codes(client, headers) == {VILLAGE_A}  # still remembered
    monkeypatch.setattr(get_settings().auth, "scope_cache_seconds", 0.05)
    time.sleep(0.1)
    assert village_codes(client, headers) == {VILLAGE_B}


def test_dashboard_nodes_are_remembered_and_forgotten_with_the_scopes(
    client, session, world: World, remembering
):
    """The dashboard remembers units by code (gridgov.dashboard.service.NODES) in the same
    memory: a committed rename is shown at once, and scope is still checked every time."""
    from gridgov.dashboard.service import NODES

    county = {"Authorization": f"Bearer {token_for(world.users['county'], 'county_admin')}"}
    village = {"Authorization": f"Bearer {token_for(world.users['village_a'], 'village_admin')}"}
    path = f"/api/v1/dashboard/{VILLAGE_B}/summary"
    first = client.get(path, headers=county)
    assert first.status_code == 200, first.text
    assert NODES.get(VILLAGE_B) is not None
    again = queries_during(session, lambda: client.get(path, headers=county))
    assert not any("FROM admin_units WHERE code" in q for q in again)
    # Remembered, yet another village's admin still gets 404 for it.
    r = client.get(path, headers=village)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    unit = session.scalar(select(AdminUnit).where(AdminUnit.code == VILLAGE_B))
    unit.name = "新名村"
    session.commit()
    assert NODES.get(VILLAGE_B) is None
    assert client.get(path, headers=county).json()["unit"]["name"] == "新名村"
