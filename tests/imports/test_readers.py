"""File reading without the database: encodings, CRSes, header detection, cell parsing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely

from gridgov.errors import RuleViolation, UnsupportedMedia
from gridgov.geo import convert
from gridgov.imports import readers
from tests.imports.conftest import (
    csv_bytes,
    feature,
    geojson_bytes,
    shapefile_zip,
    write_layer,
    xlsx_bytes,
)

NORTH = [shapely.box(111.1 + 0.025 * i, 26.1, 111.125 + 0.025 * i, 26.2) for i in range(4)]
NAMES = ["北一村", "北二村", "北三村", "北四村"]
CODES = [f"43990210120{i + 2}" for i in range(4)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (439902100201, "439902100201"),
        (np.int64(439902100201), "439902100201"),
        (4.39902100201e11, "439902100201"),
        (439902100201001.0, "439902100201001"),
        ("4.39902100201e11", "439902100201"),
        ("4.39902100201E+11", "439902100201"),
        ("439902100201.0", "439902100201"),
        (" 439902100201 ", "439902100201"),
        ("４３９９０２", "439902"),  # full-width digits typed on a Chinese IME
        (float("nan"), None),
        ("", None),
        ("A1-1", "A1-1"),
    ],
)
def test_codes_read_as_numbers_become_digit_strings(value, expected):
    assert readers.normalise_code(value) == expected


def test_geojson_numeric_codes_and_unreadable_features(tmp_path):
    features = [
        feature({"代码": 439902101202, "名称": "北一村"}, NORTH[0]),
        feature({"代码": "4.39902101203e11", "名称": "北二村"}, NORTH[1]),
        feature({"代码": 439902101204, "名称": "点"}, shapely.Point(111.16, 26.15)),
        feature({"代码": 439902101205, "名称": "空"}, None),
        feature({"代码": 439902101206, "名称": "颠倒"}, shapely.box(26.1, 111.1, 26.2, 111.2)),
    ]
    data = readers.read_boundaries(geojson_bytes(features), filename="村.geojson")
    assert (data.code_field, data.name_field) == ("代码", "名称")
    assert [r.code for r in data.rows] == ["439902101202", "439902101203", "439902101205"]
    assert data.rows[0].geom.geom_type == "MultiPolygon"
    assert data.rows[2].geom is None  # the writer decides whether a boundary is required
    assert [(e.index, e.id, e.code) for e in data.errors] == [
        (2, "439902101204", "geometry_type"),
        (4, "439902101206", "lat_lon_swapped"),
    ]
    assert data.errors[0].loc == ["features", 2, "geometry"]


def test_gbk_shapefile_without_cpg_keeps_chinese(tmp_path):
    blob = shapefile_zip(
        tmp_path, NORTH, {"XZQDM": CODES, "XZQMC": NAMES}, encoding="GBK", keep_cpg=False
    )
    data = readers.read_boundaries(blob, filename="村界.zip")
    assert data.encoding == "GBK"
    assert [r.name for r in data.rows] == NAMES
    assert [r.code for r in data.rows] == CODES


def test_gbk_field_names_without_cpg(tmp_path):
    blob = shapefile_zip(
        tmp_path, NORTH, {"代码": CODES, "名称": NAMES}, encoding="GBK", keep_cpg=False
    )
    data = readers.read_boundaries(blob, filename="村界.zip")
    assert (data.code_field, data.name_field) == ("代码", "名称")
    assert [r.name for r in data.rows] == NAMES


def test_utf8_shapefile_with_cpg(tmp_path):
    blob = shapefile_zip(
        tmp_path, NORTH, {"XZQDM": CODES, "XZQMC": NAMES}, encoding="UTF-8", keep_cpg=True
    )
    data = readers.read_boundaries(blob, filename="村界.zip")
    assert data.encoding is None  # the .cpg decided, through GDAL
    assert [r.name for r in data.rows] == NAMES


def test_utf8_shapefile_without_cpg_is_detected(tmp_path):
    blob = shapefile_zip(
        tmp_path, NORTH, {"XZQDM": CODES, "XZQMC": NAMES}, encoding="UTF-8", keep_cpg=False
    )
    data = readers.read_boundaries(blob, filename="村界.zip")
    assert data.encoding == "UTF-8"
    assert [r.name for r in data.rows] == NAMES


def test_zip_without_shapefile_and_broken_zip(tmp_path):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "nothing here")
    with pytest.raises(RuleViolation) as err:
        readers.read_boundaries(buf.getvalue(), filename="a.zip")
    assert err.value.errors[0].code == "no_shapefile"
    with pytest.raises(UnsupportedMedia):
        readers.read_boundaries(b"PK\x03\x04 not really a zip", filename="a.zip")


def test_cgcs2000_geographic_is_taken_as_is(tmp_path):
    blob = geojson_bytes(
        [feature({"code": c, "name": n}, g) for c, n, g in zip(CODES, NAMES, NORTH, strict=True)],
        crs="urn:ogc:def:crs:EPSG::4490",
    )
    data = readers.read_boundaries(blob, filename="a.geojson")
    assert data.crs == "EPSG:4490"
    assert shapely.equals_exact(data.rows[0].geom, shapely.MultiPolygon([NORTH[0]]), 0)


def test_projected_cgcs2000_gauss_kruger_is_reprojected(tmp_path):
    to_gk = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4546", always_xy=True)
    projected = [
        shapely.transform(g, lambda xy: np.column_stack(to_gk.transform(*xy.T))) for g in NORTH
    ]
    assert projected[0].bounds[0] > 400_000  # metres, CM 111°E
    path = tmp_path / "村.gpkg"
    write_layer(path, projected, {"code": CODES, "name": NAMES}, crs="EPSG:4546", driver="GPKG")
    data = readers.read_boundaries(path, filename="村.gpkg")
    for row, original in zip(data.rows, NORTH, strict=True):
        assert shapely.hausdorff_distance(row.geom, original) < 1e-8


def test_undeclared_metres_are_reported_and_crs_override_fixes_them(tmp_path):
    to_gk = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4546", always_xy=True)
    projected = shapely.transform(NORTH[0], lambda xy: np.column_stack(to_gk.transform(*xy.T)))
    blob = geojson_bytes([feature({"code": CODES[0], "name": NAMES[0]}, projected)])
    data = readers.read_boundaries(blob, filename="a.geojson")
    assert [e.code for e in data.errors] == ["not_wgs84_degrees"]
    fixed = readers.read_boundaries(blob, filename="a.geojson", crs="EPSG:4546")
    assert not fixed.errors
    assert shapely.hausdorff_distance(fixed.rows[0].geom, NORTH[0]) < 1e-8


def test_gcj02_boundaries_end_up_in_wgs84():
    def to_gcj(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(convert(xy[:, 0], xy[:, 1], "wgs84", "gcj02"))

    shifted = shapely.transform(NORTH[0], to_gcj)
    assert shapely.hausdorff_distance(shifted, NORTH[0]) > 1e-3  # hundreds of metres
    blob = geojson_bytes([feature({"code": CODES[0], "name": NAMES[0]}, shifted)])
    data = readers.read_boundaries(blob, filename="a.geojson", coord_sys="gcj02")
    assert shapely.hausdorff_distance(data.rows[0].geom, NORTH[0]) < 1e-7


def test_field_choice_explicit_and_missing():
    blob = geojson_bytes([feature({"DM": CODES[0], "MC": NAMES[0]}, NORTH[0])])
    with pytest.raises(RuleViolation) as err:
        readers.read_boundaries(blob, filename="a.geojson")
    assert err.value.errors[0].loc == ["options", "code_field"]
    assert "DM" in err.value.errors[0].msg  # names the fields the file has
    data = readers.read_boundaries(blob, filename="a.geojson", code_field="dm", name_field="MC")
    assert data.rows[0].code == CODES[0] and data.rows[0].name == NAMES[0]


def test_grid_level_prefers_grid_code_field():
    blob = geojson_bytes(
        [feature({"XZQDM": "439902101201", "WGBM": "439902101201002", "WGMC": "网格"}, NORTH[0])]
    )
    data = readers.read_boundaries(blob, filename="a.geojson", level="grid")
    assert data.rows[0].code == "439902101201002" and data.rows[0].name == "网格"


@pytest.mark.parametrize(
    ("filename", "code"),
    [("a.shp", "shapefile_not_zipped"), ("a.kml", "unsupported_media_type")],
)
def test_boundary_extensions_refused(filename, code):
    with pytest.raises(UnsupportedMedia) as err:
        readers.read_boundaries(b"x", filename=filename)
    assert err.value.code == code


def test_renamed_file_is_refused():
    with pytest.raises(UnsupportedMedia) as err:
        readers.read_boundaries(b"<html>oops</html>", filename="a.gpkg")
    assert err.value.code == "content_mismatch"


# -- ledgers ----------------------------------------------------------------------------------

HEADER = [
    "户编号",
    "户主姓名",
    "联系电话",
    "身份证号",
    "经度",
    "纬度",
    "家庭人口",
    "重点人群",
    "备注",
]
ROW = [
    "T-1",
    "王大山",
    "13912345678",
    "11010519491231002X",
    111.02,
    26.03,
    3,
    "低保户、脱贫户",
    "x",
]


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8"])
def test_csv_encodings(encoding):
    blob = csv_bytes([HEADER, ROW], encoding)
    data = readers.read_households(blob, filename="台账.csv")
    (row,) = data.rows
    assert (row.head_name, row.tags, row.external_id) == ("王大山", "低保户、脱贫户", "T-1")
    assert (row.lon, row.lat, row.size) == (111.02, 26.03, 3)
    assert data.columns["户主姓名"] == "head_name"
    assert data.ignored == ["备注"]
    assert row.idx == 2  # the line number a user sees


def test_xlsx_with_title_row_and_numbers_in_cells():
    blob = xlsx_bytes(
        [
            ["2024年东村户情台账"],
            [],
            HEADER,
            ["T-1", "王大山", 13912345678, "11010519491231002X", 111.02, 26.03, 3, None, None],
            [None] * 9,
            [
                "T-2",
                "李小花",
                "13912345678",
                110105194912310020,
                "111.0x",
                26.03,
                "4人",
                "无",
                None,
            ],
        ]
    )
    data = readers.read_households(blob, filename="台账.xlsx")
    assert data.header_line == 3
    first, second = data.rows
    assert (first.idx, first.phone, first.id_number, first.read_errors) == (
        4,
        "13912345678",
        "11010519491231002X",
        [],
    )
    assert second.idx == 6 and second.size == 4
    assert [(f, c) for f, _, c in second.read_errors] == [
        ("lon", "invalid_number"),
        ("id_number", "id_number_as_number"),
    ]


def test_headers_with_notes_and_custom_mapping():
    blob = csv_bytes(
        [["户主", "经度（WGS84）", "纬度(WGS84)", "户口本号"], ["张", 111.02, 26.03, "B7"]], "utf-8"
    )
    data = readers.read_households(blob, filename="a.csv", mapping={"户口本号": "external_id"})
    assert data.rows[0].external_id == "B7" and data.rows[0].lon == 111.02


def test_missing_columns_and_missing_header():
    with pytest.raises(RuleViolation) as err:
        readers.read_households(
            csv_bytes([["户主姓名", "电话"], ["张", "1"]], "utf-8"), filename="a.csv"
        )
    assert err.value.errors[0].code == "missing_columns"
    assert "经度" in err.value.errors[0].msg
    with pytest.raises(RuleViolation) as err:
        readers.read_households(csv_bytes([["a", "b"], ["1", "2"]], "utf-8"), filename="a.csv")
    assert err.value.errors[0].code == "header_not_found"


def test_unknown_mapping_target_and_legacy_excel():
    with pytest.raises(RuleViolation) as err:
        readers.read_households(b"x", filename="a.csv", mapping={"户主": "owner"})
    assert err.value.errors[0].code == "unknown_field"
    with pytest.raises(UnsupportedMedia) as err2:
        readers.read_households(b"x", filename="a.xls")
    assert err2.value.code == "legacy_excel"


def test_bd09_ledger_coordinates_become_wgs84():
    lon, lat = convert(111.02, 26.03, "wgs84", "bd09")
    blob = csv_bytes([["户主姓名", "经度", "纬度"], ["张", lon, lat]], "utf-8")
    (row,) = readers.read_households(blob, filename="a.csv", coord_sys="bd09").rows
    assert abs(row.lon - 111.02) < 1e-7 and abs(row.lat - 26.03) < 1e-7


def test_count_rows(tmp_path: Path):
    csv_path = tmp_path / "a.csv"
    csv_path.write_bytes(csv_bytes([HEADER, ROW, ROW], "utf-8"))
    assert readers.count_rows(csv_path, filename="a.csv") == 2
    zip_path = tmp_path / "a.zip"
    zip_path.write_bytes(
        shapefile_zip(
            tmp_path, NORTH, {"XZQDM": CODES, "XZQMC": NAMES}, encoding="GBK", keep_cpg=False
        )
    )
    assert readers.count_rows(zip_path, filename="a.zip") == 4
