"""Personal information (个人信息保护法, DESIGN §8): masked by default everywhere, clear only for
roles allowed it and only when asked with ``pii=true``; never searchable by roles without it."""

from __future__ import annotations

import pytest

from tests.auth.helpers import assert_problem, walk
from tests.fixtures.world import World

API = "/api/v1"
HEAD, PHONE, ID_NUMBER = "王建国", "13912345678", "11010519491231002X"
MASKED = {"head_name": "王**", "phone": "139****5678", "id_number": "110105********002X"}
CLEAR = {"head_name": HEAD, "phone": PHONE, "id_number": ID_NUMBER}
MEMBER_MASKED = {"name": "党**", "phone": "138****8000"}
MEMBER_CLEAR = {"name": "党员甲", "phone": "13800138000"}
ALL_USERS = ["county", "town_a", "village_a", "grid_a1", "gis", "auditor"]
PII_USERS = ["county", "town_a", "village_a", "grid_a1"]
NO_PII_USERS = ["gis", "auditor"]


def pick(item: dict, keys: dict) -> dict:
    return {k: item[k] for k in keys}


def household_in_list(client, headers, world: World, query: str = "") -> dict:
    hid = world.households["A1-1"]
    items = walk(client, f"{API}/households?geometry=false{query}", headers)
    (item,) = [i for i in items if i["id"] == hid]
    return item


@pytest.mark.parametrize("username", ALL_USERS)
def test_masked_by_default(client, as_user, world, username):
    headers = as_user(username)
    assert pick(household_in_list(client, headers, world), MASKED) == MASKED
    r = client.get(f"{API}/households/{world.households['A1-1']}", headers=headers)
    assert r.status_code == 200, r.text
    assert pick(r.json(), MASKED) == MASKED
    for item in walk(client, f"{API}/households", headers):
        assert HEAD not in str(item) and PHONE not in str(item) and ID_NUMBER not in str(item)

    mid = world.members["党员甲"]
    r = client.get(f"{API}/members/{mid}", headers=headers)
    assert pick(r.json(), MEMBER_MASKED) == MEMBER_MASKED
    (member,) = [m for m in walk(client, f"{API}/members", headers) if m["id"] == mid]
    assert pick(member, MEMBER_MASKED) == MEMBER_MASKED


@pytest.mark.parametrize("username", PII_USERS)
def test_clear_with_pii_flag_for_allowed_roles(client, as_user, world, username):
    headers = as_user(username)
    assert pick(household_in_list(client, headers, world, "&pii=true"), CLEAR) == CLEAR
    r = client.get(f"{API}/households/{world.households['A1-1']}?pii=true", headers=headers)
    assert r.status_code == 200, r.text
    assert pick(r.json(), CLEAR) == CLEAR

    mid = world.members["党员甲"]
    r = client.get(f"{API}/members/{mid}?pii=true", headers=headers)
    assert r.status_code == 200, r.text
    assert pick(r.json(), MEMBER_CLEAR) == MEMBER_CLEAR
    items = walk(client, f"{API}/members?pii=true", headers)
    (member,) = [m for m in items if m["id"] == mid]
    assert pick(member, MEMBER_CLEAR) == MEMBER_CLEAR


@pytest.mark.parametrize("username", NO_PII_USERS)
@pytest.mark.parametrize(
    "path",
    [
        "households?pii=true",
        "households/{hid}?pii=true",
        "members?pii=true",
        "members/{mid}?pii=true",
    ],
)
def test_pii_flag_forbidden_for_gis_and_auditor(client, as_user, world, username, path):
    path = path.format(hid=world.households["A1-1"], mid=world.members["党员甲"])
    assert_problem(client.get(f"{API}/{path}", headers=as_user(username)), 403, "pii_forbidden")


def test_write_responses_are_masked(client, as_user, world):
    headers = as_user("village_a")
    r = client.post(
        f"{API}/households",
        headers=headers,
        json={
            "head_name": "欧阳娜娜",
            "phone": "13700001111",
            "id_number": ID_NUMBER,
            "location": {"type": "Point", "coordinates": [111.03, 26.03]},
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["head_name"], created["phone"], created["id_number"]) == (
        "欧***",
        "137****1111",
        "110105********002X",
    )
    r = client.patch(
        f"{API}/households/{created['id']}", headers=headers, json={"phone": "13700002222"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["phone"] == "137****2222"


@pytest.mark.parametrize("username", NO_PII_USERS)
@pytest.mark.parametrize(("path", "name"), [("households", HEAD), ("members", "党员甲")])
def test_names_not_searchable_without_pii_permission(client, as_user, username, path, name):
    """Searching by name would confirm a name the role may not read."""
    assert walk(client, f"{API}/{path}?q={name}", as_user(username)) == []


def test_names_searchable_with_pii_permission(client, as_user, world):
    items = walk(client, f"{API}/households?q={HEAD}", as_user("village_a"))
    assert [i["id"] for i in items] == [world.households["A1-1"]]
    items = walk(client, f"{API}/members?q=党员甲", as_user("village_a"))
    assert [i["id"] for i in items] == [world.members["党员甲"]]
