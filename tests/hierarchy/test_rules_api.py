"""The write rules of DESIGN §2 for units and grids, proven through the HTTP API.

Each rule gets an input that breaks it and an assertion on the problem+json body; the rules
that have a tolerance also get an input just inside it that must be accepted. New grids go into
南村 (439902101201), whose east half (111.15–111.20) no grid covers yet.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from gridgov.config import get_settings
from gridgov.geo import CoordSys, convert
from tests.fixtures.world import GRID_A1, GRID_C1, TOWN_B, VILLAGE_A, VILLAGE_C

PROBLEM = "application/problem+json"
CJK = re.compile(r"[\u4e00-\u9fff]")
# Metres → degrees near 26°N (the world county): 1° lat ≈ 110.9 km, 1° lon ≈ 100.1 km.
M_PER_DEG_LAT = 110_900.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(26.05))

FREE = (111.15, 26.0, 111.2, 26.1)  # the part of 南村 outside every grid
NEW_GRID = VILLAGE_C + "002"


def ring(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def polygon(*bounds: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [ring(*bounds)]}


def grid_body(code: str = NEW_GRID, geometry: Any = None, **extra: Any) -> dict[str, Any]:
    return {"code": code, "name": "南村第二网格", "geometry": geometry or polygon(*FREE), **extra}


def assert_problem(r, status: int, code: str, *, field: str | None = None) -> dict[str, Any]:
    """The RFC 9457 body: type/title/status/code/detail, and an error naming ``field``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith("/" + code)
    assert CJK.search(body["title"]) and CJK.search(body["detail"])
    if field is not None:
        named = [e for e in body["errors"] if e["loc"][-1] == field or field in e["loc"]]
        assert named, body["errors"]
        for e in named:
            assert CJK.search(e["msg"]), e
            assert re.fullmatch(r"[a-z][a-z0-9_]*", e["code"]), e
    return body


def error_codes(body: dict[str, Any]) -> set[str]:
    return {e["code"] for e in body.get("errors", [])}


def grid_id(client, headers, code: str) -> int:
    r = client.get("/api/v1/grids", params={"q": code, "geometry": "false"}, headers=headers)
    assert r.status_code == 200, r.text
    return next(i["id"] for i in r.json()["items"] if i["code"] == code)


@pytest.fixture
def county(as_user) -> dict[str, str]:
    return as_user("county")


# -- geometry ---------------------------------------------------------------------------------


def test_self_intersecting_polygon_is_rejected_with_postgis_reason(client, county):
    bow_tie = {
        "type": "Polygon",
        "coordinates": [[[111.16, 26.01], [111.19, 26.09], [111.19, 26.01], [111.16, 26.09],
                         [111.16, 26.01]]],
    }  # fmt: skip
    r = client.post("/api/v1/grids", json=grid_body(geometry=bow_tie), headers=county)
    body = assert_problem(r, 422, "invalid_geometry", field="geometry")
    (err,) = body["errors"]
    assert err["loc"] == ["body", "geometry"]
    assert "Self-intersection" in err["msg"] and err["msg"].startswith("几何无效")


def test_geometry_outside_china_is_rejected(client, county):
    r = client.post(
        "/api/v1/grids", json=grid_body(geometry=polygon(10, 50, 10.1, 50.1)), headers=county
    )
    body = assert_problem(r, 422, "outside_china", field="geometry")
    assert body["errors"][0]["loc"] == ["body", "geometry"]


def test_swapped_lat_lon_is_named(client, county):
    x0, y0, x1, y1 = FREE
    swapped = {"type": "Polygon", "coordinates": [[[y, x] for x, y in ring(x0, y0, x1, y1)]]}
    r = client.post("/api/v1/grids", json=grid_body(geometry=swapped), headers=county)
    body = assert_problem(r, 422, "lat_lon_swapped", field="geometry")
    assert "经纬度" in body["errors"][0]["msg"]


def test_point_is_not_a_grid_geometry(client, county):
    point = {"type": "Point", "coordinates": [111.17, 26.05]}
    r = client.post("/api/v1/grids", json=grid_body(geometry=point), headers=county)
    body = assert_problem(r, 422, "validation_error", field="geometry")
    (err,) = body["errors"]
    assert err["loc"] == ["body", "geometry"] and err["code"] == "geometry_type"
    assert "Polygon" in err["msg"]


@pytest.mark.parametrize(
    "coordinates",
    [
        [[["111.16", "abc"], [111.19, 26.01], [111.19, 26.09], [111.16, 26.01]]],  # not numbers
        [[[111.16], [111.19, 26.01], [111.19, 26.09], [111.16, 26.01]]],  # a 1-number position
        "111.16 26.01, 111.19 26.01",  # WKT-ish text
    ],
)
def test_unparsable_coordinates_name_the_geometry(client, county, coordinates):
    geometry = {"type": "Polygon", "coordinates": coordinates}
    r = client.post("/api/v1/grids", json=grid_body(geometry=geometry), headers=county)
    body = assert_problem(r, 422, "validation_error", field="geometry")
    assert all(e["loc"][:2] == ["body", "geometry"] for e in body["errors"])


def test_ring_too_short_and_unclosed_is_named_for_both(client, county):
    geometry = {"type": "Polygon", "coordinates": [[[111.16, 26.01], [111.19, 26.01]]]}
    r = client.post("/api/v1/grids", json=grid_body(geometry=geometry), headers=county)
    body = assert_problem(r, 422, "rule_violation", field="geometry")
    assert {e["code"] for e in body["errors"]} == {"ring_not_closed", "ring_too_short"}
    assert all(e["loc"] == ["body", "geometry"] for e in body["errors"])


def test_unclosed_ring_is_ring_not_closed_without_library_text(client, county):
    coordinates = [[[111.16, 26.01], [111.19, 26.01], [111.19, 26.05], [111.16, 26.05]]]
    r = client.post(
        "/api/v1/grids",
        json=grid_body(geometry={"type": "Polygon", "coordinates": coordinates}),
        headers=county,
    )
    body = assert_problem(r, 422, "ring_not_closed", field="geometry")
    assert "Exception" not in body["detail"] and "\n" not in body["detail"]
    assert all("Exception" not in e["msg"] for e in body["errors"])


def test_outside_china_and_self_intersecting_are_both_named(client, county):
    bowtie = [[[150.0, 26.0], [150.1, 26.1], [150.1, 26.0], [150.0, 26.1], [150.0, 26.0]]]
    r = client.post(
        "/api/v1/grids",
        json=grid_body(geometry={"type": "Polygon", "coordinates": bowtie}),
        headers=county,
    )
    body = assert_problem(r, 422, "rule_violation", field="geometry")
    assert {e["code"] for e in body["errors"]} == {"outside_china", "invalid_geometry"}
    invalid = next(e for e in body["errors"] if e["code"] == "invalid_geometry")
    assert "Self-intersection" in invalid["detail_en"]


# -- within the village, no overlap with siblings ----------------------------------------------


def test_grid_beyond_village_tolerance_is_rejected(client, county):
    tol = get_settings().rules.grid_outside_village_m
    x0, y0, x1, y1 = FREE
    beyond = x1 + (tol * 5 + 20) / M_PER_DEG_LON  # clearly past the village's east edge
    r = client.post(
        "/api/v1/grids", json=grid_body(geometry=polygon(x0, y0, beyond, y1)), headers=county
    )
    body = assert_problem(r, 422, "outside_parent", field="geometry")
    assert VILLAGE_C in body["errors"][0]["msg"]


def test_grid_within_village_tolerance_is_accepted(client, county):
    tol = get_settings().rules.grid_outside_village_m
    assert tol > 0
    x0, y0, x1, y1 = FREE
    within = x1 + (tol * 0.3) / M_PER_DEG_LON
    r = client.post(
        "/api/v1/grids", json=grid_body(geometry=polygon(x0, y0, within, y1)), headers=county
    )
    assert r.status_code == 201, r.text
    assert r.json()["code"] == NEW_GRID


def test_overlapping_sibling_is_rejected_and_named(client, county):
    x0, y0, x1, y1 = FREE
    overlapping = polygon(x0 - 0.01, y0, x1, y1)  # 0.01° into 南村第一网格
    r = client.post("/api/v1/grids", json=grid_body(geometry=overlapping), headers=county)
    body = assert_problem(r, 422, "overlaps_sibling", field="geometry")
    assert GRID_C1 in body["errors"][0]["msg"]


def test_overlap_within_tolerance_is_accepted(client, county):
    tol = get_settings().rules.sibling_overlap_m2
    # A sliver 0.5 m wide and 0.5·tol m long over the shared edge: ≈ 0.25·tol m².
    x0, y0, x1, y1 = FREE
    dx = 0.5 / M_PER_DEG_LON
    dy = (0.5 * tol) / M_PER_DEG_LAT
    sliver = {
        "type": "Polygon",
        "coordinates": [
            [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0 + dy], [x0 - dx, y0 + dy],
             [x0 - dx, y0], [x0, y0]]
        ],
    }  # fmt: skip
    r = client.post("/api/v1/grids", json=grid_body(geometry=sliver), headers=county)
    assert r.status_code == 201, r.text


def test_touching_siblings_are_accepted(client, county):
    r = client.post("/api/v1/grids", json=grid_body(), headers=county)  # shares 111.15 with C1
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["village_code"] == VILLAGE_C and body["kind"] == "general"


# -- codes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["43990210120100", "4399021012010021", "43990210120100x"])
def test_grid_code_must_be_15_digits(client, county, code):
    r = client.post("/api/v1/grids", json=grid_body(code=code), headers=county)
    body = assert_problem(r, 422, "validation_error", field="code")
    assert body["errors"][0]["loc"] == ["body", "code"]


def test_grid_serial_000_is_rejected(client, county):
    r = client.post("/api/v1/grids", json=grid_body(code=VILLAGE_C + "000"), headers=county)
    body = assert_problem(r, 422, "invalid_serial", field="code")
    assert "001" in body["errors"][0]["msg"]


def test_grid_of_unknown_village_is_not_found(client, county):
    r = client.post("/api/v1/grids", json=grid_body(code=TOWN_B + "299001"), headers=county)
    body = assert_problem(r, 404, "parent_not_found", field="code")
    assert TOWN_B + "299" in body["detail"]


def test_grid_in_village_outside_scope_is_not_found(client, as_user):
    r = client.post("/api/v1/grids", json=grid_body(), headers=as_user("village_a"))
    body = assert_problem(r, 404, "parent_not_found")
    # The same answer as for a village that does not exist: nothing about 南村 leaks.
    assert "边界" not in body["detail"]


def test_duplicate_grid_code_is_taken(client, county):
    r = client.post("/api/v1/grids", json=grid_body(code=GRID_C1), headers=county)
    body = assert_problem(r, 422, "code_taken", field="code")
    assert GRID_C1 in body["errors"][0]["msg"]


def test_dedicated_serial_gives_dedicated_kind(client, county):
    r = client.post("/api/v1/grids", json=grid_body(code=VILLAGE_C + "901"), headers=county)
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "dedicated"
    r = client.get("/api/v1/grids", params={"kind": "dedicated"}, headers=county)
    assert [i["code"] for i in r.json()["items"]] == [VILLAGE_C + "901"]


def test_village_code_must_match_an_existing_township(client, county):
    body = {"code": "439902109201", "name": "新村", "geometry": polygon(111.1, 26.1, 111.2, 26.2)}
    r = client.post("/api/v1/units", json=body, headers=county)
    problem = assert_problem(r, 404, "parent_not_found", field="code")
    assert "439902109" in problem["detail"]


def test_village_within_its_township_is_created(client, county):
    body = {"code": TOWN_B + "202", "name": "北村", "geometry": polygon(111.1, 26.1, 111.2, 26.2)}
    r = client.post("/api/v1/units", json=body, headers=county)
    assert r.status_code == 201, r.text
    assert r.json()["parent_code"] == TOWN_B and r.json()["level"] == "village"


def test_village_overlapping_a_sibling_is_rejected(client, county):
    body = {"code": TOWN_B + "202", "name": "北村", "geometry": polygon(111.1, 26.05, 111.2, 26.2)}
    r = client.post("/api/v1/units", json=body, headers=county)
    problem = assert_problem(r, 422, "overlaps_sibling", field="geometry")
    assert VILLAGE_C in problem["errors"][0]["msg"]


# -- edits ------------------------------------------------------------------------------------


def test_moving_a_grid_boundary_rederives_households(client, county, world):
    gap = world.households["C-gap"]
    r = client.get(f"/api/v1/households/{gap}", headers=county)
    assert r.json()["grid_code"] is None and "outside_grid" in r.json()["flags"]

    c1 = world.grids[GRID_C1]
    version = client.get(f"/api/v1/grids/{c1}", headers=county).json()["version"]
    r = client.patch(
        f"/api/v1/grids/{c1}",
        json={"geometry": polygon(111.1, 26.0, 111.2, 26.1), "version": version},
        headers=county,
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == version + 1
    assert r.json()["household_count"] == 2

    r = client.get(f"/api/v1/households/{gap}", headers=county)
    assert r.json()["grid_code"] == GRID_C1 and "outside_grid" not in r.json()["flags"]

    # And back: shrinking the grid flags the household again.
    r = client.patch(
        f"/api/v1/grids/{c1}", json={"geometry": polygon(111.1, 26.0, 111.15, 26.1)}, headers=county
    )
    assert r.status_code == 200, r.text
    r = client.get(f"/api/v1/households/{gap}", headers=county)
    assert r.json()["grid_code"] is None and "outside_grid" in r.json()["flags"]


def test_patch_with_stale_version_is_a_conflict(client, county, world):
    a1 = world.grids[GRID_A1]
    current = client.get(f"/api/v1/grids/{a1}", headers=county).json()["version"]
    r = client.patch(
        f"/api/v1/grids/{a1}", json={"name": "改名", "version": current}, headers=county
    )
    assert r.status_code == 200, r.text
    r = client.patch(
        f"/api/v1/grids/{a1}", json={"name": "再改名", "version": current}, headers=county
    )
    body = assert_problem(r, 409, "version_conflict")
    assert body["current_version"] == current + 1


def test_patch_unit_with_stale_version_is_a_conflict(client, county):
    r = client.patch(
        f"/api/v1/units/{VILLAGE_A}", json={"name": "东村", "version": 999}, headers=county
    )
    assert_problem(r, 409, "version_conflict")


def test_patch_grid_geometry_checks_rules_too(client, county, world):
    a1 = world.grids[GRID_A1]
    r = client.patch(
        f"/api/v1/grids/{a1}", json={"geometry": polygon(111.0, 26.0, 111.06, 26.1)}, headers=county
    )
    body = assert_problem(r, 422, "overlaps_sibling", field="geometry")
    assert VILLAGE_A + "002" in body["errors"][0]["msg"]


# -- coordinate systems ------------------------------------------------------------------------


def test_grid_in_gcj02_is_stored_in_wgs84_and_read_back_in_either(client, county):
    x0, y0, x1, y1 = FREE
    gx, gy = convert([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], CoordSys.wgs84, CoordSys.gcj02)
    gcj_ring = [[float(x), float(y)] for x, y in zip(gx, gy, strict=True)]
    r = client.post(
        "/api/v1/grids",
        params={"coord_sys": "gcj02"},
        json=grid_body(geometry={"type": "Polygon", "coordinates": [gcj_ring]}),
        headers=county,
    )
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    stored = client.get(f"/api/v1/grids/{gid}", headers=county).json()["geometry"]
    xs = [p[0] for p in stored["coordinates"][0][0]]
    ys = [p[1] for p in stored["coordinates"][0][0]]
    assert min(xs) == pytest.approx(x0, abs=2e-6) and max(xs) == pytest.approx(x1, abs=2e-6)
    assert min(ys) == pytest.approx(y0, abs=2e-6) and max(ys) == pytest.approx(y1, abs=2e-6)

    out = client.get(f"/api/v1/grids/{gid}", params={"coord_sys": "gcj02"}, headers=county)
    pts = out.json()["geometry"]["coordinates"][0][0]
    for x, y in pts:
        wx, wy = convert(x, y, CoordSys.gcj02, CoordSys.wgs84)
        assert any(
            abs(wx - sx) < 2e-6 and abs(wy - sy) < 2e-6 for sx, sy in zip(xs, ys, strict=True)
        )
    # GCJ-02 is several hundred metres off WGS84 here: the output really was converted.
    assert max(abs(p[0] - x0) for p in pts if p[0] < (x0 + x1) / 2) > 1e-4

    listed = client.get(
        "/api/v1/grids", params={"coord_sys": "gcj02", "q": NEW_GRID}, headers=county
    ).json()["items"]
    assert listed[0]["geometry"]["coordinates"][0][0][0] == pytest.approx(pts[0], abs=1e-6)


# -- garbage never gives a 500 ----------------------------------------------------------------

_SQUARE = ring(*FREE)
GARBAGE_GEOMETRIES: list[Any] = [
    None,
    "POLYGON((111 26, 111.1 26, 111.1 26.1, 111 26))",
    {"type": "Polygon"},
    {"type": "Polygon", "coordinates": []},
    {"type": "Polygon", "coordinates": [[]]},
    {"type": "Polygon", "coordinates": [[[111.16, 26.01]] * 5]},  # all points equal
    {"type": "Polygon", "coordinates": [[[1e308, 1e308], [-1e308, 1e308], [0, 0], [1e308, 1e308]]]},
    {"type": "Polygon", "coordinates": [[[10**400, 26.0], [111.2, 26.0], [111.2, 26.1], [0, 0]]]},
    {"type": "Polygon", "coordinates": [_SQUARE], "crs": {"type": "name"}, "bbox": "x"},
    {"type": "MultiPolygon", "coordinates": [_SQUARE]},  # one nesting level short
    {"type": "MultiPolygon", "coordinates": [[[[[111.16, 26.01]]]]]},  # one too deep
    {"type": "GeometryCollection", "geometries": [{"type": "Polygon", "coordinates": [_SQUARE]}]},
    {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [_SQUARE]}},
    {"type": "Polygon", "coordinates": [_SQUARE, [[0, 0], [1, 1], [0, 1], [0, 0]]]},  # far hole
    {"type": "Polygon", "coordinates": [_SQUARE * 2000]},
    {"type": ["Polygon"], "coordinates": [_SQUARE]},
    {"type": "Polygon", "coordinates": [[[True, False], [1, 2], [3, 4], [True, False]]]},
]
GARBAGE_BODIES: list[Any] = [
    None,
    [],
    "grid",
    3.5,
    {"code": 439902101201002, "name": "x", "geometry": polygon(*FREE)},
    {"code": NEW_GRID, "name": {"zh": "x"}, "geometry": polygon(*FREE)},
    {"code": NEW_GRID, "name": "", "geometry": polygon(*FREE)},
    {"code": NEW_GRID, "name": "x" * 5000, "geometry": polygon(*FREE)},
    {"code": NEW_GRID, "name": "x\x00", "geometry": polygon(*FREE)},
    {"code": NEW_GRID, "name": "x", "geometry": polygon(*FREE), "chief_member_id": 2**70},
    {"code": NEW_GRID, "name": "x", "geometry": polygon(*FREE), "chief_member_id": -5},
    {"code": NEW_GRID, "name": "x", "geometry": polygon(*FREE), "chief_member_id": 987654},
    {"name": "x", "version": 2**80},
    {"name": "x", "version": "one"},
    {"unit_code": VILLAGE_C, "name": "x", "kind": "branch", "secretary_phone": "1" * 5000},
    {"a": {"b": {"c": [[[[[[{}]]]]]]}}},
]
RAW_BODIES: list[bytes] = [
    b'{"code": "439902101201002", "name": "x", "geometry": {"type": "Polygon", "coordinates": '
    b"[[[NaN, 26.0], [111.2, 26.0], [111.2, 26.1], [NaN, 26.0]]]}}",
    b'{"code": "439902101201002", "name": "x", "geometry": {"type": "Polygon", "coordinates": '
    b"[[[111.15, Infinity], [111.2, 26.0], [111.2, 26.1], [111.15, Infinity]]]}}",
    b'{"code": "439902101201002", "name": "x", "geometry": {"type": "Polygon", "coordinates": '
    b"[[[111.15, 1e999], [111.2, 26.0], [111.2, 26.1], [111.15, 1e999]]]}}",
    b'{"name": "x", "geometry": {"type": "MultiPolygon", "coordinates": [[[[-Infinity, 0]]]]}}',
    b"{",
    b"",
    b"\xff\xfe",
    b"[" * 3000 + b"]" * 3000,
]


def test_garbage_is_never_a_server_error(client, county, world):
    grid, org = world.grids[GRID_A1], world.orgs[VILLAGE_A]
    area_writes = [
        ("POST", "/api/v1/grids", {"code": NEW_GRID, "name": "x"}),
        ("PATCH", f"/api/v1/grids/{grid}", {}),
        ("POST", "/api/v1/units", {"code": TOWN_B + "202", "name": "x"}),
        ("PATCH", f"/api/v1/units/{VILLAGE_A}", {}),
    ]
    targets = [(m, u) for m, u, _ in area_writes]
    targets += [("POST", "/api/v1/party-orgs"), ("PATCH", f"/api/v1/party-orgs/{org}")]
    requests: list[tuple[str, str, Any]] = [(m, u, b) for m, u in targets for b in GARBAGE_BODIES]
    requests += [
        (m, u, {**fields, "geometry": g})
        for m, u, fields in area_writes
        for g in GARBAGE_GEOMETRIES
    ]
    failures = []
    for method, url, body in requests:
        r = client.request(method, url, json=body, headers=county)
        problem = r.headers["content-type"].startswith(PROBLEM)
        if r.status_code >= 500 or (r.status_code >= 400 and not problem):
            failures.append((method, url, body, r.status_code, r.text[:300]))
    for method, url in targets:
        for raw in RAW_BODIES:
            r = client.request(
                method, url, content=raw, headers={**county, "content-type": "application/json"}
            )
            if not 400 <= r.status_code < 500:
                failures.append((method, url, raw[:100], r.status_code, r.text[:300]))
    assert not failures


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/grids/{2**63}",
        "/api/v1/grids/0",
        "/api/v1/party-orgs/99999999999999999999",
        "/api/v1/units/%00",
        "/api/v1/units/12345",
        "/api/v1/grids?cursor=WyJhIl0",
        "/api/v1/grids?q=%00",
        "/api/v1/units?q=%00&bbox=1,2,3",
        "/api/v1/units?bbox=111,26,NaN,27",
        "/api/v1/party-orgs?q=%00",
    ],
)
def test_garbage_paths_are_client_errors(client, county, path):
    r = client.get(path, headers=county)
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith(PROBLEM)


def test_extreme_bbox_in_bd09_is_answered(client, county, world):
    r = client.get(
        "/api/v1/grids",
        params={"coord_sys": "bd09", "bbox": "-1e308,-1e308,1e308,1e308", "geometry": "false"},
        headers=county,
    )
    assert r.status_code == 200, r.text
    assert {i["code"] for i in r.json()["items"]} == set(world.grids)


def test_import_areas_with_nul_or_overlong_names_are_reported_not_crashed(session, world):
    """The service path imports use: such names are reported per row, never sent to COPY."""
    from gridgov.hierarchy.rules import AreaRow
    from gridgov.hierarchy.service import write_grids
    from tests.fixtures.world import box

    rows = [
        AreaRow(0, NEW_GRID, "南村\x00网格", box(111.15, 26.0, 111.17, 26.1)),
        AreaRow(1, VILLAGE_C + "003", "格" * 101, box(111.17, 26.0, 111.2, 26.1)),
    ]
    written = write_grids(session, None, rows, county_code="439902")
    assert written.ids == []
    assert {(e.index, e.loc[-1], e.code) for e in written.errors} == {
        (0, "name", "nul_character"),
        (1, "name", "name_too_long"),
    }
