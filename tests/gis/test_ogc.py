"""OGC API – Features: documents, item pages (streamed from PostGIS), filters, scope, errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from gridgov.dashboard import rollups
from tests.fixtures.world import GRID_A1, HOUSEHOLDS, VILLAGE_A, VILLAGE_C, World


def all_features(client: Any, headers: dict[str, str], url: str) -> list[dict[str, Any]]:
    features: list[dict[str, Any]] = []
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/geo+json")
        page = response.json()
        assert page["numberReturned"] == len(page["features"])
        features += page["features"]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    return features


def test_anonymous_gets_401(client):
    assert client.get("/ogc/collections/grids/items").status_code == 401


def test_landing_and_conformance(client, as_user):
    body = client.get("/ogc", headers=as_user("gis")).json()
    rels = {link["rel"]: link["href"] for link in body["links"]}
    assert rels["service-desc"].endswith("/openapi.json")
    assert rels["conformance"].endswith("/ogc/conformance")
    assert rels["data"].endswith("/ogc/collections")
    conf = client.get("/ogc/conformance", headers=as_user("gis")).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf


def test_collections_list_every_layer_with_scoped_extent(client, as_user):
    docs = client.get("/ogc/collections", headers=as_user("village_a")).json()["collections"]
    by_id = {c["id"]: c for c in docs}
    layers = {"counties", "townships", "villages", "grids", "households"}
    qa_layers = {
        "qa_grid_overlaps",
        "qa_grid_gaps",
        "qa_grids_outside_village",
        "qa_households_outside_grids",
        "qa_households_far_from_grid",
        "qa_members_far_from_households",
        "qa_units_without_boundary",
    }
    assert set(by_id) == layers | qa_layers
    assert all("extent" not in by_id[c] for c in qa_layers)  # would cost running every check
    # 东村 only: its own box, not the county's.
    assert by_id["grids"]["extent"]["spatial"]["bbox"] == [[111.0, 26.0, 111.1, 26.1]]
    assert "extent" not in by_id["counties"]  # the county lies outside a village user's scope
    items = [link for link in by_id["grids"]["links"] if link["rel"] == "items"]
    assert items[0]["type"] == "application/geo+json"


def test_pages_follow_next_links_and_count_right(client, as_user, world: World):
    url = "/ogc/collections/households/items?limit=3"
    features = all_features(client, as_user("county"), url)
    assert len(features) == len(HOUSEHOLDS)
    assert sorted(f["id"] for f in features) == sorted(world.households.values())
    ids = [f["id"] for f in features]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_households_are_masked(client, as_user, world: World):
    features = all_features(client, as_user("county"), "/ogc/collections/households/items")
    text = str(features)
    for _, head, *_ in HOUSEHOLDS:
        assert head not in text
    assert "13912345678" not in text and "11010519491231002X" not in text
    by_id = {f["id"]: f for f in features}
    first = by_id[world.households["A1-1"]]
    assert first["geometry"] == {"type": "Point", "coordinates": [111.01, 26.01]}
    assert first["properties"]["grid_code"] == GRID_A1
    assert first["properties"]["tags"] == ["低保户"]
    assert set(first["properties"]) == {
        "village_code",
        "grid_code",
        "hamlet",
        "size",
        "tags",
        "flags",
        "updated_at",
    }
    gap = by_id[world.households["C-gap"]]
    assert gap["properties"]["grid_code"] is None and "outside_grid" in gap["properties"]["flags"]


@pytest.fixture
def committed_rollups(engine: Engine, world: World) -> Iterator[None]:
    """The world's rollups refreshed and committed (items stream on a connection of their
    own, which sees no uncommitted row), removed again afterwards."""
    with Session(engine) as s, s.begin():
        rollups.refresh(s)
    yield
    with Session(engine) as s, s.begin():
        for table in ("dash_status", "dash_member_status", "dash_unit_status"):
            s.execute(text(f"DELETE FROM {table}"))


def test_grids_carry_household_counts_and_ccw_rings(
    client, as_user, committed_rollups, world: World
):
    features = all_features(client, as_user("county"), "/ogc/collections/grids/items")
    counts = {f["properties"]["code"]: f["properties"]["household_count"] for f in features}
    assert counts == {GRID_A1: 4, VILLAGE_A + "002": 2, "439902100202001": 2, VILLAGE_C + "001": 1}
    ring = features[0]["geometry"]["coordinates"][0][0]
    area2 = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:], strict=False))
    assert area2 > 0  # counter-clockwise exterior (RFC 7946)


def test_scope_limits_items_and_single_item(client, as_user, world: World):
    features = all_features(client, as_user("grid_a1"), "/ogc/collections/households/items")
    assert len(features) == 4
    other = world.households["B1-1"]
    response = client.get(f"/ogc/collections/households/items/{other}", headers=as_user("grid_a1"))
    assert response.status_code == 404
    for odd in ("²", "abc", "9" * 30):
        url = f"/ogc/collections/households/items/{odd}"
        assert client.get(url, headers=as_user("county")).status_code == 404
    mine = world.households["A1-1"]
    response = client.get(f"/ogc/collections/households/items/{mine}", headers=as_user("grid_a1"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    assert response.json()["id"] == mine


def test_filters_bbox_and_datetime(client, as_user):
    h = as_user("county")
    base = "/ogc/collections/households/items"
    assert len(all_features(client, h, f"{base}?village_code={VILLAGE_C}")) == 2
    assert len(all_features(client, h, f"{base}?grid_code={GRID_A1}")) == 4
    assert len(all_features(client, h, f"{base}?tags=低保户")) == 1
    assert len(all_features(client, h, f"{base}?flags=outside_grid")) == 1
    assert len(all_features(client, h, f"{base}?bbox=111.0,26.0,111.05,26.1")) == 4
    assert len(all_features(client, h, f"{base}?datetime=2000-01-01T00:00:00Z/..")) == 10
    assert all_features(client, h, f"{base}?datetime=../2000-01-01T00:00:00Z") == []
    units = all_features(client, h, "/ogc/collections/villages/items?parent_code=439902100")
    assert sorted(f["properties"]["name"] for f in units) == ["东村", "西村"]


def test_unknown_and_bad_parameters_are_400(client, as_user):
    h = as_user("county")
    for url in (
        "/ogc/collections/households/items?head_name=王建国",
        "/ogc/collections/households/items?bbox=1,2,3",
        "/ogc/collections/households/items?datetime=yesterday",
        "/ogc/collections/households/items?cursor=@@@",
        "/ogc/collections/households/items?limit=5&limit=6",
        "/ogc/collections?foo=1",
        "/ogc?x=1",
    ):
        response = client.get(url, headers=h)
        assert response.status_code == 400, (url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert client.get("/ogc/collections/households/items?limit=10001", headers=h).status_code == 422
    assert client.get("/ogc/collections/nope/items", headers=h).status_code == 422


def test_one_bbox_parser_for_the_api_and_the_ogc_api(client, as_user):
    """One parser, one wording: the API answers 422, the OGC API 400 (its standard's
    /req/core/query-param-invalid); both name bbox with the same code and message."""
    h = as_user("county")
    for bbox in ("1,2,3", "2,0,1,1", "NaN,1,2,3"):
        api = client.get(f"/api/v1/households?bbox={bbox}", headers=h)
        ogc = client.get(f"/ogc/collections/households/items?bbox={bbox}", headers=h)
        assert (api.status_code, ogc.status_code) == (422, 400), (bbox, api.text, ogc.text)
        assert api.json()["errors"] == ogc.json()["errors"]
        assert api.json()["errors"][0]["loc"] == ["query", "bbox"]
        assert api.json()["code"] == ogc.json()["code"] == "invalid_bbox"
    # A box larger than the world (map clients send their view) is clipped, on both.
    world_box = "-200,-100,200,100"
    every = all_features(client, h, f"/ogc/collections/households/items?bbox={world_box}")
    assert len(every) == 10
    listed = client.get(f"/api/v1/households?bbox={world_box}&limit=100", headers=h)
    assert len(listed.json()["items"]) == 10
    # Heights (six numbers) are allowed by OGC API Features, and so by the API too.
    assert (
        len(
            all_features(
                client, h, "/ogc/collections/households/items?bbox=111.0,26.0,0,111.05,26.1,9"
            )
        )
        == 4
    )


def test_html_views(client, as_user, world: World):
    h = as_user("county")
    response = client.get("/ogc", headers={**h, "Accept": "text/html"})
    assert (
        response.headers["content-type"].startswith("text/html") and "collections" in response.text
    )
    response = client.get("/ogc/collections/grids/items?f=html&limit=2", headers=h)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "东村第一网格" in response.text and "next" in response.text
    response = client.get(f"/ogc/collections/grids/items/{world.grids[GRID_A1]}?f=html", headers=h)
    assert "东村第一网格" in response.text


def test_a_key_in_the_url_travels_on_every_link(client, session, world: World):
    """QGIS and GDAL users often can only edit the URL: the api_key parameter is accepted by
    every OGC and tile read and carried by the links those documents make."""
    from urllib.parse import parse_qs, urlsplit

    from gridgov.auth import api_keys

    key = api_keys.create_key(session, None, name="QGIS", username="village_a").secret

    def carries_key(href: str) -> bool:
        return parse_qs(urlsplit(href).query).get("api_key") == [key]

    for url in ("/ogc", "/ogc/conformance", "/ogc/collections", "/ogc/collections/grids"):
        response = client.get(f"{url}?api_key={key}")
        assert response.status_code == 200, (url, response.text)
        doc = response.json()
        links = doc.get("links", []) + [
            link for c in doc.get("collections", []) for link in c["links"]
        ]
        assert all(carries_key(link["href"]) for link in links), url
    landing = client.get(f"/ogc?api_key={key}&f=html")
    assert landing.status_code == 200 and f"api_key={key}" in landing.text

    # Pages: self and next keep the key; following next with nothing but the URL reaches the end.
    url: str | None = f"/ogc/collections/households/items?limit=2&api_key={key}"
    features: list[dict[str, Any]] = []
    while url:
        page = client.get(url).json()
        assert all(carries_key(link["href"]) for link in page["links"])
        features += page["features"]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert len(features) == 6  # 东村's households
    html = client.get(f"/ogc/collections/grids/items?f=html&api_key={key}").text
    assert f"?f=html&amp;api_key={key}" in html

    tilejson = client.get(f"/tiles/grids/tilejson.json?api_key={key}").json()
    assert all(carries_key(t) for t in tilejson["tiles"])
    # Without a key in the URL, no key appears in any link.
    plain = client.get("/ogc/collections", headers={"X-API-Key": key}).text
    assert "api_key" not in plain
    # Still 400 for parameters that are really unknown.
    bad = client.get(f"/ogc/collections/grids/items?api_key={key}&nonsense=1")
    assert bad.status_code == 400 and bad.json()["code"] == "unknown_parameter"
