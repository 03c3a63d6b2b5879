"""Scope isolation (DESIGN §8): a user sees and changes only the subtree it is bound to;
anything else is 404 — in details, in writes and in every list, filtered or paged."""

from __future__ import annotations

from typing import Any

import pytest

from tests.auth.helpers import assert_problem, ids, walk
from tests.fixtures.world import (
    COUNTY,
    GRID_A1,
    GRID_A2,
    GRID_B1,
    GRID_C1,
    HOUSEHOLDS,
    TOWN_A,
    TOWN_B,
    VILLAGE_A,
    VILLAGE_B,
    VILLAGE_C,
    World,
)

API = "/api/v1"


def households_of(world: World, *prefixes: str) -> set[int]:
    return {world.households[h[0]] for h in HOUSEHOLDS if h[0].startswith(prefixes)}


def listed(client: Any, headers: dict[str, str], path: str, **params: Any) -> set[Any]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    items = walk(client, f"{API}/{path}" + (f"?{query}" if query else ""), headers)
    found = ids(items)
    assert len(found) == len(set(found)), f"{path}: an item listed twice"
    return set(found)


# -- village admin of 东村 ------------------------------------------------------------------------


@pytest.fixture
def west(world: World) -> dict[str, str]:
    """Paths to 西村's things, which 东村's admin must not see."""
    return {
        "grid": f"grids/{world.grids[GRID_B1]}",
        "household": f"households/{world.households['B1-1']}",
        "member": f"members/{world.members['党员乙']}",
        "unit": f"units/{VILLAGE_B}",
        "party_org": f"party-orgs/{world.orgs[VILLAGE_B]}",
    }


@pytest.mark.parametrize("kind", ["grid", "household", "member", "unit", "party_org"])
def test_village_admin_gets_404_for_other_village(client, as_user, west, kind):
    r = client.get(f"{API}/{west[kind]}", headers=as_user("village_a"))
    assert_problem(r, 404, "not_found")


@pytest.mark.parametrize(
    ("kind", "method", "suffix", "body"),
    [
        ("grid", "PATCH", "", {"name": "改名"}),
        ("grid", "DELETE", "", None),
        ("household", "PATCH", "", {"size": 2}),
        ("household", "POST", "/remove", {"reason": "迁出"}),
        ("member", "PATCH", "", {"capacity": 3}),
        ("member", "POST", "/leave", {"reason": "迁出"}),
        ("party_org", "PATCH", "", {"name": "改名"}),
        ("party_org", "DELETE", "", None),
    ],
)
def test_village_admin_cannot_write_other_village(
    client, as_user, west, kind, method, suffix, body
):
    r = client.request(
        method, f"{API}/{west[kind]}{suffix}", headers=as_user("village_a"), json=body
    )
    assert_problem(r, 404, "not_found")


def test_village_admin_cannot_create_in_other_village(client, as_user, world):
    headers = as_user("village_a")
    r = client.post(
        f"{API}/party-orgs",
        headers=headers,
        json={"unit_code": VILLAGE_B, "name": "西村第二支部", "kind": "branch"},
    )
    assert_problem(r, 404, "not_found")
    r = client.post(
        f"{API}/members",
        headers=headers,
        json={"name": "党员丙", "party_org_id": world.orgs[VILLAGE_B]},
    )
    assert_problem(r, 404, "not_found")
    r = client.post(
        f"{API}/households",
        headers=headers,
        json={
            "head_name": "孙丽",
            "village_code": VILLAGE_B,
            "location": {"type": "Point", "coordinates": [111.05, 26.15]},
        },
    )
    assert r.status_code in (404, 422), r.text
    assert r.status_code == 404 or r.json()["errors"], r.text


def test_village_admin_lists_only_own_village(client, as_user, world):
    headers = as_user("village_a")
    assert listed(client, headers, "grids") == {world.grids[GRID_A1], world.grids[GRID_A2]}
    assert listed(client, headers, "households") == households_of(world, "A")
    assert listed(client, headers, "members") == {world.members["党员甲"]}
    assert listed(client, headers, "units") == {world.units[VILLAGE_A]}
    assert listed(client, headers, "party-orgs") == {world.orgs[VILLAGE_A]}


# -- grid member of 东村-001 ----------------------------------------------------------------------


def test_grid_member_sees_only_own_grid(client, as_user, world):
    headers = as_user("grid_a1")
    assert listed(client, headers, "grids") == {world.grids[GRID_A1]}
    assert listed(client, headers, "households") == households_of(world, "A1-")
    assert listed(client, headers, "members") == {world.members["党员甲"]}
    for item in walk(client, f"{API}/households", headers):
        assert item["grid_code"] == GRID_A1
    assert client.get(f"{API}/grids/{world.grids[GRID_A1]}", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["grids/{GRID_A2}", "households/{A2-1}", "grids/{GRID_B1}", "households/{B1-1}"],
)
def test_grid_member_gets_404_outside_own_grid(client, as_user, world, path):
    path = (
        path.replace("{GRID_A2}", str(world.grids[GRID_A2]))
        .replace("{GRID_B1}", str(world.grids[GRID_B1]))
        .replace("{A2-1}", str(world.households["A2-1"]))
        .replace("{B1-1}", str(world.households["B1-1"]))
    )
    assert_problem(client.get(f"{API}/{path}", headers=as_user("grid_a1")), 404, "not_found")


def test_grid_member_cannot_move_household_out_of_own_grid(client, as_user, world):
    """A household of 东村-001 moved into 东村-002 would leave the grid member's scope."""
    r = client.patch(
        f"{API}/households/{world.households['A1-2']}",
        headers=as_user("grid_a1"),
        json={"location": {"type": "Point", "coordinates": [111.07, 26.03]}},
    )
    assert r.status_code == 422, r.text
    assert "outside_own_grid" in {e["code"] for e in r.json()["errors"]}


# -- township admin of 甲镇 ----------------------------------------------------------------------


def test_township_admin_sees_its_villages_only(client, as_user, world):
    headers = as_user("town_a")
    units = listed(client, headers, "units")
    assert units == {world.units[c] for c in (TOWN_A, VILLAGE_A, VILLAGE_B)}
    assert listed(client, headers, "units", level="village") == {
        world.units[VILLAGE_A],
        world.units[VILLAGE_B],
    }
    assert listed(client, headers, "grids") == {world.grids[g] for g in (GRID_A1, GRID_A2, GRID_B1)}
    assert listed(client, headers, "households") == households_of(world, "A", "B")
    assert listed(client, headers, "party-orgs") == {
        world.orgs[VILLAGE_A],
        world.orgs[VILLAGE_B],
    }
    for path in (
        f"units/{VILLAGE_C}",
        f"units/{TOWN_B}",
        f"units/{COUNTY}",
        f"grids/{world.grids[GRID_C1]}",
        f"households/{world.households['C1-1']}",
        f"party-orgs/{world.orgs[VILLAGE_C]}",
    ):
        assert_problem(client.get(f"{API}/{path}", headers=headers), 404, "not_found")


# -- filters keep the scope ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "path", "params", "expected"),
    [
        # unit_code
        ("county", "grids", {"unit_code": VILLAGE_A}, ("grids", GRID_A1, GRID_A2)),
        ("county", "grids", {"unit_code": TOWN_B}, ("grids", GRID_C1)),
        ("county", "households", {"unit_code": VILLAGE_B}, ("households", "B1-1", "B1-2")),
        ("county", "members", {"unit_code": VILLAGE_B}, ("members", "党员乙")),
        # grid_code
        ("county", "households", {"grid_code": GRID_A2}, ("households", "A2-1", "A2-2")),
        ("village_a", "households", {"grid_code": GRID_B1}, ("households",)),
        ("grid_a1", "households", {"grid_code": GRID_A2}, ("households",)),
        ("village_b", "members", {"grid_code": GRID_A1}, ("members",)),
        # tag
        ("county", "households", {"tag": "低保户"}, ("households", "A1-1")),
        ("county", "households", {"tag": "重度残疾"}, ("households", "B1-2")),
        ("village_a", "households", {"tag": "重度残疾"}, ("households",)),
        ("grid_a1", "households", {"tag": "留守/困境儿童"}, ("households",)),
        # bbox (west strip, both villages of 甲镇)
        (
            "county",
            "households",
            {"bbox": "111.0,26.0,111.045,26.2"},
            ("households", "A1-1", "A1-2", "A1-3", "A1-4", "B1-1"),
        ),
        (
            "village_a",
            "households",
            {"bbox": "111.0,26.0,111.045,26.2"},
            ("households", "A1-1", "A1-2", "A1-3", "A1-4"),
        ),
        ("county", "grids", {"bbox": "111.01,26.11,111.02,26.12"}, ("grids", GRID_B1)),
        ("village_a", "grids", {"bbox": "111.01,26.11,111.02,26.12"}, ("grids",)),
        # q
        ("county", "households", {"q": "赵敏"}, ("households", "B1-1")),
        ("village_a", "households", {"q": "赵敏"}, ("households",)),
        ("village_a", "households", {"q": "王建国"}, ("households", "A1-1")),
        ("county", "grids", {"q": "西村"}, ("grids", GRID_B1)),
        ("village_a", "grids", {"q": "西村"}, ("grids",)),
        ("village_a", "members", {"q": "党员乙"}, ("members",)),
        ("county", "units", {"q": "南村"}, ("units", VILLAGE_C)),
        ("town_a", "units", {"q": "南村"}, ("units",)),
    ],
)
def test_filters_respect_scope(client, as_user, world, user, path, params, expected):
    kind, *keys = expected
    table = {
        "grids": world.grids,
        "households": world.households,
        "members": world.members,
        "units": world.units,
        "orgs": world.orgs,
    }[kind]
    assert listed(client, as_user(user), path, **params) == {table[k] for k in keys}


UNIT_FILTERED = [
    "grids",
    "households",
    "members",
    "party-orgs",
    "contacts",
    "contacts/uncovered",
    "issues/kpis",
]


@pytest.mark.parametrize("path", UNIT_FILTERED)
@pytest.mark.parametrize(
    ("user", "code"),
    [
        ("town_a", VILLAGE_C),  # another township's village
        ("village_a", VILLAGE_B),  # a sibling village
        ("village_a", TOWN_A),  # an ancestor is outside the subtree too (as /units/{code})
        ("grid_a1", COUNTY),
        ("county", "439903"),  # another county
        ("county", "439902100299"),  # no such village
    ],
)
def test_unit_filter_outside_scope_or_unknown_is_404(client, as_user, user, code, path):
    """Not an empty page or zeros: the unit is not found for this caller (D12)."""
    r = client.get(f"{API}/{path}", params={"unit_code": code}, headers=as_user(user))
    body = assert_problem(r, 404, "not_found")
    assert code in body["detail"]


@pytest.mark.parametrize("path", UNIT_FILTERED)
@pytest.mark.parametrize(("user", "code"), [("village_a", VILLAGE_A), ("grid_a1", VILLAGE_A)])
def test_unit_filter_of_own_unit_answers(client, as_user, user, code, path):
    r = client.get(f"{API}/{path}", params={"unit_code": code}, headers=as_user(user))
    assert r.status_code == 200, r.text


def test_kpis_unit_filter_takes_grid_codes_of_the_scope(client, as_user):
    r = client.get(
        f"{API}/issues/kpis", params={"unit_code": GRID_A1}, headers=as_user("village_a")
    )
    assert r.status_code == 200 and r.json()["unit_code"] == GRID_A1
    r = client.get(
        f"{API}/issues/kpis", params={"unit_code": GRID_B1}, headers=as_user("village_a")
    )
    assert_problem(r, 404, "not_found")


def test_bad_bbox_is_problem(client, as_user):
    r = client.get(f"{API}/households?bbox=1,2,3", headers=as_user("county"))
    body = assert_problem(r, 422, "invalid_bbox")
    assert body["errors"][0]["loc"] == ["query", "bbox"]


# -- keyset pagination --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "path"),
    [
        ("county", "households"),
        ("county", "grids"),
        ("county", "units"),
        ("county", "party-orgs"),
        ("county", "members"),
        ("town_a", "households"),
        ("county", "households?unit_code=" + VILLAGE_A),
        ("county", "households?tag=低保户"),
    ],
)
def test_keyset_pagination_walks_every_item_once(client, as_user, user, path):
    headers = as_user(user)
    sep = "&" if "?" in path else "?"
    everything = ids(walk(client, f"{API}/{path}{sep}limit=1000", headers))
    assert everything, path
    pages: list[list[Any]] = []
    url: str | None = f"{API}/{path}{sep}limit=2"
    while url:
        body = client.get(url, headers=headers).json()
        assert len(body["items"]) <= 2
        pages.append(ids(body["items"]))
        url = body["next"]
        assert len(pages) <= len(everything), "pagination does not end"
    walked = [i for page in pages for i in page]
    assert walked == everything  # same order, each exactly once
    assert len(pages) == max(1, -(-len(everything) // 2))  # no empty trailing page


def test_bad_cursor_is_problem(client, as_user):
    r = client.get(f"{API}/households?cursor=not-a-cursor", headers=as_user("county"))
    body = assert_problem(r, 422, "invalid_cursor")
    assert body["errors"][0]["loc"] == ["query", "cursor"]
