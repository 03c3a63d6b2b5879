"""File exports through GDAL: every format read back with pyogrio (or openpyxl), Chinese text
byte-for-byte (GBK Shapefile too), coordinates shifted exactly as gridgov.geo.convert says,
CGCS2000 declared on request, identity only for roles allowed to see it and who ask."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from openpyxl import load_workbook

from gridgov.geo import CoordSys, convert
from gridgov.gis.files import short_names
from tests.fixtures.world import GRID_A1, HOUSEHOLDS, VILLAGE_A, World

GDAL_FORMATS = ("gpkg", "fgb", "kml", "shp.zip")


def _save(tmp_path: Path, response, name: str) -> Path:
    assert response.status_code == 200, response.text
    path = tmp_path / name
    path.write_bytes(response.content)
    return path


def _unzip(tmp_path: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path / "shp")
    return tmp_path / "shp"


@pytest.mark.parametrize("fmt", list(GDAL_FORMATS))
def test_grids_read_back(client, as_user, tmp_path: Path, fmt: str):
    response = client.get(f"/api/v1/exports/grids.{fmt}", headers=as_user("gis"))
    path = _save(tmp_path, response, f"grids.{fmt}")
    assert f'filename="grids.{fmt}"' in response.headers["content-disposition"]
    if fmt == "shp.zip":
        path = _unzip(tmp_path, path) / "grids.shp"
    info = pyogrio.read_info(path)
    assert info["features"] == 4
    # KML declares no layer geometry type (look at the geometries), and "name" becomes each
    # placemark's <name>, which GDAL reads back as "Name".
    name = "Name" if fmt == "kml" else "name"
    meta, _, geometry, fields = pyogrio.raw.read(path, columns=["code", name])
    kinds = set(shapely.get_type_id(shapely.from_wkb(geometry)))
    assert kinds <= {3, 6}, kinds  # Polygon, MultiPolygon
    column = dict(zip(meta["fields"], fields, strict=True))  # in the file's field order
    names = dict(zip(column["code"], column[name], strict=True))
    assert names[GRID_A1].encode() == "东村第一网格".encode()


def test_default_file_format_is_geopackage_with_wgs84(client, as_user, tmp_path: Path):
    path = _save(
        tmp_path, client.get("/api/v1/exports/households.gpkg", headers=as_user("county")), "h.gpkg"
    )
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"
    info = pyogrio.read_info(path)
    assert info["features"] == len(HOUSEHOLDS) and info["geometry_type"] == "Point"
    assert info["crs"] == "EPSG:4326"
    assert "head_name" not in info["fields"] and "phone" not in info["fields"]


def test_shapefile_utf8_cpg_and_field_map(client, as_user, tmp_path: Path):
    archive = _save(
        tmp_path, client.get("/api/v1/exports/grids.shp.zip", headers=as_user("gis")), "g.zip"
    )
    folder = _unzip(tmp_path, archive)
    assert (folder / "grids.cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
    info = pyogrio.read_info(folder / "grids.shp")
    assert all(len(f) <= 10 for f in info["fields"])
    table = list(csv.DictReader(io.StringIO((folder / "fields.csv").read_text("utf-8-sig"))))
    mapping = {r["short_name"]: r["full_name"] for r in table}
    assert mapping["village_co"] == "village_code"
    assert mapping["household_"] == "household_count"
    assert set(mapping) == set(info["fields"])


def test_shapefile_gbk(client, as_user, tmp_path: Path):
    archive = _save(
        tmp_path,
        client.get("/api/v1/exports/grids.shp.zip?encoding=gbk", headers=as_user("gis")),
        "g.zip",
    )
    folder = _unzip(tmp_path, archive)
    assert (folder / "grids.cpg").read_text().strip() == "GBK"
    dbf = (folder / "grids.dbf").read_bytes()
    assert "东村第一网格".encode("gbk") in dbf
    assert "东村第一网格".encode() not in dbf
    _, _, _, fields = pyogrio.raw.read(
        folder / "grids.shp", columns=["code", "name"], encoding="GBK"
    )
    assert dict(zip(fields[0], fields[1], strict=True))[GRID_A1] == "东村第一网格"


def test_coord_sys_gcj02_shifts_as_convert_says(client, as_user, tmp_path: Path, world: World):
    path = _save(
        tmp_path,
        client.get(
            f"/api/v1/exports/households.fgb?coord_sys=gcj02&village_code={VILLAGE_A}",
            headers=as_user("county"),
        ),
        "h.fgb",
    )
    _, _, geometry, fields = pyogrio.raw.read(path, columns=["id"])
    points = dict(zip(fields[0], shapely.from_wkb(geometry), strict=True))
    lon, lat = convert(111.03, 26.05, CoordSys.wgs84, CoordSys.gcj02)
    moved = points[world.households["A1-3"]]
    assert np.isclose(moved.x, lon, atol=1e-9) and np.isclose(moved.y, lat, atol=1e-9)
    assert abs(moved.x - 111.03) > 1e-4  # really shifted (~hundreds of metres)


def test_crs_4490_declared(client, as_user, tmp_path: Path):
    for fmt in ("gpkg", "shp.zip"):
        response = client.get(
            f"/api/v1/exports/villages.{fmt}?crs=EPSG:4490", headers=as_user("gis")
        )
        path = _save(tmp_path, response, f"v.{fmt}")
        if fmt == "shp.zip":
            folder = _unzip(tmp_path, path)
            assert "CGCS" in (folder / "villages.prj").read_text().upper()
            path = folder / "villages.shp"
        assert pyogrio.read_info(path)["crs"] == "EPSG:4490"


def test_xlsx_chinese_headers_and_rows(client, as_user, tmp_path: Path, world: World):
    response = client.get(
        f"/api/v1/exports/households.xlsx?village_code={VILLAGE_A}", headers=as_user("county")
    )
    path = _save(tmp_path, response, "h.xlsx")
    sheet = load_workbook(path, read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("编号", "所属村代码", "所属网格代码")
    assert rows[0][-2:] == ("经度", "纬度")
    body = {r[0]: r for r in rows[1:]}
    assert len(body) == 6
    row = body[world.households["A1-3"]]
    assert "高风险老人;脱贫户" in row and GRID_A1 in row
    assert row[-2:] == (111.03, 26.05)


def test_pii_only_for_allowed_roles_and_audited(client, as_user, tmp_path: Path, session):
    from sqlalchemy import text

    denied = client.get("/api/v1/exports/households.gpkg?pii=true", headers=as_user("gis"))
    assert denied.status_code == 403, denied.text
    path = _save(
        tmp_path,
        client.get("/api/v1/exports/households.gpkg?pii=true", headers=as_user("county")),
        "h.gpkg",
    )
    _, _, _, fields = pyogrio.raw.read(path, columns=["head_name"])
    assert "王建国" in set(fields[0])
    after = session.execute(
        text("SELECT after FROM audit_log WHERE action = 'export' ORDER BY id DESC LIMIT 1")
    ).scalar()
    assert after == {"format": "gpkg", "query": {"pii": "true"}}


def test_bad_options_refused(client, as_user):
    for url in (
        "/api/v1/exports/grids.gpkg?encoding=gbk",  # encoding is for Shapefiles only
        "/api/v1/exports/grids.geojson?coord_sys=gcj02",  # streamed text formats stay WGS84
        "/api/v1/exports/grids.kml?crs=EPSG:4490&coord_sys=gcj02",
    ):
        response = client.get(url, headers=as_user("gis"))
        assert response.status_code in (400, 422), (url, response.text)


def test_empty_export_is_a_valid_file(client, as_user, tmp_path: Path):
    path = _save(
        tmp_path,
        client.get("/api/v1/exports/households.gpkg?grid_code=none", headers=as_user("county")),
        "e.gpkg",
    )
    assert pyogrio.read_info(path)["features"] == 0


def test_short_names_unique_and_short():
    names = short_names(["village_code", "village_count", "village_co", "id"])
    assert names == ["village_co", "village_c1", "village_c2", "id"]


# -- gridgov export -----------------------------------------------------------------------------


def test_cli_export_uses_the_same_service(cli_session, tmp_path: Path):
    from typer.testing import CliRunner

    from gridgov.cli import app
    from tests.fixtures.world import COUNTY

    out = tmp_path / "东村住户.gpkg"
    args = ["export", "households", "--out", str(out), "--county", COUNTY]
    result = CliRunner().invoke(app, [*args, "--filter", f"village_code={VILLAGE_A}", "--pii"])
    assert result.exit_code == 0, result.output
    info = pyogrio.read_info(out)
    assert info["features"] == 6 and "head_name" in info["fields"]
    bad = CliRunner().invoke(app, [*args, "--filter", "head_name=王建国"])
    assert bad.exit_code == 1 and "head_name" in bad.output


@pytest.mark.parametrize("fmt", ["gpkg", "fgb", "kml", "shp.zip", "xlsx"])
def test_many_batches_append(client, as_user, tmp_path: Path, monkeypatch, fmt: str):
    """Tiny batches: every format is written in several appends and keeps every row once."""
    monkeypatch.setattr("gridgov.gis.service.BATCH", 3)
    monkeypatch.setattr("gridgov.gis.files.FILE_BATCH", 4)
    path = _save(
        tmp_path,
        client.get(f"/api/v1/exports/households.{fmt}", headers=as_user("county")),
        f"households.{fmt}",
    )
    if fmt == "xlsx":
        rows = list(load_workbook(path, read_only=True).worksheets[0].iter_rows(values_only=True))
        ids = [r[0] for r in rows[1:]]
    else:
        if fmt == "shp.zip":
            path = _unzip(tmp_path, path) / "households.shp"
        # KML: GDAL reads each placemark's own id attribute as "id" (ours becomes "id2").
        column = "id2" if fmt == "kml" else "id"
        meta, _, _, fields = pyogrio.raw.read(path, columns=[column])
        ids = [int(v) for v in fields[list(meta["fields"]).index(column)]]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == len(HOUSEHOLDS)


def test_pii_in_streamed_formats_too(client, as_user):
    ndjson = client.get("/api/v1/exports/households.ndjson?pii=true", headers=as_user("county"))
    assert ndjson.status_code == 200, ndjson.text
    assert "王建国" in ndjson.text and '"phone"' in ndjson.text
    table = client.get("/api/v1/exports/households.csv?pii=true", headers=as_user("village_a"))
    header = table.content.decode("utf-8-sig").splitlines()[0].split(",")
    assert "head_name" in header and "phone" in header
    denied = client.get("/api/v1/exports/households.csv?pii=true", headers=as_user("auditor"))
    assert denied.status_code == 403
    grids = client.get("/api/v1/exports/grids.csv?pii=true", headers=as_user("county"))
    assert grids.status_code == 200  # no identity on this layer: nothing added


def test_temp_files_are_removed(client, as_user, tmp_path: Path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    response = client.get("/api/v1/exports/grids.shp.zip", headers=as_user("gis"))
    assert response.status_code == 200 and zipfile.is_zipfile(io.BytesIO(response.content))
    assert list(scratch.iterdir()) == []


# -- one GDAL write session ----------------------------------------------------------------------


def test_gpkg_has_its_spatial_index_and_exact_rows(
    client, as_user, tmp_path: Path, world: World, monkeypatch
):
    """Written in one session from many small Arrow batches: the R-tree GDAL builds at the end
    holds every feature at its point; text byte-for-byte, NULLs kept as NULL."""
    import contextlib
    import sqlite3

    monkeypatch.setattr("gridgov.gis.service.BATCH", 3)
    monkeypatch.setattr("gridgov.gis.files.FILE_BATCH", 4)
    path = _save(
        tmp_path, client.get("/api/v1/exports/households.gpkg", headers=as_user("county")), "h.gpkg"
    )
    with contextlib.closing(sqlite3.connect(path)) as db:
        extensions = db.execute(
            "SELECT table_name, column_name FROM gpkg_extensions"
            " WHERE extension_name = 'gpkg_rtree_index'"
        ).fetchall()
        assert extensions == [("households", "geom")]
        index = {
            row[0]: row[1:]
            for row in db.execute("SELECT id, minx, maxx, miny, maxy FROM rtree_households_geom")
        }
        rows = db.execute(
            "SELECT fid, id, CAST(village_code AS BLOB), grid_code, CAST(tags AS BLOB), size"
            " FROM households ORDER BY id"
        ).fetchall()
    assert len(index) == len(rows) == len(HOUSEHOLDS)
    by_id = {r[1]: r for r in rows}
    points = {external: (lon, lat) for external, _, lon, lat, _ in HOUSEHOLDS}
    for external, household_id in world.households.items():
        fid, _, village, grid, tags, size = by_id[household_id]
        lon, lat = points[external]
        minx, maxx, miny, maxy = index[fid]
        # The R-tree stores float32 bounds rounded outwards: within 3e-5° of the point.
        assert minx <= lon <= maxx and miny <= lat <= maxy and maxx - minx < 3e-5
        assert size >= 1 and village.decode().startswith("439902")
        if external == "C-gap":
            assert grid is None  # in no grid: NULL, not "None" or ""
    a13 = by_id[world.households["A1-3"]]
    assert a13[2] == VILLAGE_A.encode() and a13[3] == GRID_A1
    assert a13[4] == "高风险老人;脱贫户".encode()


def test_fgb_and_shapefile_keep_nulls_and_types(client, as_user, tmp_path: Path, world: World):
    for fmt in ("fgb", "shp.zip"):
        path = _save(
            tmp_path,
            client.get(f"/api/v1/exports/households.{fmt}", headers=as_user("county")),
            f"h.{fmt}",
        )
        if fmt == "shp.zip":
            path = _unzip(tmp_path, path) / "households.shp"
        meta, _, _, fields = pyogrio.raw.read(path, columns=["id", "grid_code", "size"])
        column = dict(zip(meta["fields"], fields, strict=True))
        assert column["id"].dtype == np.int64 and column["size"].dtype.kind == "i"
        grids = dict(zip(column["id"].tolist(), column["grid_code"], strict=True))
        assert grids[world.households["A1-3"]] == GRID_A1
        assert grids[world.households["C-gap"]] is None, fmt


def test_gdal_export_error_is_raised_as_itself_and_cleaned_up(tmp_path: Path, monkeypatch):
    """An error while building a batch (GDAL only hears "the stream failed") surfaces as the
    original exception, and the temp directory goes."""
    from gridgov.gis import files
    from gridgov.gis.layers import HOUSEHOLDS as LAYER

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr("gridgov.gis.service.BATCH", 2)
    monkeypatch.setattr("gridgov.gis.files.FILE_BATCH", 2)
    real = files._record_batch
    calls = []

    def failing(*args):
        calls.append(1)
        if len(calls) == 2:
            raise LookupError("第二批出错")
        return real(*args)

    monkeypatch.setattr(files, "_record_batch", failing)
    with pytest.raises(LookupError, match="第二批出错"):
        files.write_file(LAYER, "gpkg", "t.removed_at IS NULL", {}, files.FileOptions())
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []
