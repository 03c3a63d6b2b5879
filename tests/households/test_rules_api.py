"""The household write rules of DESIGN §2, proven through the HTTP API (and no 500 for garbage)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gridgov.geo import CoordSys, convert
from tests.fixtures.world import GRID_A1, GRID_A2, VILLAGE_A, VILLAGE_C

PROBLEM = "application/problem+json"
CJK = re.compile(r"[\u4e00-\u9fff]")
VALID_ID = "11010519491231002X"


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def household(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "head_name": "孙丽",
        "location": point(111.02, 26.03),
        "phone": "13912345678",
        "id_number": VALID_ID,
        "size": 3,
        "tags": ["低保户"],
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not ...}


def assert_field_error(r, field: str, code: str, *, status: int = 422) -> dict[str, Any]:
    """A problem+json 4xx whose ``errors`` names ``field`` with ``code`` and a Chinese message."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status and body["type"].startswith("https://")
    assert CJK.search(body["title"]) and CJK.search(body["detail"])
    matching = [e for e in body["errors"] if e["code"] == code]
    assert matching, body["errors"]
    for e in matching:
        assert e["loc"][:1] == ["body"] and field in e["loc"], e
        assert CJK.search(e["msg"]), e
    return body


@pytest.fixture
def county(as_user) -> dict[str, str]:
    return as_user("county")


def test_valid_household_is_created_in_its_grid(client, county):
    r = client.post("/api/v1/households", json=household(), headers=county)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["grid_code"] == GRID_A1 and body["village_code"] == VILLAGE_A
    assert body["flags"] == [] and body["tags"] == ["低保户"]
    assert body["phone"] == "139****5678"  # masked on the way out


@pytest.mark.parametrize("phone", ["12345", "1391234567a", "23912345678"])
def test_bad_phone(client, county, phone):
    r = client.post("/api/v1/households", json=household(phone=phone), headers=county)
    body = assert_field_error(r, "phone", "invalid_phone")
    assert body["code"] == "validation_error"
    assert phone in body["errors"][0]["msg"]


def test_bad_id_number_check_digit(client, county):
    bad = VALID_ID[:-1] + "1"
    r = client.post("/api/v1/households", json=household(id_number=bad), headers=county)
    body = assert_field_error(r, "id_number", "invalid_id_number")
    assert "校验位" in body["errors"][0]["msg"]


def test_id_number_of_wrong_length(client, county):
    r = client.post(
        "/api/v1/households", json=household(id_number="11010519491231"), headers=county
    )
    assert_field_error(r, "id_number", "invalid_id_number")


def test_unknown_tag(client, county):
    r = client.post("/api/v1/households", json=household(tags=["低保户", "外星人"]), headers=county)
    body = assert_field_error(r, "tags", "unknown_tag")
    assert "外星人" in body["errors"][0]["msg"] and "低保户" not in body["errors"][0]["msg"]


def test_tag_alias_is_canonicalised(client, county):
    r = client.post("/api/v1/households", json=household(tags=["留守儿童"]), headers=county)
    assert r.status_code == 201, r.text
    assert r.json()["tags"] == ["留守/困境儿童"]


@pytest.mark.parametrize("size", [0, -1, 31])
def test_size_out_of_range(client, county, size):
    r = client.post("/api/v1/households", json=household(size=size), headers=county)
    code = "greater_than_equal" if size < 1 else "less_than_equal"
    assert_field_error(r, "size", code)


def test_missing_location(client, county):
    r = client.post("/api/v1/households", json=household(location=...), headers=county)
    body = assert_field_error(r, "location", "missing")
    assert body["errors"][0]["loc"] == ["body", "location"]


def test_location_must_be_a_point(client, county):
    polygon = {"type": "Polygon", "coordinates": [[[111.0, 26.0], [111.1, 26.0], [111.0, 26.1],
                                                   [111.0, 26.0]]]}  # fmt: skip
    r = client.post("/api/v1/households", json=household(location=polygon), headers=county)
    assert_field_error(r, "location", "literal_error")


def test_location_outside_china(client, county):
    r = client.post(
        "/api/v1/households", json=household(location=point(2.35, 48.85)), headers=county
    )
    assert_field_error(r, "location", "outside_china")


def test_location_lat_lon_swapped(client, county):
    r = client.post(
        "/api/v1/households", json=household(location=point(26.03, 111.02)), headers=county
    )
    body = assert_field_error(r, "location", "lat_lon_swapped")
    assert body["code"] == "lat_lon_swapped"


def test_location_outside_callers_scope(client, as_user):
    # 南村 exists, but a 东村 administrator cannot place a household there.
    r = client.post(
        "/api/v1/households",
        json=household(location=point(111.12, 26.05)),
        headers=as_user("village_a"),
    )
    body = assert_field_error(r, "location", "outside_scope")
    assert body["code"] == "outside_scope"
    assert VILLAGE_C not in r.text  # nothing about the other village leaks


def test_location_outside_every_grid_is_stored_and_flagged(client, county):
    r = client.post(
        "/api/v1/households", json=household(location=point(111.17, 26.05)), headers=county
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["village_code"] == VILLAGE_C
    assert body["grid_code"] is None and "outside_grid" in body["flags"]
    listed = client.get(
        "/api/v1/households",
        params={"flag": "outside_grid", "unit_code": VILLAGE_C},
        headers=county,
    ).json()["items"]
    assert body["id"] in {i["id"] for i in listed}


def test_moving_a_household_rederives_its_grid(client, county, world):
    hid = world.households["A1-1"]
    r = client.patch(
        f"/api/v1/households/{hid}", json={"location": point(111.07, 26.05)}, headers=county
    )
    assert r.status_code == 200, r.text
    assert r.json()["grid_code"] == GRID_A2


def test_grid_edit_rederives_household_grid(client, county, world):
    """Widen 南村's only grid over the gap: the flagged household now belongs to it."""
    gap = world.households["C-gap"]
    grid = world.grids[VILLAGE_C + "001"]
    square = [[111.1, 26.0], [111.2, 26.0], [111.2, 26.1], [111.1, 26.1], [111.1, 26.0]]
    r = client.patch(
        f"/api/v1/grids/{grid}",
        json={"geometry": {"type": "Polygon", "coordinates": [square]}},
        headers=county,
    )
    assert r.status_code == 200, r.text
    body = client.get(f"/api/v1/households/{gap}", headers=county).json()
    assert body["grid_code"] == VILLAGE_C + "001" and body["flags"] == []


def test_gcj02_input_is_stored_as_wgs84(client, county):
    # Near the 东村 grid boundary (111.05): un-converted, the GCJ-02 point would fall in grid 002.
    wgs = (111.048, 26.03)
    gx, gy = convert(*wgs, CoordSys.wgs84, CoordSys.gcj02)
    assert gx > 111.05
    r = client.post(
        "/api/v1/households",
        params={"coord_sys": "gcj02"},
        json=household(location=point(gx, gy)),
        headers=county,
    )
    assert r.status_code == 201, r.text
    assert r.json()["grid_code"] == GRID_A1
    hid = r.json()["id"]
    stored = client.get(f"/api/v1/households/{hid}", headers=county).json()["location"]
    expected = convert(gx, gy, CoordSys.gcj02, CoordSys.wgs84)
    assert stored["coordinates"] == pytest.approx(list(expected), abs=1e-7)
    assert stored["coordinates"] == pytest.approx(list(wgs), abs=1e-6)


def test_gcj02_output_is_converted(client, county, world):
    hid = world.households["A1-1"]  # stored at 111.01, 26.01 (WGS84)
    r = client.get(f"/api/v1/households/{hid}", params={"coord_sys": "gcj02"}, headers=county)
    assert r.status_code == 200, r.text
    expected = convert(111.01, 26.01, CoordSys.wgs84, CoordSys.gcj02)
    assert r.json()["location"]["coordinates"] == pytest.approx(list(expected), abs=1e-6)
    listed = client.get(
        "/api/v1/households", params={"coord_sys": "gcj02", "q": "A1-1"}, headers=county
    ).json()["items"]
    assert listed[0]["location"]["coordinates"] == pytest.approx(list(expected), abs=1e-6)


def test_patch_with_stale_version_is_a_conflict(client, county, world):
    hid = world.households["A1-2"]
    version = client.get(f"/api/v1/households/{hid}", headers=county).json()["version"]
    r = client.patch(
        f"/api/v1/households/{hid}", json={"size": 4, "version": version}, headers=county
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == version + 1
    r = client.patch(
        f"/api/v1/households/{hid}", json={"size": 5, "version": version}, headers=county
    )
    assert r.status_code == 409, r.text
    body = r.json()
    assert r.headers["content-type"].startswith(PROBLEM)
    assert body["code"] == "version_conflict" and body["status"] == 409
    assert body["current_version"] == version + 1 and CJK.search(body["detail"])


def test_patch_bad_phone_names_the_field(client, county, world):
    hid = world.households["A1-2"]
    r = client.patch(f"/api/v1/households/{hid}", json={"phone": "abc"}, headers=county)
    assert_field_error(r, "phone", "invalid_phone")


# -- garbage never gives a 500 ----------------------------------------------------------------

NAN_POINT = '{"head_name": "x", "location": {"type": "Point", "coordinates": [NaN, 26.0]}}'
INF_POINT = '{"head_name": "x", "location": {"type": "Point", "coordinates": [111.0, Infinity]}}'
HUGE_POINT = '{"head_name": "x", "location": {"type": "Point", "coordinates": [1e999, 26.0]}}'
GARBAGE_JSON: list[Any] = [
    None,
    [],
    "text",
    12,
    {"head_name": None},
    {"head_name": ["a"], "location": "111,26"},
    {"head_name": "x", "location": {"type": "Point"}},
    {"head_name": "x", "location": {"type": "Point", "coordinates": []}},
    {"head_name": "x", "location": {"type": "Point", "coordinates": [111.0, 26.0, 1, 2]}},
    {"head_name": "x", "location": {"type": "Point", "coordinates": [[111.0, 26.0]]}},
    {"head_name": "x", "location": {"type": "Point", "coordinates": [10**400, 26.0]}},
    {"head_name": "x", "location": {"type": "Point", "coordinates": [111.0, 26.0]}, "size": 10**30},
    {"head_name": "x", "location": {"type": "Point", "coordinates": [111.0, 26.0]}, "size": "3"},
    {"head_name": "x" * 10_000, "location": point(111.0, 26.0)},
    {"head_name": "x", "location": point(111.02, 26.03), "village_code": "9" * 12},
    {"head_name": "x", "location": point(111.02, 26.03), "tags": [{"a": 1}]},
    {"head_name": "x", "location": point(111.02, 26.03), "tags": "低保户"},
    {"head_name": "x", "location": point(111.02, 26.03), "version": 2**80},
    {"head_name": "\x00", "location": point(111.02, 26.03), "address": "a\x00b"},
    {"head_name": "x", "location": {"type": "Point", "coordinates": {"lon": 1}}, "a": {"b": [[]]}},
]
GARBAGE_RAW: list[bytes] = [
    NAN_POINT.encode(),
    INF_POINT.encode(),
    HUGE_POINT.encode(),
    b'{"head_name": "x", "location": {"type": "Point", "coordinates": [111.0, -Infinity]}}',
    b"{",
    b"",
    b"\xff\xfe{",  # not UTF-8
    b'{"head_name": "\\ud800", "location": {"type": "Point", "coordinates": [111.02, 26.03]}}',
    b"[" * 5000 + b"]" * 5000,
]


def _targets(world) -> list[tuple[str, str]]:
    return [
        ("POST", "/api/v1/households"),
        ("PATCH", f"/api/v1/households/{world.households['A1-3']}"),
    ]


def test_garbage_json_is_never_a_server_error(client, county, world):
    failures = []
    for method, url in _targets(world):
        for payload in GARBAGE_JSON:
            r = client.request(method, url, json=payload, headers=county)
            problem = r.headers["content-type"].startswith(PROBLEM)
            if r.status_code >= 500 or (r.status_code >= 400 and not problem):
                failures.append((method, payload, r.status_code, r.text[:200]))
    assert not failures


def test_garbage_bytes_are_never_a_server_error(client, county, world):
    failures = []
    for method, url in _targets(world):
        for raw in GARBAGE_RAW:
            r = client.request(
                method, url, content=raw, headers={**county, "content-type": "application/json"}
            )
            if not 400 <= r.status_code < 500 or not r.headers["content-type"].startswith(PROBLEM):
                failures.append((method, raw[:80], r.status_code, r.text[:200]))
    assert not failures


def test_nul_characters_are_named(client, county):
    r = client.post("/api/v1/households", json=household(address="村口\x00"), headers=county)
    assert_field_error(r, "address", "nul_character")
    r = client.get("/api/v1/households", params={"q": "\x00"}, headers=county)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "q"]


def test_out_of_range_ids_and_cursors_are_client_errors(client, county):
    r = client.get(f"/api/v1/households/{2**63}", headers=county)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["path", "household_id"]
    for cursor in ("WyJhIl0", "WzEsMiwzXQ", "%%%"):  # ["a"], [1,2,3], not base64
        r = client.get("/api/v1/households", params={"cursor": cursor}, headers=county)
        assert r.status_code == 422 and r.json()["code"] == "invalid_cursor", cursor


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/households/99999999999999999999999",
        "/api/v1/households/-1",
        "/api/v1/households/9223372036854775808",
        "/api/v1/households?limit=99999999999999999999",
        "/api/v1/households?cursor=%%%",
        "/api/v1/households?cursor=WzEsMiwzXQ",
        "/api/v1/households?cursor=WyJhIl0",
        "/api/v1/households?cursor=Wzk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OV0",
        "/api/v1/households?bbox=NaN,1,2,3",
        "/api/v1/households?bbox=1e999,1,2,3",
        "/api/v1/households?coord_sys=utm",
        "/api/v1/households?tag=" + "x" * 30,
        "/api/v1/households?flag=%00",
        "/api/v1/households?q=%00",
    ],
)
def test_garbage_queries_are_never_a_server_error(client, county, path):
    r = client.get(path, headers=county)
    assert r.status_code < 500, r.text


def test_import_rows_with_nul_or_overlong_text_are_reported_not_crashed(session, world):
    """The service path imports use: what the API schemas refuse must not reach COPY either."""
    from gridgov.households.service import HouseholdRow, write_households

    rows = [
        HouseholdRow(0, "王\x00五", 111.02, 26.03),
        HouseholdRow(1, "赵六", 111.02, 26.03, address="村" * 201),
        HouseholdRow(2, "钱七", 111.02, 26.03, external_id="X" * 65, size=10**12),
    ]
    result = write_households(session, None, rows, county_code="439902")
    assert result.ids == []
    found = {(e.index, e.loc[-1], e.code) for e in result.errors}
    assert (0, "head_name", "nul_character") in found
    assert (1, "address", "too_long") in found
    assert (2, "external_id", "too_long") in found
    assert (2, "size", "invalid_size") in found
