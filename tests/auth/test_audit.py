"""The audit log: every write leaves who/what/before/after; the table is append-only; auditors
read their own county's log; reading personal information in clear is itself recorded."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gridgov.audit import service as audit
from gridgov.audit.models import AuditEntry
from tests.auth.helpers import assert_problem
from tests.fixtures.world import COUNTY, VILLAGE_A, VILLAGE_C, World

API = "/api/v1"
FREE = (111.15, 26.0, 111.2, 26.1)  # the part of 南村 no grid covers


def polygon(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def entries(session: Session, entity: str, entity_id: object) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id))
            .order_by(AuditEntry.id)
        )
    )


def assert_who(entry: AuditEntry, world: World, username: str, role: str) -> None:
    assert entry.user_id == world.users[username]
    assert (entry.username, entry.role) == (username, role)
    assert entry.county_code == COUNTY
    assert entry.at is not None
    assert entry.request_id  # ties the entry to the request's log lines


# -- every write is recorded --------------------------------------------------------------------


def test_grid_create_and_update_are_audited(client, as_user, session, world):
    headers = as_user("county")
    r = client.post(
        f"{API}/grids",
        headers=headers,
        json={"code": VILLAGE_C + "002", "name": "南村第二网格", "geometry": polygon(*FREE)},
    )
    assert r.status_code == 201, r.text
    grid_id = r.json()["id"]
    r = client.patch(f"{API}/grids/{grid_id}", headers=headers, json={"name": "南村东网格"})
    assert r.status_code == 200, r.text

    created, updated = entries(session, "grid", grid_id)
    assert_who(created, world, "county", "county_admin")
    assert created.action == "create" and created.before is None
    assert created.after["code"] == VILLAGE_C + "002"
    assert created.after["name"] == "南村第二网格"
    assert created.after["geom"]  # the boundary is kept too
    assert updated.action == "update"
    assert updated.before["name"] == "南村第二网格" and updated.after["name"] == "南村东网格"
    assert updated.after["version"] == updated.before["version"] + 1


def test_household_create_update_remove_are_audited(client, as_user, session, world):
    headers = as_user("village_a")
    r = client.post(
        f"{API}/households",
        headers=headers,
        json={
            "head_name": "孙丽",
            "phone": "13700001111",
            "location": {"type": "Point", "coordinates": [111.03, 26.03]},
        },
    )
    assert r.status_code == 201, r.text
    hid = r.json()["id"]
    r = client.patch(
        f"{API}/households/{hid}", headers=headers, json={"size": 4, "tags": ["低保户"]}
    )
    assert r.status_code == 200, r.text
    r = client.post(f"{API}/households/{hid}/remove", headers=headers, json={"reason": "迁出"})
    assert r.status_code == 204, r.text

    created, updated, removed = entries(session, "household", hid)
    for entry in (created, updated, removed):
        assert_who(entry, world, "village_a", "village_admin")
    assert created.action == "create" and created.after["head_name"] == "孙丽"
    assert created.after["village_id"] == world.units[VILLAGE_A]
    assert updated.action == "update"
    assert (updated.before["size"], updated.after["size"]) == (1, 4)
    assert (updated.before["tags"], updated.after["tags"]) == ([], ["低保户"])
    assert removed.action == "remove"
    assert removed.before["removed_at"] is None and removed.after["removed_reason"] == "迁出"


def test_party_org_and_member_writes_are_audited(client, as_user, session, world):
    headers = as_user("town_a")
    r = client.post(
        f"{API}/party-orgs",
        headers=headers,
        json={"unit_code": VILLAGE_A, "name": "东村第二党支部", "kind": "branch"},
    )
    assert r.status_code == 201, r.text
    org_id = r.json()["id"]
    r = client.patch(
        f"{API}/party-orgs/{org_id}", headers=headers, json={"secretary_name": "钱书记"}
    )
    assert r.status_code == 200, r.text
    r = client.post(
        f"{API}/members",
        headers=headers,
        json={"name": "党员丙", "party_org_id": org_id, "phone": "13600002222"},
    )
    assert r.status_code == 201, r.text
    member_id = r.json()["id"]
    r = client.patch(f"{API}/members/{member_id}", headers=headers, json={"capacity": 8})
    assert r.status_code == 200, r.text
    r = client.post(f"{API}/members/{member_id}/leave", headers=headers, json={"reason": "转出"})
    assert r.status_code == 204, r.text

    org_created, org_updated = entries(session, "party_org", org_id)
    assert_who(org_created, world, "town_a", "township_admin")
    assert org_created.action == "create" and org_created.after["name"] == "东村第二党支部"
    assert org_updated.before["secretary_name"] is None
    assert org_updated.after["secretary_name"] == "钱书记"

    m_created, m_updated, m_left = entries(session, "party_member", member_id)
    assert_who(m_created, world, "town_a", "township_admin")
    assert m_created.after["party_org_id"] == org_id
    assert (m_updated.before["capacity"], m_updated.after["capacity"]) == (None, 8)
    assert m_left.action == "leave" and m_left.after["left_reason"] == "转出"

    # A second org with no members can be deleted: the row goes, the audit keeps it.
    r = client.post(
        f"{API}/party-orgs",
        headers=headers,
        json={"unit_code": VILLAGE_A, "name": "临时党支部", "kind": "branch"},
    )
    temp_id = r.json()["id"]
    assert client.delete(f"{API}/party-orgs/{temp_id}", headers=headers).status_code == 204
    deleted = entries(session, "party_org", temp_id)[-1]
    assert deleted.action == "delete" and deleted.before["name"] == "临时党支部"
    assert deleted.after is None


def test_failed_write_leaves_no_audit_entry(client, as_user, session):
    before = session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1))
    r = client.post(
        f"{API}/grids",
        headers=as_user("county"),
        json={
            "code": VILLAGE_C + "002",
            "name": "越界网格",
            "geometry": polygon(111.3, 26, 111.4, 26.1),
        },
    )
    assert r.status_code in (404, 422), r.text
    after = session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1))
    assert after == before


def test_user_creation_never_copies_the_password(client, as_user, session):
    r = client.post(
        f"{API}/users",
        headers=as_user("county"),
        json={
            "username": "audited_user",
            "display_name": "审计对象",
            "password": "Secret-pass-2026",
            "role": "auditor",
            "unit_code": COUNTY,
        },
    )
    assert r.status_code == 201, r.text
    (entry,) = entries(session, "user", r.json()["id"])
    assert entry.username == "county"
    assert "password_hash" not in entry.after
    assert "Secret-pass-2026" not in str(entry.after)


# -- append-only at the database ------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET action = 'tampered' WHERE id = :id",
        "DELETE FROM audit_log WHERE id = :id",
        "TRUNCATE audit_log",
    ],
)
def test_audit_log_refuses_change(session: Session, statement: str):
    audit.record(session, None, action="test", entity="probe", entity_id=1, county_code=COUNTY)
    session.flush()
    entry_id = session.scalar(select(AuditEntry.id).where(AuditEntry.entity == "probe"))
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text(statement), {"id": entry_id})
    # The outer transaction survives, and the row is untouched.
    session.expire_all()
    assert session.get(AuditEntry, entry_id).action == "test"


# -- reading the log ----------------------------------------------------------------------------


@pytest.fixture
def foreign_entry(session: Session) -> int:
    """An entry of another county, which this county's auditors must never see."""
    audit.record(
        session, None, action="create", entity="grid", entity_id="foreign", county_code="439903"
    )
    session.flush()
    return session.scalar(select(AuditEntry.id).where(AuditEntry.entity_id == "foreign"))


@pytest.mark.parametrize("username", ["auditor", "county"])
def test_audit_list_shows_only_own_county(client, as_user, session, foreign_entry, username):
    headers = as_user(username)
    # Something to find: a write by the village admin.
    r = client.patch(
        f"{API}/party-orgs/{session.scalar(text('SELECT min(id) FROM party_orgs'))}",
        headers=as_user("village_a"),
        json={"secretary_name": "孙书记"},
    )
    assert r.status_code == 200, r.text
    seen: list[dict] = []
    url: str | None = f"{API}/audit?limit=5"
    while url:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += body["items"]
        url = f"{API}/audit?limit=5&cursor={body['next_cursor']}" if body["next_cursor"] else None
    assert seen, "the world's own writes are in the log"
    assert all(e["county_code"] == COUNTY for e in seen)
    assert foreign_entry not in {e["id"] for e in seen}
    ids = [e["id"] for e in seen]
    assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids))
    latest = [e for e in seen if e["entity"] == "party_org" and e["action"] == "update"]
    assert latest and latest[0]["username"] == "village_a"
    assert latest[0]["after"]["secretary_name"] == "孙**"  # masked: the one personal-data rule


def test_audit_filters(client, as_user, session, world):
    hid = world.households["A1-1"]
    client.patch(f"{API}/households/{hid}", headers=as_user("village_a"), json={"size": 5})
    r = client.get(f"{API}/audit?entity=household&entity_id={hid}", headers=as_user("auditor"))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert items and {(e["entity"], e["entity_id"]) for e in items} == {("household", str(hid))}


def read_log(client, headers: dict[str, str], **params: object) -> list[dict]:
    seen: list[dict] = []
    query = {"limit": 1000, **params}
    while True:
        r = client.get(f"{API}/audit", params=query, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += body["items"]
        if not body["next_cursor"]:
            return seen
        query["cursor"] = body["next_cursor"]


def test_a_reader_below_the_county_sees_only_its_subtree(client, as_user, session, world):
    """An auditor bound to 甲镇 reads 甲镇's entries — about its units, grids, households, party
    organisations, members, contacts, issues, visits, users, or written by its users — and
    never 乙乡's, although both are in the same county."""
    from gridgov.auth import service as auth_service
    from tests.conftest import token_for
    from tests.fixtures.world import PASSWORD, TOWN_A, VILLAGE_B

    county = as_user("county")
    ours, theirs = world.households["A1-1"], world.households["C1-1"]
    for hid in (ours, theirs):
        r = client.patch(f"{API}/households/{hid}", headers=county, json={"size": 4})
        assert r.status_code == 200, r.text
    for code in (VILLAGE_B, VILLAGE_C):
        r = client.patch(f"{API}/units/{code}", headers=county, json={"name": f"{code[-3:]}村"})
        assert r.status_code == 200, r.text
    r = client.patch(
        f"{API}/party-orgs/{world.orgs[VILLAGE_C]}", headers=county, json={"name": "南村党支部"}
    )
    assert r.status_code == 200, r.text
    # A write by one of 甲镇's own users (the village admin of 东村), about its village.
    r = client.patch(f"{API}/households/{ours}", headers=as_user("village_a"), json={"size": 5})
    assert r.status_code == 200, r.text
    town_auditor = auth_service.create_user(
        session,
        None,
        username="town_auditor",
        password=PASSWORD,
        role="auditor",
        display_name="乡镇审计",
        unit_code=TOWN_A,
    )
    session.commit()
    headers = {"Authorization": f"Bearer {token_for(town_auditor.id, 'auditor')}"}

    def keys(items: list[dict]) -> set[tuple[str, str | None]]:
        return {(e["entity"], e["entity_id"]) for e in items}

    everything = keys(read_log(client, as_user("auditor")))  # the county's auditor
    seen = keys(read_log(client, headers))
    foreign = {
        ("household", str(theirs)),
        ("admin_unit", VILLAGE_C),
        ("party_org", str(world.orgs[VILLAGE_C])),
    }
    assert foreign <= everything
    assert not foreign & seen
    assert {("household", str(ours)), ("admin_unit", VILLAGE_B)} <= seen
    # Everything shown is 甲镇's: no entry about 乙乡's households, units, grids, orgs, users.
    town_b = set(
        session.scalars(
            text(
                "SELECT 'household:' || h.id FROM households h JOIN admin_units v ON"
                " v.id = h.village_id WHERE v.code LIKE '439902101%'"
                " UNION SELECT 'admin_unit:' || code FROM admin_units WHERE code LIKE '439902101%'"
                " UNION SELECT 'grid:' || g.id FROM grids g WHERE g.code LIKE '439902101%'"
            )
        )
    )
    assert town_b and not {f"{e}:{i}" for e, i in seen} & town_b
    # The filters still narrow within the subtree, and outside it find nothing.
    assert keys(read_log(client, headers, entity="household", entity_id=str(ours))) == {
        ("household", str(ours))
    }
    assert read_log(client, headers, entity="household", entity_id=str(theirs)) == []


@pytest.mark.parametrize("username", ["village_a", "town_a", "grid_a1", "gis"])
def test_audit_list_forbidden_to_others(client, as_user, username):
    assert_problem(client.get(f"{API}/audit", headers=as_user(username)), 403, "forbidden")


# -- reading personal information is recorded ----------------------------------------------------


@pytest.mark.parametrize(
    ("username", "role"), [("village_a", "village_admin"), ("grid_a1", "grid_member")]
)
def test_reading_pii_is_audited(client, as_user, session, world, username, role):
    hid = world.households["A1-1"]
    headers = as_user(username)
    assert client.get(f"{API}/households/{hid}", headers=headers).status_code == 200
    assert entries(session, "household", hid) == []  # a masked read is not recorded

    assert client.get(f"{API}/households/{hid}?pii=true", headers=headers).status_code == 200
    (entry,) = entries(session, "household", hid)
    assert entry.action == "read_pii"
    assert_who(entry, world, username, role)

    assert client.get(f"{API}/households?pii=true", headers=headers).status_code == 200
    listed = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "read_pii",
            AuditEntry.entity == "household",
            AuditEntry.user_id == world.users[username],
            AuditEntry.entity_id.like("list:%"),
        )
    ).all()
    assert len(listed) == 1


def test_reading_member_pii_is_audited(client, as_user, session, world):
    mid = world.members["党员甲"]
    r = client.get(f"{API}/members/{mid}?pii=true", headers=as_user("village_a"))
    assert r.status_code == 200, r.text
    (entry,) = entries(session, "party_member", mid)
    assert entry.action == "read_pii" and entry.username == "village_a"
