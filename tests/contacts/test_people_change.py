"""People change: members leave, move or die; households split, move or are removed. Each ends
the assignments it breaks and names the households left without a primary contact."""

from __future__ import annotations

from typing import Any

import pytest

from gridgov.contacts.service import today
from tests.contacts.conftest import assert_problem
from tests.fixtures.world import VILLAGE_A


@pytest.fixture
def village_a(as_user) -> dict[str, str]:
    return as_user("village_a")


def assign(client: Any, headers: dict[str, str], member: Any, household: int, **body: Any) -> int:
    payload = {"member_id": member.id, "household_id": household, **body}
    r = client.post("/api/v1/contacts", json=payload, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def contact(client: Any, headers: dict[str, str], contact_id: int) -> dict[str, Any]:
    return client.get(f"/api/v1/contacts/{contact_id}", headers=headers).json()


def uncovered(client: Any, headers: dict[str, str]) -> list[int]:
    r = client.get(f"/api/v1/contacts/uncovered?unit_code={VILLAGE_A}", headers=headers)
    return [h["id"] for h in r.json()["items"]]


def test_member_leaving_ends_its_contacts(client, village_a, world, make_member):
    member, other = make_member(), make_member()
    mine = [assign(client, village_a, member, world.households[k]) for k in ("A1-1", "A1-2")]
    helper = assign(client, village_a, member, world.households["A1-3"], role="secondary")
    theirs = assign(client, village_a, other, world.households["A1-3"])
    r = client.post(
        f"/api/v1/members/{member.id}/leave", json={"reason": "组织关系转出"}, headers=village_a
    )
    assert r.status_code == 204, r.text
    for cid in [*mine, helper]:
        ended = contact(client, village_a, cid)
        assert ended["valid_to"] == today().isoformat()
        assert (ended["ended_reason"], ended["ended_note"]) == ("member_left", "组织关系转出")
    assert contact(client, village_a, theirs)["active"]
    holes = uncovered(client, village_a)
    assert world.households["A1-1"] in holes and world.households["A1-2"] in holes
    assert world.households["A1-3"] not in holes  # its primary is someone else


def test_release_member_lists_the_households_left_without(client, village_a, world, make_member):
    member = make_member()
    a = assign(client, village_a, member, world.households["A1-1"])
    b = assign(client, village_a, member, world.households["A2-1"], role="secondary")
    r = client.post(
        f"/api/v1/contacts/members/{member.id}/release",
        json={"reason": "member_died", "note": "病故"},
        headers=village_a,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted(e["id"] for e in body["ended"]) == [a, b]
    assert {e["reason"] for e in body["ended"]} == {"member_died"}
    assert body["uncovered_household_ids"] == [world.households["A1-1"]]
    # the member is still on record (dying is recorded by the members service, not here)
    again = client.post(
        f"/api/v1/contacts/members/{member.id}/release",
        json={"reason": "member_died"},
        headers=village_a,
    ).json()
    assert again == {"ended": [], "uncovered_household_ids": []}


def test_release_member_out_of_scope_is_404(client, as_user, make_member):
    member = make_member()
    r = client.post(
        f"/api/v1/contacts/members/{member.id}/release",
        json={"reason": "member_moved"},
        headers=as_user("village_b"),
    )
    assert_problem(r, 404, "not_found")


def test_removing_a_household_ends_its_contacts(client, village_a, world, make_member):
    household = world.households["A1-4"]
    cid = assign(client, village_a, make_member(), household)
    r = client.post(
        f"/api/v1/households/{household}/remove", json={"reason": "全户迁出"}, headers=village_a
    )
    assert r.status_code == 204, r.text
    ended = contact(client, village_a, cid)
    assert (ended["ended_reason"], ended["ended_note"]) == ("household_removed", "全户迁出")
    assert household not in uncovered(client, village_a)  # removed: nobody needs to visit


def test_household_split_lists_both_parts(client, village_a, world, make_member):
    household = world.households["A1-2"]
    cid = assign(client, village_a, make_member(), household)
    new = client.post(
        "/api/v1/households",
        json={
            "head_name": "李小英",
            "location": {"type": "Point", "coordinates": [111.021, 26.02]},
        },
        headers=village_a,
    )
    assert new.status_code == 201, new.text
    new_id = new.json()["id"]
    r = client.post(
        f"/api/v1/contacts/households/{household}/release",
        json={"reason": "household_split", "related_household_ids": [new_id]},
        headers=village_a,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [e["id"] for e in body["ended"]] == [cid]
    assert body["uncovered_household_ids"] == sorted([household, new_id])
    # a related household outside the caller's scope is not found
    r = client.post(
        f"/api/v1/contacts/households/{household}/release",
        json={"reason": "household_split", "related_household_ids": [world.households["B1-1"]]},
        headers=village_a,
    )
    assert_problem(r, 404, "not_found")


def test_household_moving_to_another_village_ends_its_contact(client, as_user, world, make_member):
    county = as_user("county")
    household = world.households["A1-4"]
    stays = assign(client, county, make_member(), world.households["A1-3"])
    moved = assign(client, county, make_member(), household)
    r = client.patch(
        f"/api/v1/households/{household}",
        json={"location": {"type": "Point", "coordinates": [111.05, 26.15]}},  # into 西村
        headers=county,
    )
    assert r.status_code == 200, r.text
    assert r.json()["village_code"] != VILLAGE_A
    assert contact(client, county, moved)["ended_reason"] == "household_moved"
    assert contact(client, county, stays)["active"]


def test_reconcile_ends_what_no_longer_holds(client, village_a, session, world, make_member):
    flowing_later = make_member()
    fine = make_member()
    a = assign(client, village_a, flowing_later, world.households["A1-1"])
    b = assign(client, village_a, fine, world.households["A1-2"])
    c = assign(client, village_a, flowing_later, world.households["A1-3"], role="secondary")
    r = client.patch(
        f"/api/v1/members/{flowing_later.id}", json={"flowing": True}, headers=village_a
    )
    assert r.status_code == 200, r.text
    r = client.post("/api/v1/contacts/reconcile", json={"unit_code": VILLAGE_A}, headers=village_a)
    assert r.status_code == 200, r.text
    body = r.json()
    # flowing members may not be primary: that one ends; the secondary one stays
    assert [(e["id"], e["reason"]) for e in body["ended"]] == [(a, "invalid")]
    assert body["uncovered_household_ids"] == [world.households["A1-1"]]
    assert contact(client, village_a, b)["active"] and contact(client, village_a, c)["active"]
    again = client.post(
        "/api/v1/contacts/reconcile", json={"unit_code": VILLAGE_A}, headers=village_a
    ).json()
    assert again["ended"] == []
