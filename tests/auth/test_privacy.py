"""The one personal-data rule (gridgov/privacy.py) on the reads that used to bypass it: the audit
log's before/after, Party organizations' secretaries, grid chiefs, the due list. Masked unless a
role allowed personal data asks with ``pii=true`` (and that read is audited); a grid member's
due list shows its own grid's households in clear, audited once per list."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridgov import privacy
from gridgov.audit.models import AuditEntry
from tests.auth.helpers import assert_problem
from tests.fixtures.world import GRID_A1, VILLAGE_A, World

API = "/api/v1"
HEAD, PHONE, ID_NUMBER = "王建国", "13912345678", "11010519491231002X"
SECRETARY, SECRETARY_PHONE = "孙书记", "13712345678"


def reads(session: Session, world: World, username: str, entity: str) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.action == "read_pii",
                AuditEntry.entity == entity,
                AuditEntry.user_id == world.users[username],
            )
            .order_by(AuditEntry.id)
        )
    )


def test_masks() -> None:
    assert privacy.mask_name(HEAD) == "王**"
    assert privacy.mask_phone(PHONE) == "139****5678"
    assert privacy.mask_id_number(ID_NUMBER) == "110105********002X"
    view = privacy.audit_view(
        "party_member", {"name": "党员甲", "phone": PHONE, "nested": [{"head_name": HEAD}]}
    )
    assert view == {"name": "党**", "phone": "139****5678", "nested": [{"head_name": "王**"}]}
    assert privacy.audit_view("grid", {"name": "东村第一网格"}) == {"name": "东村第一网格"}


# -- D1: the audit log ----------------------------------------------------------------------------


@pytest.fixture
def household_entry(client, as_user, world) -> str:
    """A household update in the log: its before/after hold the head's name, phone, ID number."""
    hid = world.households["A1-1"]
    r = client.patch(f"{API}/households/{hid}", headers=as_user("village_a"), json={"size": 5})
    assert r.status_code == 200, r.text
    return str(hid)


def audit_items(client, headers, entity: str, entity_id: str, pii: bool = False) -> list[dict]:
    query = f"entity={entity}&entity_id={entity_id}" + ("&pii=true" if pii else "")
    r = client.get(f"{API}/audit?{query}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


@pytest.mark.parametrize("username", ["auditor", "county"])
def test_audit_before_after_masked_without_pii(
    client, as_user, session, world, household_entry, username
):
    headers = as_user(username)
    (entry,) = audit_items(client, headers, "household", household_entry)
    for side in (entry["before"], entry["after"]):
        assert side["head_name"] == "王**"
        assert side["phone"] == "139****5678"
        assert side["id_number"] == "110105********002X"
    assert (entry["before"]["size"], entry["after"]["size"]) == (3, 5)  # the change itself shows
    r = client.get(f"{API}/audit?limit=1000", headers=headers)
    for raw in (HEAD, PHONE, ID_NUMBER, "党员甲", "13800138000"):
        assert raw not in r.text
    assert reads(session, world, username, "audit_log") == []  # a masked read is not recorded


def test_audit_member_and_party_org_snapshots_masked(client, as_user, world):
    town = as_user("town_a")
    org_id = world.orgs[VILLAGE_A]
    body = {"secretary_name": SECRETARY, "secretary_phone": SECRETARY_PHONE}
    assert client.patch(f"{API}/party-orgs/{org_id}", headers=town, json=body).status_code == 200
    mid = world.members["党员甲"]
    assert (
        client.patch(f"{API}/members/{mid}", headers=town, json={"capacity": 7}).status_code == 200
    )
    auditor = as_user("auditor")
    (org_entry,) = audit_items(client, auditor, "party_org", str(org_id))
    assert org_entry["after"]["secretary_name"] == "孙**"
    assert org_entry["after"]["secretary_phone"] == "137****5678"
    assert org_entry["after"]["name"] == org_entry["before"]["name"]  # an org's name is not masked
    (member_entry,) = audit_items(client, auditor, "party_member", str(mid))
    assert member_entry["before"]["name"] == member_entry["after"]["name"] == "党**"
    assert member_entry["after"]["phone"] == "138****8000"
    assert member_entry["after"]["capacity"] == 7


def test_audit_in_clear_only_for_county_with_pii_and_recorded(
    client, as_user, session, world, household_entry
):
    r = client.get(f"{API}/audit?pii=true", headers=as_user("auditor"))
    assert_problem(r, 403, "pii_forbidden")

    (entry,) = audit_items(client, as_user("county"), "household", household_entry, pii=True)
    assert entry["after"]["head_name"] == HEAD and entry["after"]["phone"] == PHONE
    assert entry["after"]["id_number"] == ID_NUMBER
    (read,) = reads(session, world, "county", "audit_log")
    assert read.entity_id == "list:1"


# -- D8: Party organizations' secretaries, grid chiefs -------------------------------------------


@pytest.fixture
def secretary(client, as_user, world) -> int:
    org_id = world.orgs[VILLAGE_A]
    body = {"secretary_name": SECRETARY, "secretary_phone": SECRETARY_PHONE}
    r = client.patch(f"{API}/party-orgs/{org_id}", headers=as_user("village_a"), json=body)
    assert r.status_code == 200, r.text
    assert r.json()["secretary_name"] == "孙**"  # the write's answer is masked too
    return org_id


@pytest.mark.parametrize("username", ["gis", "auditor", "county", "village_a"])
def test_party_org_secretary_masked(client, as_user, secretary, username):
    headers = as_user(username)
    r = client.get(f"{API}/party-orgs/{secretary}", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["secretary_name"], body["secretary_phone"]) == ("孙**", "137****5678")
    r = client.get(f"{API}/party-orgs?limit=1000", headers=headers)
    assert r.status_code == 200, r.text
    (item,) = [i for i in r.json()["items"] if i["id"] == secretary]
    assert (item["secretary_name"], item["secretary_phone"]) == ("孙**", "137****5678")
    assert SECRETARY not in r.text and SECRETARY_PHONE not in r.text


@pytest.mark.parametrize("username", ["gis", "auditor"])
def test_party_org_pii_forbidden_without_permission(client, as_user, secretary, username):
    headers = as_user(username)
    r = client.get(f"{API}/party-orgs/{secretary}?pii=true", headers=headers)
    assert_problem(r, 403, "pii_forbidden")
    assert_problem(client.get(f"{API}/party-orgs?pii=true", headers=headers), 403, "pii_forbidden")


def test_party_org_secretary_in_clear_with_pii_and_audited(
    client, as_user, session, world, secretary
):
    headers = as_user("village_a")
    r = client.get(f"{API}/party-orgs/{secretary}?pii=true", headers=headers)
    assert (r.json()["secretary_name"], r.json()["secretary_phone"]) == (SECRETARY, SECRETARY_PHONE)
    r = client.get(f"{API}/party-orgs?pii=true", headers=headers)
    (item,) = [i for i in r.json()["items"] if i["id"] == secretary]
    assert item["secretary_name"] == SECRETARY
    assert [e.entity_id for e in reads(session, world, "village_a", "party_org")] == [
        str(secretary),
        "list:1",
    ]


def test_grid_chief_name_masked_unless_asked(client, as_user, session, world):
    gid = world.grids[GRID_A1]
    body = {"chief_member_id": world.members["党员甲"]}
    r = client.patch(f"{API}/grids/{gid}", headers=as_user("village_a"), json=body)
    assert r.status_code == 200, r.text
    assert r.json()["chief_name"] == "党**"
    for username in ("gis", "auditor", "county"):
        r = client.get(f"{API}/grids/{gid}", headers=as_user(username))
        assert r.json()["chief_name"] == "党**", username
        r = client.get(f"{API}/grids?geometry=false", headers=as_user(username))
        assert "党员甲" not in r.text and "党**" in r.text
    assert_problem(
        client.get(f"{API}/grids/{gid}?pii=true", headers=as_user("gis")), 403, "pii_forbidden"
    )
    r = client.get(f"{API}/grids/{gid}?pii=true", headers=as_user("county"))
    assert r.json()["chief_name"] == "党员甲"
    assert [e.entity_id for e in reads(session, world, "county", "grid")] == [str(gid)]


# -- D7: the due list -----------------------------------------------------------------------------


def test_grid_member_due_list_in_clear_and_audited_once(client, as_user, session, world):
    r = client.get(f"{API}/me/due", headers=as_user("grid_a1"))
    assert r.status_code == 200, r.text
    names = {d["household_id"]: d["head_name"] for d in r.json()}
    assert names[world.households["A1-1"]] == HEAD  # its own grid's households: in clear
    (read,) = reads(session, world, "grid_a1", "due_list")
    assert read.after == {"households": len(names)}
    assert read.entity_id == f"households:{len(names)}"


def test_other_roles_due_list_masked_unless_asked(client, as_user, session, world):
    r = client.get(f"{API}/me/due", headers=as_user("village_a"))
    assert r.status_code == 200, r.text
    names = {d["household_id"]: d["head_name"] for d in r.json()}
    assert names[world.households["A1-1"]] == "王**"
    assert HEAD not in r.text
    assert reads(session, world, "village_a", "due_list") == []
    r = client.get(f"{API}/me/due?pii=true", headers=as_user("village_a"))
    names = {d["household_id"]: d["head_name"] for d in r.json()}
    assert names[world.households["A1-1"]] == HEAD
    (read,) = reads(session, world, "village_a", "due_list")
    assert read.after == {"households": len(names)}
