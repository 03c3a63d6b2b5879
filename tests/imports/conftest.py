"""Helpers that write the files counties send: GeoJSON, GeoPackage, zipped Shapefile, CSV, XLSX."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pyogrio.raw
import pytest
import shapely


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Uploads land in this test's own directory, never in the working tree."""
    from gridgov.config import get_settings

    monkeypatch.setattr(get_settings(), "data_dir", str(tmp_path / "data"))
    return tmp_path / "data" / "imports"


def feature(props: dict[str, Any], geom: shapely.Geometry | None) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": props,
        "geometry": None if geom is None else json.loads(shapely.to_geojson(geom)),
    }


def geojson_bytes(features: Sequence[dict[str, Any]], crs: str | None = None) -> bytes:
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": list(features)}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(doc, ensure_ascii=False).encode()


def write_layer(
    path: Path,
    geoms: Sequence[shapely.Geometry],
    fields: dict[str, Sequence[Any]],
    *,
    crs: str = "EPSG:4326",
    encoding: str | None = None,
    driver: str | None = None,
) -> None:
    arrays = [
        np.array(values, dtype=object if isinstance(values[0], str) else None)
        for values in fields.values()
    ]
    pyogrio.raw.write(
        path,
        np.array([shapely.to_wkb(g) for g in geoms], dtype=object),
        arrays,
        list(fields),
        geometry_type="Polygon",
        crs=crs,
        encoding=encoding,
        driver=driver,
    )


def shapefile_zip(
    tmp: Path,
    geoms: Sequence[shapely.Geometry],
    fields: dict[str, Sequence[Any]],
    *,
    encoding: str,
    keep_cpg: bool,
    crs: str = "EPSG:4490",
) -> bytes:
    folder = tmp / f"shp-{encoding}-{keep_cpg}"
    folder.mkdir()
    write_layer(folder / "村界.shp", geoms, fields, crs=crs, encoding=encoding)
    if not keep_cpg:
        (folder / "村界.cpg").unlink()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for part in sorted(folder.iterdir()):
            zf.write(part, f"data/{part.name}")
    return buf.getvalue()


def xlsx_bytes(rows: Sequence[Sequence[Any]]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in rows:
        ws.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_bytes(rows: Sequence[Sequence[Any]], encoding: str) -> bytes:
    text = "\r\n".join(",".join("" if v is None else str(v) for v in row) for row in rows)
    return (text + "\r\n").encode(encoding)
