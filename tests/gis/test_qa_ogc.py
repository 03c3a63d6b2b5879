"""Spatial QA as OGC API collections (qa_<check>): the same query per check as /api/v1/qa, so the
same findings with the same attributes, in the caller's scope, paged, filtered, one by one.

Item pages stream through their own connection, so the crafted findings are committed (fixture
``crafted_qa`` in conftest.py) and undone when the module ends.
"""

from __future__ import annotations

from typing import Any

import pytest

from gridgov.gis.qa import CHECK_IDS
from tests.fixtures.world import GRID_A1, GRID_A2, GRID_B1, VILLAGE_A, VILLAGE_B, VILLAGE_C

pytestmark = pytest.mark.usefixtures("crafted_qa")

EXPECTED = {
    "grid_overlaps": 3,
    "grid_gaps": 1,
    "grids_outside_village": 1,
    "households_outside_grids": 1,
    "households_far_from_grid": 1,
    "members_far_from_households": 1,
    "units_without_boundary": 1,
}


def features_of(client: Any, headers: dict[str, str], url: str) -> list[dict[str, Any]]:
    features: list[dict[str, Any]] = []
    pages = 0
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/geo+json")
        page = response.json()
        assert page["numberReturned"] == len(page["features"])
        features += page["features"]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        pages += 1
        assert pages < 50
    return features


def _props(features: list[dict[str, Any]]) -> list[str]:
    return sorted(repr(sorted(f["properties"].items())) for f in features)


@pytest.mark.parametrize("check", CHECK_IDS)
@pytest.mark.parametrize("user", ["county", "village_a", "village_b", "grid_a1"])
def test_collection_gives_what_the_qa_endpoint_gives(client, as_user, check: str, user: str):
    headers = as_user(user)
    qa = client.get(f"/api/v1/qa/{check}", headers=headers).json()
    if user == "county":
        assert qa["total"] == EXPECTED[check]
    features = features_of(client, headers, f"/ogc/collections/qa_{check}/items?limit=1")
    assert len(features) == qa["total"]
    assert _props(features) == _props(qa["features"])

    def kinds(features: list[dict[str, Any]]) -> list[str]:
        return sorted(f["geometry"]["type"] if f["geometry"] else "null" for f in features)

    assert kinds(features) == kinds(qa["features"])
    ids = [f["id"] for f in features]
    assert all(isinstance(i, int) for i in ids) and ids == sorted(set(ids))


def test_scope_of_the_qa_collections(client, as_user):
    def codes(user: str, check: str, prop: str) -> list[str]:
        url = f"/ogc/collections/qa_{check}/items"
        return sorted(f["properties"][prop] for f in features_of(client, as_user(user), url))

    assert codes("county", "grid_overlaps", "grid_code") == sorted([GRID_A1, GRID_A2, GRID_B1])
    assert codes("village_b", "grid_overlaps", "grid_code") == [GRID_B1]
    assert codes("grid_a1", "grid_overlaps", "grid_code") == [GRID_A1]
    assert codes("village_a", "grid_gaps", "village_code") == []
    assert codes("county", "grid_gaps", "village_code") == [VILLAGE_C]
    assert codes("village_a", "grids_outside_village", "grid_code") == []
    assert codes("village_b", "grids_outside_village", "grid_code") == [VILLAGE_B + "002"]


def test_collection_documents_items_and_filters(client, as_user, world):
    headers = as_user("county")
    doc = client.get("/ogc/collections/qa_grid_overlaps", headers=headers).json()
    assert doc["id"] == "qa_grid_overlaps" and "网格重叠" in doc["title"]
    assert "grid_code" in doc["description"] and "extent" not in doc
    base = "/ogc/collections/qa_grid_overlaps/items"
    mine = features_of(client, headers, f"{base}?grid_code={GRID_A1}")
    assert [f["properties"]["other_code"] for f in mine] == [VILLAGE_A + "003"]
    assert mine[0]["properties"]["area_m2"] > 1_000_000  # 0.01° × 0.01°
    one = client.get(f"{base}/{mine[0]['id']}", headers=headers)
    assert one.status_code == 200 and one.json()["properties"] == mine[0]["properties"]
    assert client.get(f"{base}/{mine[0]['id']}", headers=as_user("village_b")).status_code == 404
    assert client.get(f"{base}/12345", headers=headers).status_code == 404
    # bbox: only 东村-001's half of the overlap with 东村-003 lies west of 111.045.
    west = features_of(client, headers, f"{base}?bbox=111.04,26.0,111.045,26.01")
    assert [f["properties"]["grid_code"] for f in west] == [GRID_A1]
    assert len(features_of(client, headers, f"{base}?datetime=2000-01-01T00:00:00Z/..")) == 3
    assert features_of(client, headers, f"{base}?datetime=../2000-01-01T00:00:00Z") == []
    html = client.get(f"{base}?f=html", headers=headers)
    assert html.status_code == 200 and GRID_A1 in html.text
    bad = client.get(f"{base}?min_area=5", headers=headers)
    assert bad.status_code == 400 and bad.json()["code"] == "unknown_parameter"
    far = features_of(client, headers, "/ogc/collections/qa_households_far_from_grid/items")
    assert [f["id"] for f in far] == [world.households["A1-1"]]
    line = features_of(client, headers, "/ogc/collections/qa_members_far_from_households/items")
    assert line[0]["geometry"]["type"] == "LineString"
    assert line[0]["properties"]["household_id"] == world.households["A2-2"]


def test_qa_layers_are_neither_tiles_nor_exports(client, as_user):
    headers = as_user("county")
    assert client.get("/tiles/qa_grid_overlaps/0/0/0.mvt", headers=headers).status_code == 422
    export = client.get("/api/v1/exports/qa_grid_overlaps.geojson", headers=headers)
    assert export.status_code == 422
