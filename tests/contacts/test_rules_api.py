"""The 联系户 rules through the HTTP API: every rule broken once, each a problem+json answer."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gridgov.contacts.models import Contact
from gridgov.contacts.service import today
from gridgov.hierarchy.models import PartyOrg
from tests.contacts.conftest import assert_problem
from tests.fixtures.world import COUNTY, GRID_A1, GRID_A2, TOWN_A, VILLAGE_A, VILLAGE_B


def assign(client: Any, headers: dict[str, str], member: Any, household: int, **body: Any) -> Any:
    payload = {"member_id": member.id, "household_id": household, **body}
    return client.post("/api/v1/contacts", json=payload, headers=headers)


@pytest.fixture
def village_a(as_user) -> dict[str, str]:
    return as_user("village_a")


@pytest.fixture
def county(as_user) -> dict[str, str]:
    return as_user("county")


def test_anonymous_is_401(client):
    r = client.get("/api/v1/contacts")
    assert_problem(r, 401, "unauthenticated")


def test_primary_contact_is_created_and_read_back(client, village_a, world, make_member):
    member = make_member(111.011, 26.011, name="王红梅")
    r = assign(client, village_a, member, world.households["A1-1"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["role"] == "primary" and body["active"] and body["valid_to"] is None
    assert body["village_code"] == VILLAGE_A and body["grid_code"] == GRID_A1
    assert body["member_name"] == "王**" and body["household_head"] == "王**"  # masked
    assert body["valid_from"] == today().isoformat() and body["source"] == "manual"
    # (111.011, 26.011) to (111.01, 26.01): about 150 m
    assert 140 < body["distance_m"] < 160
    again = client.get(f"/api/v1/contacts/{body['id']}", headers=village_a).json()
    assert again == body
    listed = client.get(f"/api/v1/contacts?member_id={member.id}", headers=village_a).json()
    assert [c["id"] for c in listed["items"]] == [body["id"]]


def test_assignment_outside_the_callers_scope_is_404(client, as_user, world, make_member):
    east = make_member(111.02, 26.02)
    west = make_member(111.02, 26.15, village=VILLAGE_B)
    village_b = as_user("village_b")
    # member outside the caller's village
    r = assign(client, village_b, east, world.households["B1-1"])
    assert_problem(r, 404, "not_found")
    # household outside the caller's village
    r = assign(client, village_b, west, world.households["A1-1"])
    assert_problem(r, 404, "not_found")
    # the same pair is in the county's scope: the rule that stops it there is another one
    r = assign(client, as_user("county"), west, world.households["A1-1"])
    assert_problem(r, 422, "not_same_village", "household_id")
    # a grid member may read contacts but not assign them
    r = assign(client, as_user("grid_a1"), east, world.households["A1-1"])
    assert_problem(r, 403, "forbidden")


def test_member_of_another_village_is_422(client, county, world, make_member):
    west = make_member(111.02, 26.15, village=VILLAGE_B)
    r = assign(client, county, west, world.households["A1-2"])
    assert_problem(r, 422, "not_same_village", "household_id")


def test_member_whose_organization_covers_the_village_is_accepted(
    client, county, session, world, make_member
):
    # A township 党委 over both 东村 and 西村: its member may contact households in either.
    org = PartyOrg(
        unit_id=world.units[TOWN_A], county_code=COUNTY, name="甲镇党委", kind="committee"
    )
    session.add(org)
    session.commit()
    member = make_member(111.02, 26.15, village=VILLAGE_B, party_org_id=org.id)
    r = assign(client, county, member, world.households["A1-2"])
    assert r.status_code == 201, r.text


def test_member_own_capacity_is_a_hard_limit(client, village_a, world, make_member):
    member = make_member(capacity=1)
    assert assign(client, village_a, member, world.households["A1-1"]).status_code == 201
    r = assign(client, village_a, member, world.households["A1-2"])
    body = assert_problem(r, 422, "capacity_exceeded", "member_id")
    assert "1 户" in body["errors"][0]["msg"]


def test_county_hard_maximum(client, village_a, world, make_member, limits):
    limits(normal_min=1, normal_max=2, hard_max=2)
    member = make_member()
    for key in ("A1-1", "A1-2"):
        assert assign(client, village_a, member, world.households[key]).status_code == 201
    r = assign(client, village_a, member, world.households["A1-3"], role="secondary")
    assert_problem(r, 422, "capacity_exceeded", "member_id")


def test_flowing_member_cannot_be_primary_by_default(client, village_a, world, make_member, limits):
    member = make_member(flowing=True)
    r = assign(client, village_a, member, world.households["A1-1"])
    body = assert_problem(r, 422, "role_not_allowed", "role")
    assert "流动党员" in body["errors"][0]["msg"]
    r = assign(client, village_a, member, world.households["A1-1"], role="secondary")
    assert r.status_code == 201, r.text
    # A county may allow it.
    limits(flowing_roles=["primary", "secondary"])
    r = assign(client, village_a, member, world.households["A1-2"])
    assert r.status_code == 201, r.text


def test_probationary_policy_and_cap(client, village_a, world, make_member, limits):
    member = make_member(status="probationary")
    limits(probationary_roles=["secondary"], probationary_max=1)
    r = assign(client, village_a, member, world.households["A1-1"])
    assert_problem(r, 422, "role_not_allowed", "role")
    r = assign(client, village_a, member, world.households["A1-1"], role="secondary")
    assert r.status_code == 201, r.text
    r = assign(client, village_a, member, world.households["A1-2"], role="secondary")
    assert_problem(r, 422, "capacity_exceeded", "member_id")


def test_member_who_left_is_422(client, village_a, world, make_member):
    member = make_member()
    left = client.post(
        f"/api/v1/members/{member.id}/leave", json={"reason": "迁往外省"}, headers=village_a
    )
    assert left.status_code == 204, left.text
    r = assign(client, village_a, member, world.households["A1-1"])
    body = assert_problem(r, 422, "member_left", "member_id")
    assert "迁往外省" in body["errors"][0]["msg"]


def test_removed_household_is_422(client, village_a, world, make_member):
    member = make_member()
    household = world.households["A1-4"]
    removed = client.post(
        f"/api/v1/households/{household}/remove", json={"reason": "合户"}, headers=village_a
    )
    assert removed.status_code == 204, removed.text
    r = assign(client, village_a, member, household)
    assert_problem(r, 422, "household_removed", "household_id")


def test_start_date_in_the_future_is_422(client, village_a, world, make_member):
    member = make_member()
    tomorrow = (today() + timedelta(days=1)).isoformat()
    r = assign(client, village_a, member, world.households["A1-1"], valid_from=tomorrow)
    assert_problem(r, 422, "valid_from_in_future", "valid_from")


def test_several_broken_rules_are_reported_together(client, county, world, make_member):
    member = make_member(111.02, 26.15, village=VILLAGE_B, flowing=True, capacity=0)
    r = assign(client, county, member, world.households["A1-1"])
    body = assert_problem(r, 422, "not_same_village", "household_id")
    codes = {e["code"] for e in body["errors"]}
    assert codes == {"not_same_village", "role_not_allowed", "capacity_exceeded"}


def test_second_primary_is_409_and_replacing_hands_over(client, village_a, world, make_member):
    first, second = make_member(), make_member()
    household = world.households["A1-2"]
    old = assign(client, village_a, first, household).json()
    r = assign(client, village_a, second, household)
    body = assert_problem(r, 409, "primary_exists")
    assert body["contact_id"] == old["id"]
    r = assign(client, village_a, second, household, replace_primary=True, note="原联系人外出务工")
    assert r.status_code == 201, r.text
    ended = client.get(f"/api/v1/contacts/{old['id']}", headers=village_a).json()
    assert ended["valid_to"] == today().isoformat() and ended["ended_reason"] == "replaced"
    assert ended["ended_note"] == "原联系人外出务工"
    now = client.get(f"/api/v1/contacts/households/{household}", headers=village_a).json()
    assert now["primary"]["member_id"] == second.id
    assert [c["member_id"] for c in now["history"]] == [first.id, second.id]


def test_same_member_twice_is_409(client, village_a, world, make_member):
    member = make_member()
    household = world.households["A1-3"]
    assert assign(client, village_a, member, household).status_code == 201
    r = assign(client, village_a, member, household, role="secondary")
    assert_problem(r, 409, "already_assigned")


def test_secondary_contacts_per_household(client, village_a, world, make_member, limits):
    limits(max_secondary_per_household=1)
    household = world.households["A1-3"]
    assert assign(client, village_a, make_member(), household, role="secondary").status_code == 201
    r = assign(client, village_a, make_member(), household, role="secondary")
    assert_problem(r, 422, "too_many_secondary", "role")


def test_ending_keeps_the_record(client, village_a, session, world, make_member):
    member = make_member()
    contact = assign(client, village_a, member, world.households["A1-1"]).json()
    url = f"/api/v1/contacts/{contact['id']}/end"
    future = (today() + timedelta(days=2)).isoformat()
    assert_problem(
        client.post(url, json={"on": future}, headers=village_a), 422, "end_in_future", "on"
    )
    past = (today() - timedelta(days=2)).isoformat()
    assert_problem(
        client.post(url, json={"on": past}, headers=village_a), 422, "end_before_start", "on"
    )
    r = client.post(url, json={"reason": "manual", "note": "调整"}, headers=village_a)
    assert r.status_code == 200, r.text
    assert r.json()["valid_to"] == today().isoformat() and not r.json()["active"]
    assert_problem(client.post(url, json={}, headers=village_a), 409, "already_ended")
    assert session.get(Contact, contact["id"]) is not None  # closed, never deleted
    # the household is free again
    assert assign(client, village_a, make_member(), world.households["A1-1"]).status_code == 201


def test_who_looked_after_a_household_on_a_date(client, village_a, world, make_member):
    first, second, third = make_member(), make_member(), make_member()
    household = world.households["A2-1"]
    url = f"/api/v1/contacts/households/{household}"
    one = assign(client, village_a, first, household, valid_from="2024-01-01").json()
    r = client.post(
        f"/api/v1/contacts/{one['id']}/end", json={"on": "2024-06-01"}, headers=village_a
    )
    assert r.status_code == 200, r.text
    two = assign(client, village_a, second, household, valid_from="2024-06-01").json()
    helper = assign(client, village_a, third, household, role="secondary", valid_from="2024-03-01")
    assert helper.status_code == 201, helper.text

    def on(day: str) -> dict[str, Any]:
        return client.get(f"{url}?on={day}", headers=village_a).json()

    assert on("2023-12-31")["primary"] is None
    assert on("2024-01-01")["primary"]["id"] == one["id"]
    assert on("2024-05-31")["primary"]["id"] == one["id"]  # valid_to is the first day off duty
    assert on("2024-06-01")["primary"]["id"] == two["id"]
    assert [c["member_id"] for c in on("2024-02-01")["secondary"]] == []
    assert [c["member_id"] for c in on("2024-04-01")["secondary"]] == [third.id]
    assert [c["id"] for c in on("2024-04-01")["history"]][:2] == [one["id"], helper.json()["id"]]
    # the same question through the list
    listed = client.get(
        f"/api/v1/contacts?household_id={household}&on=2024-03-15&role=primary", headers=village_a
    ).json()
    assert [c["id"] for c in listed["items"]] == [one["id"]]
    ended = client.get(
        f"/api/v1/contacts?household_id={household}&status=ended", headers=village_a
    ).json()
    assert [c["id"] for c in ended["items"]] == [one["id"]]


def test_primary_periods_never_overlap(client, village_a, world, make_member):
    """Back-dating cannot contradict the history: the exclusion constraint refuses it."""
    first, second = make_member(), make_member()
    household = world.households["A2-2"]
    one = assign(client, village_a, first, household, valid_from="2024-01-01").json()
    client.post(f"/api/v1/contacts/{one['id']}/end", json={"on": "2024-06-01"}, headers=village_a)
    r = assign(client, village_a, second, household, valid_from="2024-05-01")
    assert_problem(r, 409, "primary_overlap")
    r = assign(client, village_a, second, household, valid_from="2024-06-01")
    assert r.status_code == 201, r.text


def test_list_pages_and_scope(client, as_user, village_a, world, make_member):
    member = make_member()
    ids = [
        assign(client, village_a, member, world.households[k]).json()["id"]
        for k in ("A1-1", "A1-2", "A2-1")
    ]
    west = make_member(111.02, 26.15, village=VILLAGE_B)
    assign(client, as_user("village_b"), west, world.households["B1-1"])
    page = client.get("/api/v1/contacts?limit=2", headers=village_a).json()
    assert [c["id"] for c in page["items"]] == ids[:2] and page["next"]
    rest = client.get(page["next"], headers=village_a).json()
    assert [c["id"] for c in rest["items"]] == ids[2:] and rest["next"] is None
    # a grid member sees only the contacts of households in its grid
    grid = client.get("/api/v1/contacts", headers=as_user("grid_a1")).json()
    assert [c["id"] for c in grid["items"]] == ids[:2]
    by_grid = client.get(f"/api/v1/contacts?grid_code={GRID_A2}", headers=village_a).json()
    assert [c["id"] for c in by_grid["items"]] == ids[2:]
    # out of scope: not listed, and not found
    assert client.get(f"/api/v1/contacts/{ids[0]}", headers=as_user("village_b")).status_code == 404
    r = client.get("/api/v1/contacts?pii=true", headers=as_user("auditor"))
    assert_problem(r, 403, "pii_forbidden")
    clear = client.get("/api/v1/contacts?pii=true&limit=1", headers=village_a).json()
    assert clear["items"][0]["household_head"] == "王建国"


def test_coverage_and_uncovered(client, as_user, village_a, world, make_member, limits):
    limits(normal_min=2, normal_max=2, hard_max=5)
    busy, light = make_member(111.02, 26.02, is_hub=False), make_member(111.06, 26.02)
    for key in ("A1-1", "A1-2", "A1-3"):
        assert assign(client, village_a, busy, world.households[key]).status_code == 201
    assign(client, village_a, light, world.households["A2-1"])
    r = client.get(f"/api/v1/contacts/coverage?unit_code={VILLAGE_A}&by=grid", headers=village_a)
    assert r.status_code == 200, r.text
    rows = {row["code"]: row for row in r.json()["items"]}
    a1, a2 = rows[GRID_A1], rows[GRID_A2]
    assert (a1["households"], a1["covered"], a1["uncovered"]) == (4, 3, 1)
    assert a1["coverage"] == 0.75 and a1["members_over_normal"] == 1
    assert (a2["households"], a2["covered"], a2["members_under_min"]) == (2, 1, 1)
    assert a1["avg_distance_m"] > 0
    village = client.get(
        f"/api/v1/contacts/coverage?unit_code={VILLAGE_A}", headers=village_a
    ).json()["items"]
    assert [(v["code"], v["households"], v["covered"]) for v in village] == [(VILLAGE_A, 6, 4)]
    towns = client.get(
        f"/api/v1/contacts/coverage?unit_code={COUNTY}&by=township", headers=as_user("county")
    ).json()["items"]
    assert [t["code"] for t in towns] == [TOWN_A, "439902101"]
    assert towns[0]["households"] == 8 and towns[0]["covered"] == 4
    r = client.get(
        f"/api/v1/contacts/coverage?unit_code={VILLAGE_A}&by=township", headers=village_a
    )
    assert_problem(r, 422, "invalid_grouping", "by")
    r = client.get(f"/api/v1/contacts/coverage?unit_code={VILLAGE_B}", headers=village_a)
    assert_problem(r, 404, "not_found")
    uncovered = client.get(
        f"/api/v1/contacts/uncovered?unit_code={VILLAGE_A}", headers=village_a
    ).json()["items"]
    assert [h["id"] for h in uncovered] == [world.households["A1-4"], world.households["A2-2"]]
    assert uncovered[0]["head_name"] == "刘*"


def test_every_write_is_audited(client, village_a, session, world, make_member):
    from gridgov.audit.models import AuditEntry

    contact = assign(client, village_a, make_member(), world.households["A1-1"]).json()
    client.post(f"/api/v1/contacts/{contact['id']}/end", json={}, headers=village_a)
    actions = session.scalars(
        select(AuditEntry.action).where(
            AuditEntry.entity == "contact", AuditEntry.entity_id == str(contact["id"])
        )
    ).all()
    assert sorted(actions) == ["create", "end"]


def test_unknown_fields_and_bad_dates_are_422(client, village_a, world, make_member):
    member = make_member()
    r = assign(client, village_a, member, world.households["A1-1"], colour="red")
    assert r.status_code == 422
    r = client.get("/api/v1/contacts?on=2024-13-01", headers=village_a)
    assert r.status_code == 422
    assert date.fromisoformat(today().isoformat()) == today()
