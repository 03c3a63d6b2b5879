"""Units registered from the code list before their boundary: every export format and every OGC
collection holds them (geometry empty, ``has_boundary`` false), and areas leave with 6 decimals
without degenerate rings. Exports and item pages read committed data through connections of
their own, so this module commits a small county (150423) and removes it at the end."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pyogrio.raw
import pytest
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.hierarchy import service as hierarchy_service
from gridgov.hierarchy.rules import AreaRow
from tests.conftest import token_for

COUNTY = "150423"
T_BOUNDED, T_OPEN = "150423100", "150423101"
V_SLIVER, V_OPEN = "150423100201", "150423101201"
# A valid village whose second part is thinner than the 6-decimal grid (~0.1 m).
SLIVER = shapely.Polygon([(118.66, 43.51), (118.67, 43.51), (118.67, 43.5100002)])
MAIN = shapely.box(118.66, 43.52, 118.79, 43.69)


@pytest.fixture(scope="module")
def county(engine, world) -> Iterator[dict[str, str]]:
    """Committed: a county with one township drawn, one not; a village with a sliver part and
    one without a boundary; a county admin. Removed when the module ends."""
    from gridgov.auth import service as auth_service

    with Session(engine) as s, s.begin():
        hierarchy_service.init_county(
            s, code=COUNTY, name="巴林右旗", geom=shapely.box(118.5, 43.4, 119.0, 44.0)
        )
        for level, rows in (
            (
                "township",
                [
                    (T_BOUNDED, "大板镇", shapely.box(118.5, 43.4, 118.8, 44.0)),
                    (T_OPEN, "索博日嘎镇", None),
                ],
            ),
            (
                "village",
                [
                    (V_SLIVER, "大板村", shapely.MultiPolygon([MAIN, SLIVER])),
                    (V_OPEN, "索博日嘎嘎查", None),
                ],
            ),
        ):
            written = hierarchy_service.write_units(
                s,
                None,
                [AreaRow(i, c, n, g) for i, (c, n, g) in enumerate(rows)],
                level=level,
                county_code=COUNTY,
            )
            assert not written.errors, written.errors
        user = auth_service.create_user(
            s,
            None,
            username="youqi",
            password="Youqi-2026-pass",
            role="county_admin",
            display_name="右旗管理员",
            unit_code=COUNTY,
        )
        user_id = user.id
    try:
        yield {"Authorization": f"Bearer {token_for(user_id, 'county_admin')}"}
    finally:
        with Session(engine) as s, s.begin():
            s.execute(text("DELETE FROM users WHERE id = :id"), {"id": user_id})
            for level in ("village", "township", "county"):
                s.execute(
                    text("DELETE FROM admin_units WHERE county_code = :c AND level = :l"),
                    {"c": COUNTY, "l": level},
                )


def exported_rows(fmt: str, content: bytes, tmp_path: Path) -> list[tuple[str, bool]]:
    """(code, has a geometry) for every exported feature."""
    if fmt == "csv":
        table = csv.DictReader(io.StringIO(content.decode("utf-8-sig")))
        return [(r["code"], bool(r["wkt"])) for r in table]
    if fmt in ("geojson", "ndjson"):
        if fmt == "geojson":
            features = json.loads(content)["features"]
        else:
            features = [json.loads(line) for line in content.splitlines() if line.strip()]
        return [(f["properties"]["code"], f["geometry"] is not None) for f in features]
    if fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(content)).active
        rows = list(sheet.iter_rows(values_only=True))
        header = [str(h) for h in rows[0]]
        code = next(i for i, h in enumerate(header) if h.startswith("代码"))
        lon = next(i for i, h in enumerate(header) if "经度" in h)
        return [(r[code], r[lon] is not None) for r in rows[1:]]
    if fmt == "kml":
        placemarks = content.decode().split("<Placemark")[1:]
        return [
            (p.split('<SimpleData name="code">')[1].split("<")[0], "<Polygon>" in p)
            for p in placemarks
        ]
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(content)
    source = f"/vsizip/{path}" if fmt == "shp.zip" else str(path)
    meta, _fids, wkb, values = pyogrio.raw.read(source)
    codes = values[list(meta["fields"]).index("code")]
    return [(str(c), g is not None) for c, g in zip(codes, wkb, strict=True)]


@pytest.mark.parametrize(
    "fmt", ["csv", "geojson", "ndjson", "xlsx", "gpkg", "fgb", "kml", "shp.zip"]
)
def test_every_export_holds_units_without_a_boundary(client, county, fmt, tmp_path):
    listed = client.get("/api/v1/units?level=township", headers=county).json()["items"]
    assert sorted(u["code"] for u in listed) == [T_BOUNDED, T_OPEN]
    r = client.get(f"/api/v1/exports/townships.{fmt}", headers=county)
    assert r.status_code == 200, r.text
    rows = exported_rows(fmt, r.content, tmp_path)
    assert sorted(rows) == [(T_BOUNDED, True), (T_OPEN, False)]


def test_ogc_collections_hold_units_without_a_boundary(client, county):
    base = "/ogc/collections/townships/items"
    page = client.get(f"{base}?limit=100", headers=county).json()
    features = {f["properties"]["code"]: f for f in page["features"]}
    assert set(features) == {T_BOUNDED, T_OPEN}
    assert features[T_OPEN]["geometry"] is None
    assert features[T_OPEN]["properties"]["has_boundary"] is False
    assert features[T_BOUNDED]["properties"]["has_boundary"] is True
    one = client.get(f"{base}/{features[T_OPEN]['id']}", headers=county)
    assert one.status_code == 200 and one.json()["geometry"] is None
    html = client.get(f"{base}?f=html", headers=county)
    assert html.status_code == 200 and T_OPEN in html.text and "无几何" in html.text
    only = client.get(f"{base}?has_boundary=false", headers=county).json()["features"]
    assert [f["properties"]["code"] for f in only] == [T_OPEN]
    qa = client.get("/ogc/collections/qa_units_without_boundary/items", headers=county).json()
    assert {f["properties"]["unit_code"] for f in qa["features"]} == {T_OPEN, V_OPEN}


def _check_rings(geometry: dict[str, Any]) -> None:
    assert geometry["type"] == "MultiPolygon" and len(geometry["coordinates"]) == 1
    for polygon in geometry["coordinates"]:
        for ring in polygon:
            assert len(ring) >= 4 and len({tuple(p) for p in ring}) == len(ring) - 1
        assert shapely.Polygon(polygon[0], polygon[1:]).area > 0
    assert shapely.from_geojson(json.dumps(geometry)).is_valid


def test_areas_leave_with_six_decimals_and_no_degenerate_ring(client, county):
    """The sliver part collapses at 6 decimals: it is dropped, the rest kept as is."""
    assert shapely.MultiPolygon([MAIN, SLIVER]).is_valid
    exported = client.get(f"/api/v1/exports/villages.geojson?code={V_SLIVER}", headers=county)
    assert exported.status_code == 200, exported.text
    ogc = client.get(f"/ogc/collections/villages/items?code={V_SLIVER}", headers=county).json()
    for doc in (json.loads(exported.content), ogc):
        (feature,) = doc["features"]
        _check_rings(feature["geometry"])
        kept = shapely.from_geojson(json.dumps(feature["geometry"]))
        assert shapely.equals_exact(kept.geoms[0].normalize(), MAIN.normalize(), 1e-9)
