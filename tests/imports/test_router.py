"""The import endpoints against the real PostGIS: atomicity, every error reported, formats,
coordinate systems, scope, roles, jobs."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import numpy as np
import pyproj
import pytest
import shapely
from sqlalchemy import func, select, text

from gridgov.config import get_settings
from gridgov.geo import convert
from gridgov.hierarchy.models import AdminUnit, Grid
from gridgov.households.models import Household
from gridgov.imports import service as imports_service
from gridgov.imports.models import ImportJob
from tests.fixtures.world import VILLAGE_A, VILLAGE_C
from tests.imports.conftest import (
    csv_bytes,
    feature,
    geojson_bytes,
    shapefile_zip,
    write_layer,
    xlsx_bytes,
)

BOUNDARIES = "/api/v1/imports/boundaries"
HOUSEHOLDS = "/api/v1/imports/households"
# 乙乡's north half (111.1–111.2, 26.1–26.2) has no village yet: room for five new ones.
NEW_VILLAGES = [
    (
        f"43990210120{i + 2}",
        f"北{i + 1}村",
        shapely.box(111.1 + 0.02 * i, 26.1, 111.12 + 0.02 * i, 26.2),
    )
    for i in range(5)
]
# 南村's east half (111.15–111.2) has no grid yet: room for two new ones.
NEW_GRIDS = [
    (VILLAGE_C + "002", "南村第二网格", shapely.box(111.15, 26.0, 111.2, 26.05)),
    (VILLAGE_C + "003", "南村第三网格", shapely.box(111.15, 26.05, 111.2, 26.1)),
]
BOWTIE = shapely.Polygon([(111.14, 26.1), (111.16, 26.2), (111.16, 26.1), (111.14, 26.2)])
LEDGER_HEADER = [
    "户编号",
    "户主姓名",
    "联系电话",
    "身份证号",
    "经度",
    "纬度",
    "家庭人口",
    "重点人群",
]
GOOD_ID = "439902198001010013"


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def post(client, url, headers, name, blob, **form):
    return client.post(url, headers=headers, files={"file": (name, blob)}, data=form)


def villages_geojson(rows) -> bytes:
    return geojson_bytes([feature({"XZQDM": c, "XZQMC": n}, g) for c, n, g in rows])


def ledger(*rows) -> list[list]:
    return [LEDGER_HEADER, *map(list, rows)]


# -- access -----------------------------------------------------------------------------------


def test_anonymous_is_401(client):
    r = post(client, BOUNDARIES, {}, "a.geojson", b"{}", level="village")
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("user", "url"),
    [
        ("auditor", HOUSEHOLDS),
        ("gis", HOUSEHOLDS),
        ("grid_a1", HOUSEHOLDS),
        ("village_a", BOUNDARIES),
    ],
)
def test_roles_without_the_permission_are_403(client, as_user, user, url):
    r = post(client, url, as_user(user), "a.csv", b"x", level="village")
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


# -- boundaries -------------------------------------------------------------------------------


def test_boundary_import_is_atomic_and_names_the_bad_feature(client, as_user, session):
    rows = list(NEW_VILLAGES)
    rows[2] = (rows[2][0], rows[2][1], BOWTIE)  # self-intersecting: invalid
    before = count(session, AdminUnit)
    r = post(
        client, BOUNDARIES, as_user("gis"), "村界.geojson", villages_geojson(rows), level="village"
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert [(e["index"], e["id"], e["code"]) for e in body["errors"]] == [
        (2, NEW_VILLAGES[2][0], "invalid_geometry")
    ]
    assert body["errors"][0]["loc"] == ["features", 2, "geometry"]
    assert (body["total"], body["valid"], body["job_status"]) == (5, 4, "failed")
    assert count(session, AdminUnit) == before
    job = client.get(f"/api/v1/imports/{body['job_id']}", headers=as_user("gis")).json()
    assert job["status"] == "failed" and job["report"]["errors"] == body["errors"]

    r = post(
        client,
        BOUNDARIES,
        as_user("gis"),
        "村界.geojson",
        villages_geojson(NEW_VILLAGES),
        level="village",
    )
    assert r.status_code == 201, r.text
    report = r.json()
    assert (report["status"], report["written"], report["created"], report["updated"]) == (
        "succeeded",
        5,
        5,
        0,
    )
    assert count(session, AdminUnit) == before + 5
    audit = session.execute(
        text(
            "SELECT username, after FROM audit_log WHERE entity = 'import_job' AND entity_id = :id"
        ),
        {"id": report["job_id"]},
    ).one()
    assert audit.username == "gis" and audit.after["written"] == 5


def test_an_unreadable_feature_alone_also_stops_the_write(client, as_user, session):
    features = [feature({"XZQDM": c, "XZQMC": n}, g) for c, n, g in NEW_VILLAGES]
    features.insert(
        1, feature({"XZQDM": "439902101299", "XZQMC": "点"}, shapely.Point(111.1, 26.1))
    )
    before = count(session, AdminUnit)
    r = post(
        client, BOUNDARIES, as_user("gis"), "a.geojson", geojson_bytes(features), level="village"
    )
    assert r.status_code == 422, r.text
    assert [(e["index"], e["id"], e["code"]) for e in r.json()["errors"]] == [
        (1, "439902101299", "geometry_type")
    ]
    assert count(session, AdminUnit) == before


def test_every_bad_feature_is_listed(client, as_user, session):
    rows = [
        *NEW_VILLAGES[:3],
        ("439903101299", "外县村", NEW_VILLAGES[3][2]),
        (NEW_VILLAGES[4][0], "", NEW_VILLAGES[4][2]),
    ]
    features = [feature({"XZQDM": c, "XZQMC": n}, g) for c, n, g in rows]
    features.append(
        feature({"XZQDM": "439902101208", "XZQMC": "点村"}, shapely.Point(111.15, 26.15))
    )
    r = post(client, BOUNDARIES, as_user("gis"), "a.json", geojson_bytes(features), level="village")
    assert r.status_code == 422
    found = {(e["index"], e["code"]) for e in r.json()["errors"]}
    assert {(3, "code_outside_county"), (4, "missing_name"), (5, "geometry_type")} <= found
    assert not {i for i, _ in found} & {0, 1, 2}


def test_existing_codes_are_updated_not_duplicated(client, as_user, session, world):
    geom = shapely.box(111.0, 26.0, 111.1, 26.1)
    blob = villages_geojson([(VILLAGE_A, "东村（更名）", geom)])
    before = count(session, AdminUnit)
    r = post(client, BOUNDARIES, as_user("county"), "a.geojson", blob, level="village")
    assert r.status_code == 201, r.text
    assert (r.json()["created"], r.json()["updated"]) == (0, 1)
    assert count(session, AdminUnit) == before
    name = session.scalar(select(AdminUnit.name).where(AdminUnit.id == world.units[VILLAGE_A]))
    assert name == "东村（更名）"


def test_gbk_shapefile_without_cpg_via_api(client, as_user, session, tmp_path):
    codes, names, geoms = zip(*NEW_VILLAGES, strict=True)
    blob = shapefile_zip(
        tmp_path, geoms, {"XZQDM": codes, "XZQMC": names}, encoding="GBK", keep_cpg=False
    )
    r = post(client, BOUNDARIES, as_user("gis"), "村界.zip", blob, level="village")
    assert r.status_code == 201, r.text
    assert r.json()["encoding"] == "GBK"
    stored = session.execute(
        select(AdminUnit.code, AdminUnit.name)
        .where(AdminUnit.code.in_(codes))
        .order_by(AdminUnit.code)
    ).all()
    assert [tuple(s) for s in stored] == [(c, n) for c, n, _ in NEW_VILLAGES]


def test_utf8_shapefile_with_cpg_in_cgcs2000(client, as_user, session, tmp_path):
    codes, names, geoms = zip(*NEW_VILLAGES, strict=True)
    blob = shapefile_zip(
        tmp_path,
        geoms,
        {"XZQDM": codes, "XZQMC": names},
        encoding="UTF-8",
        keep_cpg=True,
        crs="EPSG:4490",
    )
    r = post(client, BOUNDARIES, as_user("gis"), "villages.zip", blob, level="village")
    assert r.status_code == 201, r.text
    assert r.json()["crs"] == "EPSG:4490"
    assert session.scalar(select(AdminUnit.name).where(AdminUnit.code == codes[0])) == names[0]


def _hausdorff(session, code: str, geom: shapely.Geometry) -> float:
    return session.scalar(
        text(
            "SELECT ST_HausdorffDistance(geom, ST_GeomFromText(:wkt, 4326)) "
            "FROM grids WHERE code = :c"
        ),
        {"wkt": geom.wkt, "c": code},
    )


def test_projected_gauss_kruger_grids_are_reprojected(client, as_user, session, tmp_path, world):
    to_gk = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4546", always_xy=True)
    codes, names, geoms = zip(*NEW_GRIDS, strict=True)
    projected = [
        shapely.transform(g, lambda xy: np.column_stack(to_gk.transform(*xy.T))) for g in geoms
    ]
    path = tmp_path / "网格.gpkg"
    write_layer(path, projected, {"WGBM": codes, "WGMC": names}, crs="EPSG:4546", driver="GPKG")
    r = post(client, BOUNDARIES, as_user("gis"), "网格.gpkg", path.read_bytes(), level="grid")
    assert r.status_code == 201, r.text
    for code, _, geom in NEW_GRIDS:
        assert _hausdorff(session, code, geom) < 1e-7
    # The household in 南村's gap now lies in a grid: households follow new grids.
    grid_id = session.scalar(
        select(Household.grid_id).where(Household.id == world.households["C-gap"])
    )
    assert grid_id == session.scalar(select(Grid.id).where(Grid.code == NEW_GRIDS[1][0]))


def test_gcj02_grids_are_stored_in_wgs84(client, as_user, session):
    def to_gcj(xy):
        return np.column_stack(convert(xy[:, 0], xy[:, 1], "wgs84", "gcj02"))

    blob = geojson_bytes(
        [feature({"WGBM": c, "WGMC": n}, shapely.transform(g, to_gcj)) for c, n, g in NEW_GRIDS]
    )
    r = post(client, BOUNDARIES, as_user("gis"), "a.geojson", blob, level="grid", coord_sys="gcj02")
    assert r.status_code == 201, r.text
    for code, _, geom in NEW_GRIDS:
        assert _hausdorff(session, code, geom) < 1e-7


def test_boundary_dry_run_writes_nothing(client, as_user, session):
    before = count(session, AdminUnit)
    r = post(
        client,
        BOUNDARIES,
        as_user("gis"),
        "a.geojson",
        villages_geojson(NEW_VILLAGES),
        level="village",
        dry_run="true",
    )
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["written"], r.json()["valid"]) == ("validated", 0, 5)
    assert count(session, AdminUnit) == before


# -- households -------------------------------------------------------------------------------


def test_utf8_bom_csv_is_imported(client, as_user, session):
    rows = ledger(
        ("T-1", "王大山", "13912345678", GOOD_ID, 111.02, 26.03, 3, "低保户"),
        ("T-2", "李小花", "", "", 111.06, 26.05, "", ""),
        ("T-3", "周到", "0734-8123456", "", 111.18, 26.06, 2, "脱贫"),  # 南村's gap
    )
    before = count(session, Household)
    r = post(client, HOUSEHOLDS, as_user("county"), "台账.csv", csv_bytes(rows, "utf-8-sig"))
    assert r.status_code == 201, r.text
    report = r.json()
    assert (report["written"], report["outside_grid"], report["encoding"]) == (3, 1, "UTF-8")
    assert count(session, Household) == before + 3
    tags = session.scalar(select(Household.tags).where(Household.external_id == "T-3"))
    assert tags == ["脱贫户"]


def test_gbk_csv_two_bad_rows_two_errors(client, as_user, session):
    rows = ledger(
        ("T-1", "王大山", "13912345678", GOOD_ID, 111.02, 26.03, 3, ""),
        ("T-2", "李小花", "1391234", "", 111.06, 26.05, 2, ""),
        ("T-3", "张三", "", "", "abc", 26.05, 2, ""),
    )
    before = count(session, Household)
    r = post(client, HOUSEHOLDS, as_user("county"), "台账.csv", csv_bytes(rows, "gbk"))
    assert r.status_code == 422, r.text
    assert [(e["index"], e["id"], e["loc"], e["code"]) for e in r.json()["errors"]] == [
        (3, "T-2", ["rows", 3, "phone"], "invalid_phone"),
        (4, "T-3", ["rows", 4, "lon"], "invalid_number"),
    ]
    assert count(session, Household) == before


def test_xlsx_every_problem_reported(client, as_user, session):
    blob = xlsx_bytes(
        [
            ["东村户情台账（2024）"],
            LEDGER_HEADER,
            ["T-1", "王大山", "13912345678", GOOD_ID, 111.02, 26.03, 3, "低保户"],
            ["T-2", "坏电话", "12345", None, 111.02, 26.04, 3, None],
            ["T-3", "坏身份证", None, "439902198001010014", 111.02, 26.05, 3, None],
            ["T-4", "怪标签", None, None, 111.02, 26.06, 3, "低保户、外星人"],
            ["T-5", "县外", None, None, 111.5, 26.05, 3, None],
            ["T-6", "好人", 13912345678, None, 111.03, 26.07, 3, None],
        ]
    )
    before = count(session, Household)
    r = post(client, HOUSEHOLDS, as_user("county"), "台账.xlsx", blob)
    assert r.status_code == 422, r.text
    body = r.json()
    assert [(e["index"], e["id"], e["code"]) for e in body["errors"]] == [
        (4, "T-2", "invalid_phone"),
        (5, "T-3", "invalid_id_number"),
        (6, "T-4", "unknown_tag"),
        (7, "T-5", "outside_scope"),
    ]
    assert (body["total"], body["valid"]) == (6, 2)
    assert count(session, Household) == before


def test_household_dry_run_writes_nothing(client, as_user, session):
    rows = ledger(("T-1", "王大山", "13912345678", GOOD_ID, 111.02, 26.03, 3, ""))
    before = count(session, Household)
    r = post(
        client, HOUSEHOLDS, as_user("village_a"), "a.csv", csv_bytes(rows, "utf-8"), dry_run="true"
    )
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["written"], r.json()["valid"]) == ("validated", 0, 1)
    assert count(session, Household) == before


def test_village_admin_cannot_import_into_another_village(client, as_user, session):
    rows = ledger(
        ("T-1", "东村户", "", "", 111.02, 26.03, 3, ""),  # 东村: own village
        ("T-2", "西村户", "", "", 111.02, 26.15, 3, ""),  # 西村: not hers
    )
    before = count(session, Household)
    r = post(client, HOUSEHOLDS, as_user("village_a"), "a.csv", csv_bytes(rows, "utf-8"))
    assert r.status_code == 422, r.text
    assert [(e["index"], e["code"]) for e in r.json()["errors"]] == [(3, "outside_scope")]
    assert count(session, Household) == before


def test_existing_external_id_is_updated(client, as_user, session, world):
    rows = ledger(("A1-1", "王建国", "13800000000", "", 111.01, 26.01, 5, "低保户"))
    before = count(session, Household)
    r = post(client, HOUSEHOLDS, as_user("county"), "a.csv", csv_bytes(rows, "utf-8"))
    assert r.status_code == 201, r.text
    assert count(session, Household) == before
    size = session.scalar(select(Household.size).where(Household.id == world.households["A1-1"]))
    assert size == 5


# -- files, limits ----------------------------------------------------------------------------


def test_bad_uploads_are_4xx_never_500(client, as_user, monkeypatch):
    h = as_user("county")
    r = post(client, HOUSEHOLDS, h, "a.txt", b"hello")
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"
    r = post(client, HOUSEHOLDS, h, "a.xls", b"\xd0\xcf\x11\xe0")
    assert r.status_code == 415 and "xlsx" in r.json()["detail"]
    r = post(client, BOUNDARIES, h, "a.zip", b"PK\x03\x04 broken", level="village")
    assert r.status_code == 415 and r.json()["code"] == "unreadable_file" and r.json()["job_id"]
    r = post(
        client, HOUSEHOLDS, h, "a.csv", csv_bytes([["户主姓名", "电话"], ["张", "1"]], "utf-8")
    )
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "missing_columns"
    r = post(client, HOUSEHOLDS, h, "a.csv", b"x", mapping="{not json")
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid_mapping"
    r = post(client, BOUNDARIES, h, "a.geojson", b"{}", level="county")
    assert r.status_code == 422
    r = post(client, BOUNDARIES, h, "a.geojson", b"{}", level="village", crs="EPSG:999999")
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid_crs"
    monkeypatch.setattr(get_settings().limits, "upload_max_bytes", 2048)
    r = post(client, HOUSEHOLDS, h, "a.csv", b"x" * 4096)
    assert r.status_code == 413


# -- jobs -------------------------------------------------------------------------------------


def test_large_import_runs_as_a_job(client, as_user, session, monkeypatch, data_dir):
    monkeypatch.setattr(get_settings().limits, "import_inline_max_rows", 2)
    launched: list[uuid.UUID] = []
    monkeypatch.setattr(imports_service, "launch", launched.append)
    rows = ledger(
        *[(f"J-{i}", f"户{i}", "", "", 111.02, 26.01 + 0.01 * i, 2, "") for i in range(3)]
    )
    r = post(client, HOUSEHOLDS, as_user("county"), "a.csv", csv_bytes(rows, "utf-8"))
    assert r.status_code == 202, r.text
    body = r.json()
    job_id = uuid.UUID(body["job_id"])
    assert body["status"] == "queued"
    assert body["progress_url"].endswith(f"/api/v1/imports/{job_id}")
    assert launched == [job_id]  # started once the request's transaction committed
    queued = client.get(body["progress_url"], headers=as_user("county")).json()
    assert (queued["status"], queued["total"], queued["processed"], queued["report"]) == (
        "queued",
        3,
        0,
        None,
    )
    assert (data_dir / f"{job_id}.csv").exists()

    # The thread's body, run here on the test's session (a thread cannot see its transaction).
    seen: list[tuple] = []

    @contextmanager
    def factory():
        yield session
        session.flush()
        job = session.get(ImportJob, job_id)
        seen.append((job.status, job.stage, job.processed, job.total))

    before = count(session, Household)
    imports_service.run_job(job_id, session_factory=factory)
    assert ("running", "validating", 0, 3) in seen
    done = client.get(body["progress_url"], headers=as_user("county")).json()
    assert (done["status"], done["stage"], done["processed"]) == ("succeeded", "done", 3)
    assert done["report"]["written"] == 3
    assert count(session, Household) == before + 3
    assert not (data_dir / f"{job_id}.csv").exists()
    # A job is run once.
    imports_service.run_job(job_id, session_factory=factory)
    assert count(session, Household) == before + 3


def test_job_visibility(client, as_user):
    rows = ledger(("T-1", "王大山", "", "", 111.02, 26.03, 3, ""))
    r = post(
        client, HOUSEHOLDS, as_user("village_a"), "a.csv", csv_bytes(rows, "utf-8"), dry_run="true"
    )
    url = f"/api/v1/imports/{r.json()['job_id']}"
    assert client.get(url, headers=as_user("village_a")).status_code == 200
    assert client.get(url, headers=as_user("county")).status_code == 200
    for other in ("village_b", "gis", "auditor", "town_a"):
        assert client.get(url, headers=as_user(other)).status_code == 404, other
    assert (
        client.get(f"/api/v1/imports/{uuid.uuid4()}", headers=as_user("county")).status_code == 404
    )
    assert client.get(url).status_code == 401


@pytest.mark.parametrize(
    ("url", "name", "blob"),
    [
        (
            HOUSEHOLDS,
            "a.csv",
            "户主姓名,经度,纬度,人口数\n张\x00三,111.02,26.03,99999999999\n".encode(),
        ),
        (
            HOUSEHOLDS,
            "a.csv",
            ("户主姓名,经度,纬度,地址\n张,111.02,26.03," + "长" * 300 + "\n").encode(),
        ),
        (HOUSEHOLDS, "a.csv", b""),
        (HOUSEHOLDS, "a.csv", b"\xff\xfe\x00garbage\x00\n\x01\x02"),
        (HOUSEHOLDS, "a.xlsx", b"PK\x03\x04" + bytes(range(256)) * 4),
        (BOUNDARIES, "a.geojson", b"\x00\x01{{{ not json"),
        (BOUNDARIES, "a.geojson", geojson_bytes([])),
        (BOUNDARIES, "a.gpkg", b"SQLite format 3\x00" + bytes(2048)),
        (
            BOUNDARIES,
            "a.geojson",
            geojson_bytes(
                [feature({"XZQDM": NEW_VILLAGES[0][0], "XZQMC": "长" * 150}, NEW_VILLAGES[0][2])]
            ),
        ),
    ],
    ids=[
        "csv-nul-and-huge-size",
        "csv-long-address",
        "csv-empty",
        "csv-binary",
        "xlsx-garbage",
        "geojson-garbage",
        "geojson-no-features",
        "gpkg-garbage",
        "geojson-long-name",
    ],
)
def test_garbage_files_are_never_a_server_error(client, as_user, url, name, blob):
    r = post(client, url, as_user("county"), name, blob, level="village")
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
