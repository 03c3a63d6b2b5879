"""Onboarding a real county: `gridgov county init` from a GCJ-02 boundary, its townships and
villages from the official code list (statistics bureau, 12-digit codes, no polygons yet),
boundaries for some villages only, households in both kinds of village, code editions, and
re-imports that never erase a boundary. Modelled on 巴林左旗 (150422), Inner Mongolia."""

from __future__ import annotations

import io
import json
from typing import Any

import openpyxl
import pytest
import shapely
from sqlalchemy import select, text
from typer.testing import CliRunner

from gridgov.auth.models import User
from gridgov.cli import app as cli
from gridgov.geo import CoordSys, transform_geometry
from gridgov.hierarchy.models import AdminUnit, DivisionCode
from tests.conftest import token_for
from tests.imports.conftest import csv_bytes, feature, geojson_bytes

runner = CliRunner()

COUNTY = "150422"
T_LINDONG, T_LONGCHANG = "150422100", "150422101"
V_EAST, V_WEST, V_LONGCHANG, V_MERGED = (
    "150422100201",
    "150422100202",
    "150422101201",
    "150422101299",
)
COUNTY_BOX = shapely.box(119.0, 43.8, 119.6, 44.2)
TOWN_BOX = {
    T_LINDONG: shapely.box(119.0, 43.8, 119.3, 44.2),
    T_LONGCHANG: shapely.box(119.3, 43.8, 119.6, 44.2),
}
VILLAGE_BOX = {
    V_EAST: shapely.box(119.0, 43.8, 119.15, 44.0),
    V_WEST: shapely.box(119.15, 43.8, 119.3, 44.0),
    V_LONGCHANG: shapely.box(119.3, 43.8, 119.45, 44.0),
}

# As the bureau publishes it (and as it is copied into a spreadsheet): 12 digits at every
# level, 城乡分类代码 for villages.
LIST_2023 = [
    ["统计用区划代码", "城乡分类代码", "名称"],
    ["150422000000", "", "巴林左旗"],
    ["150422100000", "", "林东镇"],
    ["150422100201", "111", "东城村"],
    ["150422100202", "220", "西城村"],
    ["150422101000", "", "隆昌镇"],
    ["150422101201", "220", "隆昌村"],
]
LIST_2018 = [*LIST_2023, ["150422101299", "220", "三家村"]]

UNITS = "/api/v1/imports/units"
BOUNDARIES = "/api/v1/imports/boundaries"


def post(client, url, headers, name, blob, **form):
    return client.post(url, headers=headers, files={"file": (name, blob)}, data=form)


def gcj02(geom: shapely.Geometry) -> shapely.Geometry:
    return transform_geometry(geom, CoordSys.wgs84, CoordSys.gcj02)


@pytest.fixture
def county_file(tmp_path):
    """The county as a public district GeoJSON (DataV style: adcode, name; GCJ-02)."""
    path = tmp_path / "150422.json"
    props = {"adcode": 150422, "name": "巴林左旗", "level": "district"}
    path.write_bytes(geojson_bytes([feature(props, gcj02(COUNTY_BOX))]))
    return path


def init(county_file, *extra: str):
    args = ["county", "init", "--code", COUNTY, "--name", "巴林左旗"]
    args += ["--boundary", str(county_file), "--coord-sys", "gcj02", *extra]
    return runner.invoke(cli, args)


@pytest.fixture
def zuoqi(cli_session, county_file) -> dict[str, str]:
    """The county onboarded by the CLI with its first county admin; that admin's headers."""
    result = init(county_file, "--admin", "zuoqi", "--admin-password", "Zuoqi-2026-pass")
    assert result.exit_code == 0, result.output
    user = cli_session.scalar(select(User).where(User.username == "zuoqi"))
    return {"Authorization": f"Bearer {token_for(user.id, 'county_admin')}"}


def code_list(rows: list[list[str]]) -> bytes:
    return csv_bytes(rows, "utf-8")


def unit(client, headers, code: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/units/{code}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def area_km2(session, code: str) -> float | None:
    return session.scalar(
        text(
            "SELECT ST_Area(geom::geography) / 1e6 FROM admin_units WHERE code = :c"
            " AND valid_to IS NULL"
        ),
        {"c": code},
    )


# -- the county ----------------------------------------------------------------------------------


def test_county_init_is_documented_idempotent_and_makes_its_admin(cli_session, county_file):
    assert "county" in runner.invoke(cli, ["--help"]).output
    result = init(county_file, "--admin", "zuoqi", "--admin-password", "Zuoqi-2026-pass")
    assert result.exit_code == 0, result.output
    assert "已新建县 巴林左旗（150422）" in result.output
    county = cli_session.scalar(select(AdminUnit).where(AdminUnit.code == COUNTY))
    assert county.level == "county" and county.parent_id is None
    stored = shapely.from_wkb(bytes(county.geom.data))
    # GCJ-02 in, WGS84 stored: back to the original to well under a centimetre (~1e-7°).
    assert shapely.hausdorff_distance(stored, COUNTY_BOX) < 1e-7
    admin = cli_session.scalar(select(User).where(User.username == "zuoqi"))
    assert (admin.role, admin.unit_id) == ("county_admin", county.id)

    again = init(county_file, "--admin", "zuoqi", "--admin-password", "Zuoqi-2026-pass")
    assert again.exit_code == 0, again.output
    assert "无变化" in again.output and "已存在" in again.output
    count = cli_session.scalar(
        text("SELECT count(*) FROM admin_units WHERE code = :c"), {"c": COUNTY}
    )
    assert count == 1
    renamed = runner.invoke(cli, ["county", "init", "--code", COUNTY, "--name", "巴林左旗（新）"])
    assert renamed.exit_code == 0, renamed.output
    cli_session.refresh(county)
    assert county.name == "巴林左旗（新）"
    assert county.geom is not None  # no --boundary: the stored boundary stays


def test_county_via_api_names_the_command_and_users_bind_after_init(
    client, as_user, cli_session, county_file
):
    r = client.post(
        "/api/v1/units", json={"code": COUNTY, "name": "巴林左旗"}, headers=as_user("county")
    )
    assert r.status_code == 422 and "gridgov county init" in r.json()["errors"][0]["msg"]
    assert init(county_file).exit_code == 0
    made = runner.invoke(
        cli,
        [
            "user",
            "create",
            "lin",
            "--role",
            "county_admin",
            "--unit",
            COUNTY,
            "--password",
            "Lin-2026-pass",
        ],
    )
    assert made.exit_code == 0, made.output


def test_a_second_county_stays_out_of_the_first_counties_scope(client, as_user, zuoqi):
    assert client.get(f"/api/v1/units/{COUNTY}", headers=as_user("county")).status_code == 404
    assert unit(client, zuoqi, COUNTY)["has_boundary"] is True
    mine = client.get("/api/v1/units?level=county", headers=zuoqi).json()["items"]
    assert [u["code"] for u in mine] == [COUNTY]


# -- the official code list ----------------------------------------------------------------------


def test_code_list_registers_townships_and_villages_without_boundaries(client, zuoqi, session):
    r = post(client, UNITS, zuoqi, "统计用区划代码2023.csv", code_list(LIST_2023), edition="2023")
    assert r.status_code == 201, r.text
    report = r.json()
    assert (report["created"], report["updated"], report["unchanged"]) == (5, 0, 0)
    assert report["by_level"]["township"]["created"] == 2
    assert report["by_level"]["village"]["created"] == 3
    assert report["without_boundary"] == 5 and report["errors"] == []
    village = unit(client, zuoqi, V_WEST)
    assert (village["has_boundary"], village["geometry"], village["area_km2"]) == (
        False,
        None,
        None,
    )
    assert (village["parent_code"], village["code_edition"], village["name"]) == (
        T_LINDONG,
        "2023",
        "西城村",
    )
    stored = session.scalars(
        select(DivisionCode.code).where(DivisionCode.edition == "2023").order_by(DivisionCode.code)
    ).all()
    assert stored == [COUNTY, T_LINDONG, V_EAST, V_WEST, T_LONGCHANG, V_LONGCHANG]
    urban = session.scalar(select(DivisionCode.urban_rural_code).where(DivisionCode.code == V_EAST))
    assert urban == "111"
    without = client.get("/api/v1/units?has_boundary=false", headers=zuoqi).json()["items"]
    assert len(without) == 5
    qa = client.get("/api/v1/qa/units_without_boundary", headers=zuoqi).json()
    assert qa["total"] == 5
    assert {f["properties"]["unit_code"] for f in qa["features"]} == {
        T_LINDONG,
        T_LONGCHANG,
        V_EAST,
        V_WEST,
        V_LONGCHANG,
    }
    assert all(f["geometry"] is None for f in qa["features"])


def test_code_list_without_header_as_copied_from_the_bureau_page(client, zuoqi):
    rows = [["150422100000", "林东镇"], ["150422100201", "111", "东城村"]]
    r = post(client, UNITS, zuoqi, "codes.csv", code_list(rows), dry_run="true")
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["created"]) == ("validated", 2)
    assert client.get(f"/api/v1/units/{T_LINDONG}", headers=zuoqi).status_code == 404


def test_code_list_errors_are_all_named_and_nothing_is_written(client, zuoqi):
    rows = [
        ["统计用区划代码", "名称"],
        ["150422100000", "林东镇"],
        ["15042210020", "缺一位"],
        ["150423100201", "邻旗的村"],
        ["150422105201", "乡镇不存在的村"],
    ]
    r = post(client, UNITS, zuoqi, "codes.xlsx", xlsx(rows))
    assert r.status_code == 422, r.text
    found = {(e["index"], e["code"]) for e in r.json()["errors"]}
    assert found == {(3, "invalid_code"), (4, "code_outside_county"), (5, "parent_not_found")}
    assert client.get(f"/api/v1/units/{T_LINDONG}", headers=zuoqi).status_code == 404


def xlsx(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# -- boundaries for some villages; households in both kinds ---------------------------------------


@pytest.fixture
def registered(client, zuoqi):
    r = post(client, UNITS, zuoqi, "codes.csv", code_list(LIST_2023), edition="2023")
    assert r.status_code == 201, r.text
    return zuoqi


def boundaries(rows: list[tuple[str, str, shapely.Geometry | None]]) -> bytes:
    return geojson_bytes([feature({"XZQDM": c, "XZQMC": n}, g) for c, n, g in rows])


def test_boundaries_for_some_villages_then_households_in_both(client, registered, session):
    headers = registered
    towns = [(c, n, TOWN_BOX[c]) for c, n in ((T_LINDONG, "林东镇"), (T_LONGCHANG, "隆昌镇"))]
    r = post(client, BOUNDARIES, headers, "乡镇.geojson", boundaries(towns), level="township")
    assert r.status_code == 201, r.text
    assert {c["geometry"] for c in r.json()["changes"]} == {"set"}
    r = post(
        client,
        BOUNDARIES,
        headers,
        "村界.geojson",
        boundaries([(V_EAST, "东城村", VILLAGE_BOX[V_EAST])]),
        level="village",
    )
    assert r.status_code == 201, r.text
    assert unit(client, headers, V_EAST)["has_boundary"] is True
    assert unit(client, headers, V_WEST)["has_boundary"] is False

    # A grid in a village that has no boundary yet: allowed, checked when the boundary comes.
    grid = {
        "type": "Polygon",
        "coordinates": [
            [[119.16, 43.81], [119.2, 43.81], [119.2, 43.85], [119.16, 43.85], [119.16, 43.81]]
        ],
    }
    r = client.post(
        "/api/v1/grids",
        json={"code": V_WEST + "001", "name": "西城一格", "geometry": grid},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    ledger = [
        ["户编号", "户主姓名", "村代码", "经度", "纬度"],
        ["H1", "包金山", V_EAST, 119.05, 43.85],  # bounded village, no grid yet
        ["H2", "乌云其其格", V_WEST, 119.18, 43.83],  # boundaryless village, inside its grid
        ["H3", "白音", V_LONGCHANG, 119.35, 43.9],  # boundaryless village, no grid
    ]
    r = post(client, "/api/v1/imports/households", headers, "台账.csv", csv_bytes(ledger, "utf-8"))
    assert r.status_code == 201, r.text
    households = {
        h["external_id"]: h
        for h in client.get("/api/v1/households", headers=headers).json()["items"]
    }
    assert households["H1"]["flags"] == ["outside_grid"]
    assert households["H1"]["village_code"] == V_EAST
    assert households["H2"]["flags"] == ["village_without_boundary"]
    assert households["H2"]["grid_code"] == V_WEST + "001"
    assert households["H3"]["flags"] == ["outside_grid", "village_without_boundary"]

    # The village's boundary arrives: it must hold its grid (the rule applies now) …
    small = shapely.box(119.21, 43.8, 119.3, 44.0)
    r = client.patch(
        f"/api/v1/units/{V_WEST}",
        json={"geometry": json.loads(shapely.to_geojson(small))},
        headers=headers,
    )
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert error["code"] == "child_outside_boundary" and V_WEST + "001" in error["msg"]
    # … and once it does, its households are no longer flagged.
    r = client.patch(
        f"/api/v1/units/{V_WEST}",
        json={"geometry": json.loads(shapely.to_geojson(VILLAGE_BOX[V_WEST]))},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["has_boundary"] is True
    h2 = client.get(f"/api/v1/households/{households['H2']['id']}", headers=headers).json()
    assert h2["flags"] == []
    # A grid for the last village gives H3 its grid.
    grid3 = json.loads(shapely.to_geojson(shapely.box(119.3, 43.85, 119.4, 43.95)))
    r = client.post(
        "/api/v1/grids",
        json={"code": V_LONGCHANG + "001", "name": "隆昌一格", "geometry": grid3},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    h3 = client.get(f"/api/v1/households/{households['H3']['id']}", headers=headers).json()
    assert (h3["grid_code"], h3["flags"]) == (V_LONGCHANG + "001", ["village_without_boundary"])


def test_a_township_boundary_that_would_leave_a_village_out_is_refused(client, registered):
    headers = registered
    for level, code, name, geom in (
        ("township", T_LINDONG, "林东镇", TOWN_BOX[T_LINDONG]),
        ("village", V_EAST, "东城村", VILLAGE_BOX[V_EAST]),
    ):
        r = post(
            client, BOUNDARIES, headers, "b.geojson", boundaries([(code, name, geom)]), level=level
        )
        assert r.status_code == 201, r.text
    shrunk = shapely.box(119.1, 43.8, 119.3, 44.2)
    r = post(
        client,
        BOUNDARIES,
        headers,
        "b.geojson",
        boundaries([(T_LINDONG, "林东镇", shrunk)]),
        level="township",
    )
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert (error["code"], error["index"]) == ("child_outside_boundary", 0)
    assert V_EAST in error["msg"]


# -- re-imports never destroy data silently -------------------------------------------------------


def test_reimporting_a_code_list_keeps_every_stored_boundary(client, registered, session):
    """The reported data loss: a township holding a polygon, then a FeatureCollection of the
    county's townships with ``geometry: null`` (a plain code list)."""
    headers = registered
    r = post(
        client,
        BOUNDARIES,
        headers,
        "林东镇.geojson",
        boundaries([(T_LINDONG, "林东镇", TOWN_BOX[T_LINDONG])]),
        level="township",
    )
    assert r.status_code == 201, r.text
    before = area_km2(session, T_LINDONG)
    assert before > 700
    plain = boundaries([(T_LINDONG, "林东镇", None), (T_LONGCHANG, "隆昌镇（更名）", None)])
    dry = post(client, BOUNDARIES, headers, "乡镇.geojson", plain, level="township", dry_run="true")
    assert dry.status_code == 201, dry.text
    changes = {c["code"]: c for c in dry.json()["changes"]}
    assert changes[T_LINDONG]["geometry"] == "kept" and changes[T_LINDONG]["name"] is None
    assert changes[T_LONGCHANG]["name"] == {"from": "隆昌镇", "to": "隆昌镇（更名）"}
    real = post(client, BOUNDARIES, headers, "乡镇.geojson", plain, level="township")
    assert real.status_code == 201, real.text
    assert (real.json()["updated"], real.json()["unchanged"]) == (2, 0)
    assert area_km2(session, T_LINDONG) == pytest.approx(before)
    assert unit(client, headers, T_LINDONG)["has_boundary"] is True
    # The same through the code-list import (CSV, and a GeoJSON without geometries).
    r = post(client, UNITS, headers, "codes.csv", code_list(LIST_2023), edition="2023")
    assert r.status_code == 201, r.text
    assert area_km2(session, T_LINDONG) == pytest.approx(before)
    assert {c["code"]: c for c in r.json()["changes"]}[T_LONGCHANG]["name"]["to"] == "隆昌镇"
    # Clearing is possible, but only when asked for — and shown first on a dry run.
    clear = post(
        client,
        BOUNDARIES,
        headers,
        "乡镇.geojson",
        boundaries([(T_LINDONG, "林东镇", None)]),
        level="township",
        clear_geometry="true",
        dry_run="true",
    )
    change = clear.json()["changes"][0]
    assert change["geometry"] == "cleared" and change["area_km2_before"] == pytest.approx(
        before, abs=1e-3
    )
    assert area_km2(session, T_LINDONG) == pytest.approx(before)
    r = client.patch(f"/api/v1/units/{T_LINDONG}", json={"clear_geometry": True}, headers=headers)
    assert r.status_code == 200 and r.json()["has_boundary"] is False


# -- code editions --------------------------------------------------------------------------------


def test_a_newer_edition_reports_what_changed_and_retires_only_on_request(client, zuoqi, session):
    headers = zuoqi
    r = post(client, UNITS, headers, "codes2018.csv", code_list(LIST_2018), edition="2018")
    assert r.status_code == 201, r.text
    renamed = [row[:] for row in LIST_2023]
    renamed[6][2] = "隆昌嘎查"
    newer = post(client, UNITS, headers, "codes2023.csv", code_list(renamed), edition="2023")
    assert newer.status_code == 201, newer.text
    diff = newer.json()["edition_diff"]
    assert diff["edition"] == "2023" and diff["appeared"] == []
    assert diff["renamed"] == [
        {"code": V_LONGCHANG, "from": "隆昌村", "to": "隆昌嘎查", "level": "village"}
    ]
    assert diff["disappeared"] == [{"code": V_MERGED, "name": "三家村", "level": "village"}]
    assert "successor" in diff["hint"]
    merged = unit(client, headers, V_MERGED)  # reported, not deleted
    assert merged["valid_to"] is None and merged["code_edition"] == "2018"
    assert unit(client, headers, V_LONGCHANG)["code_edition"] == "2023"

    # A unit created from a file after that, with a code absent from the newest list: remarked.
    stray = post(
        client,
        BOUNDARIES,
        headers,
        "b.geojson",
        boundaries([("150422101298", "新村", None)]),
        level="village",
    )
    assert stray.status_code == 201, stray.text
    assert [w["code"] for w in stray.json()["warnings"]] == ["code_not_in_edition"]

    # A household still in the merged village blocks its retirement: nothing is retired.
    ledger = [["户主姓名", "村代码", "经度", "纬度"], ["那日苏", V_MERGED, 119.5, 44.1]]
    r = post(client, "/api/v1/imports/households", headers, "h.csv", csv_bytes(ledger, "utf-8"))
    assert r.status_code == 201, r.text
    blocked = post(
        client,
        UNITS,
        headers,
        "codes2023.csv",
        code_list(renamed),
        edition="2023",
        retire_missing="true",
    )
    assert blocked.status_code == 422, blocked.text
    codes = {(e["code"], e["id"]) for e in blocked.json()["errors"]}
    assert ("cannot_retire", V_MERGED) in codes
    assert unit(client, headers, V_MERGED)["valid_to"] is None
    session.execute(text("UPDATE households SET removed_at = now() WHERE head_name = '那日苏'"))
    done = post(
        client,
        UNITS,
        headers,
        "codes2023.csv",
        code_list(renamed),
        edition="2023",
        retire_missing="true",
    )
    assert done.status_code == 201, done.text
    assert {r["code"] for r in done.json()["retired"]} == {V_MERGED, "150422101298"}
    assert client.get(f"/api/v1/units/{V_MERGED}", headers=headers).status_code == 404
    gone = session.scalar(select(AdminUnit).where(AdminUnit.code == V_MERGED))
    assert gone.valid_to is not None and gone.successor_id is None


def test_retire_with_a_successor_records_the_merge(client, registered, session):
    headers = registered
    r = client.delete(f"/api/v1/units/{V_WEST}?successor={V_EAST}", headers=headers)
    assert r.status_code == 204, r.text
    west = session.scalar(select(AdminUnit).where(AdminUnit.code == V_WEST))
    east = session.scalar(select(AdminUnit).where(AdminUnit.code == V_EAST))
    assert (west.successor_id, west.valid_to is not None) == (east.id, True)
    assert client.get(f"/api/v1/units/{V_WEST}", headers=headers).status_code == 404
    history = client.get(
        f"/api/v1/units?level=village&include_retired=true&parent_code={T_LINDONG}", headers=headers
    ).json()["items"]
    listed = next(u for u in history if u["code"] == V_WEST)
    assert (listed["successor_code"], listed["valid_to"] is not None) == (V_EAST, True)
    bad = client.delete(f"/api/v1/units/{V_EAST}?successor={T_LINDONG}", headers=headers)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_successor"


# -- messages -----------------------------------------------------------------------------------


def test_unclosed_ring_in_a_file_is_named_and_gdal_speaks_in_the_report(
    client, registered, recwarn
):
    ring = [[119.0, 43.8], [119.15, 43.8], [119.15, 44.0], [119.0, 44.0]]
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"XZQDM": V_EAST, "XZQMC": "东城村"},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            },
            {
                "type": "Feature",
                "properties": {"XZQDM": V_WEST, "XZQMC": "西城村"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[150.0, 26.0], [150.1, 26.1], [150.1, 26.0], [150.0, 26.1], [150.0, 26.0]]
                    ],
                },
            },
        ],
    }
    r = post(
        client, BOUNDARIES, registered, "村界.geojson", json.dumps(doc).encode(), level="village"
    )
    assert r.status_code == 422, r.text
    body = r.json()
    found = {(e["index"], e["code"]) for e in body["errors"]}
    assert found == {(0, "ring_not_closed"), (1, "outside_china"), (1, "invalid_geometry")}
    assert "Exception" not in r.text and "missing_geometry" not in r.text
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    job = client.get(f"/api/v1/imports/{body['job_id']}", headers=registered).json()
    assert "gdal_unclosed_ring" in {w["code"] for w in job["report"]["warnings"]}, job
