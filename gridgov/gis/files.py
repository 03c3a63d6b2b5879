"""File exports through GDAL (pyogrio): GeoPackage, zipped Shapefile, KML, FlatGeobuf — and XLSX.

Rows come from PostgreSQL in batches through a server-side cursor (geometry as WKB) and are
appended batch by batch to a temp file, so memory stays flat whatever the size; the finished
file is then streamed out in chunks and deleted. Coordinates may be shifted to GCJ-02 or BD-09
per batch (gridgov.geo.convert) for overlay on AMap or Baidu basemaps.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

import numpy as np
import pyogrio.raw
import shapely
from openpyxl import Workbook

from gridgov.geo import CoordSys, convert
from gridgov.gis import queries
from gridgov.gis.layers import Layer, Prop
from gridgov.gis.service import CRS84, bad_parameter, stream_rows

CHUNK = 64 * 1024
# Rows per write: each append reopens the file, so cursor batches are gathered up to this many
# (memory stays bounded by it, not by the export's size).
FILE_BATCH = 20_000
WGS84 = "EPSG:4326"
CGCS2000 = "EPSG:4490"  # numerically the same as WGS84 at this precision; declared on request


@dataclass(frozen=True)
class FileFormat:
    driver: str | None  # GDAL driver; None for XLSX (openpyxl) and KML (written here)
    suffix: str  # of the file GDAL writes
    media_type: str


FILE_FORMATS: dict[str, FileFormat] = {
    "gpkg": FileFormat("GPKG", "gpkg", "application/geopackage+sqlite3"),
    "shp.zip": FileFormat("ESRI Shapefile", "shp", "application/zip"),
    # Written here, not by GDAL: GDAL can only append to KML through LIBKML, which rereads and
    # rewrites the whole document on every append (quadratic, and all of it in memory).
    "kml": FileFormat(None, "kml", "application/vnd.google-earth.kml+xml"),
    "fgb": FileFormat("FlatGeobuf", "fgb", "application/flatgeobuf"),
    "xlsx": FileFormat(
        None, "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ),
}
FILE_PARAMS = frozenset({"crs", "coord_sys", "encoding"})
SHP_ENCODINGS = {"utf-8": "UTF-8", "gbk": "GBK"}

# Identity columns a household export carries only for roles with pii:read that ask (pii=true).
PII_PROPS: dict[str, tuple[Prop, ...]] = {
    "households": (
        Prop("head_name", "t.head_name", "string", "户主姓名"),
        Prop("phone", "t.phone", "string", "联系电话"),
    ),
}


@dataclass(frozen=True)
class FileOptions:
    crs: str = WGS84
    coord_sys: CoordSys = CoordSys.wgs84
    encoding: str = "UTF-8"  # Shapefile attribute encoding


def parse_options(fmt: str, params: dict[str, str]) -> FileOptions:
    """crs, coord_sys and encoding, checked (OGC-style 400 for a bad value)."""
    crs = params.get("crs", WGS84).upper()
    if crs in ("EPSG:4326", "WGS84", CRS84.upper()):
        crs = WGS84
    elif crs not in (CGCS2000,):
        raise bad_parameter(
            "crs", "crs 仅支持 EPSG:4326 或 EPSG:4490（CGCS2000）", "unsupported_crs"
        )
    try:
        coord_sys = CoordSys(params.get("coord_sys", "wgs84"))
    except ValueError:
        raise bad_parameter(
            "coord_sys", "coord_sys 应为 wgs84、gcj02 或 bd09", "invalid_coord_sys"
        ) from None
    if coord_sys is not CoordSys.wgs84 and crs == CGCS2000:
        raise bad_parameter(
            "coord_sys", "CGCS2000（EPSG:4490）导出不能再偏移为 gcj02/bd09", "invalid_coord_sys"
        )
    encoding_text = params.get("encoding", "utf-8").lower()
    if encoding_text not in SHP_ENCODINGS or ("encoding" in params and fmt != "shp.zip"):
        raise bad_parameter(
            "encoding", "encoding 仅用于 Shapefile，取值 utf-8 或 gbk", "invalid_encoding"
        )
    return FileOptions(crs, coord_sys, SHP_ENCODINGS[encoding_text])


def parse_pii(params: dict[str, str]) -> bool:
    value = params.get("pii", "false").lower()
    if value not in ("true", "false"):
        raise bad_parameter("pii", "pii 应为 true 或 false", "invalid_pii")
    return value == "true"


def with_pii(layer: Layer) -> Layer:
    """The layer with its identity columns (if it has any) after its ordinary properties."""
    extra = PII_PROPS.get(layer.id, ())
    return replace(layer, props=layer.props + extra) if extra else layer


def short_names(names: list[str], width: int = 10) -> list[str]:
    """Shapefile (dBase) field names: at most 10 characters, unique, stable."""
    out: list[str] = []
    for name in names:
        short = name[:width]
        n = 1
        while short in out:
            tail = str(n)
            short = name[: width - len(tail)] + tail
            n += 1
        out.append(short)
    return out


# -- writing ---------------------------------------------------------------------------------


def _columns(props: tuple[Prop, ...], rows: list[Any]) -> list[np.ndarray]:
    """Field arrays of one batch: row = (id, prop values…, wkb)."""
    columns = [np.array([r[0] for r in rows], dtype=np.int64)]
    for i, prop in enumerate(props, start=1):
        values = [r[i] for r in rows]
        if prop.type == "integer":
            columns.append(np.array([v if v is not None else 0 for v in values], np.int64))
        elif prop.type == "number":
            columns.append(np.array([np.nan if v is None else v for v in values], np.float64))
        else:
            columns.append(np.array([None if v is None else str(v) for v in values], object))
    return columns


def _masks(props: tuple[Prop, ...], rows: list[Any]) -> list[np.ndarray | None]:
    masks: list[np.ndarray | None] = [None]
    for i, prop in enumerate(props, start=1):
        if prop.type == "integer":
            masks.append(np.array([r[i] is None for r in rows], dtype=bool))
        else:
            masks.append(None)
    return masks


def _geometries(rows: list[Any], coord_sys: CoordSys) -> np.ndarray:
    geoms = shapely.from_wkb([r[-1] for r in rows])
    if coord_sys is not CoordSys.wgs84:

        def shift(xy: np.ndarray) -> np.ndarray:
            lon, lat = convert(xy[:, 0], xy[:, 1], CoordSys.wgs84, coord_sys)
            return np.column_stack([lon, lat])

        geoms = shapely.transform(geoms, shift)
    return geoms


def _wkb(rows: list[Any], coord_sys: CoordSys) -> np.ndarray:
    """The batch's geometries as WKB for GDAL: PostGIS's own WKB as is unless shifted (a
    round trip through shapely costs more than GDAL's whole write of a point)."""
    if coord_sys is CoordSys.wgs84:
        return np.array([r[-1] for r in rows], dtype=object)
    return shapely.to_wkb(_geometries(rows, coord_sys))


def _regroup(batches: Iterator[list[Any]], size: int) -> Iterator[list[Any]]:
    group: list[Any] = []
    for rows in batches:
        group.extend(rows)
        if len(group) >= size:
            yield group
            group = []
    if group:
        yield group


def _write_gdal(
    path: Path,
    layer: Layer,
    fmt: FileFormat,
    props: tuple[Prop, ...],
    names: list[str],
    batches: Iterator[list[Any]],
    options: FileOptions,
    progress: Callable[[int], None] | None = None,
) -> int:
    crs = options.crs
    geometry_type = "MultiPolygon" if layer.geometry_type == "polygon" else "Point"
    layer_options = {"SPATIAL_INDEX": "NO"} if fmt.driver == "FlatGeobuf" else None
    written = 0
    for rows in _regroup(batches, FILE_BATCH):
        pyogrio.raw.write(
            str(path),
            _wkb(rows, options.coord_sys),
            _columns(props, rows),
            names,
            field_mask=_masks(props, rows),
            layer=layer.id,
            driver=fmt.driver,
            geometry_type=geometry_type,
            crs=crs,
            encoding=options.encoding if fmt.driver == "ESRI Shapefile" else None,
            append=written > 0,
            layer_options=layer_options,
        )
        written += len(rows)
        if progress is not None:
            progress(written)
    if written == 0:  # still a valid, empty file with the layer's fields
        pyogrio.raw.write(
            str(path),
            np.array([], dtype=object),
            [np.array([], dtype=np.int64)]
            + [np.array([], dtype=np.int64 if p.type == "integer" else object) for p in props],
            names,
            layer=layer.id,
            driver=fmt.driver,
            geometry_type=geometry_type,
            crs=crs,
            encoding=options.encoding if fmt.driver == "ESRI Shapefile" else None,
            layer_options=layer_options,
        )
    return written


def _write_xlsx(
    path: Path,
    layer: Layer,
    props: tuple[Prop, ...],
    batches: Iterator[list[Any]],
    options: FileOptions,
    progress: Callable[[int], None] | None = None,
) -> None:
    workbook = Workbook(write_only=True)  # rows go straight to the file, never all in memory
    sheet = workbook.create_sheet(layer.title)
    where = "" if layer.geometry_type == "point" else "（代表点）"
    sheet.append(["编号", *(p.title for p in props), f"经度{where}", f"纬度{where}"])
    written = 0
    for rows in batches:
        if not rows:
            continue
        geoms = _geometries(rows, options.coord_sys)
        xs, ys = shapely.get_x(geoms), shapely.get_y(geoms)
        for row, x, y in zip(rows, xs, ys, strict=True):
            values = [v if isinstance(v, int | float) or v is None else str(v) for v in row[:-1]]
            sheet.append([*values, round(float(x), 6), round(float(y), 6)])
        written += len(rows)
        if progress is not None:
            progress(written)
    workbook.save(path)


def _kml_coords(ring: Any) -> str:
    return " ".join(f"{x:.6f},{y:.6f}" for x, y in np.asarray(ring.coords)[:, :2])


def _kml_geometry(geom: Any) -> str:
    if geom is None:
        return ""
    if geom.geom_type == "Point":
        return f"<Point><coordinates>{geom.x:.6f},{geom.y:.6f}</coordinates></Point>"
    polygons = []
    for polygon in getattr(geom, "geoms", [geom]):
        inner = "".join(
            f"<innerBoundaryIs><LinearRing><coordinates>{_kml_coords(r)}</coordinates>"
            "</LinearRing></innerBoundaryIs>"
            for r in polygon.interiors
        )
        polygons.append(
            "<Polygon><outerBoundaryIs><LinearRing><coordinates>"
            f"{_kml_coords(polygon.exterior)}</coordinates></LinearRing></outerBoundaryIs>"
            f"{inner}</Polygon>"
        )
    return f"<MultiGeometry>{''.join(polygons)}</MultiGeometry>"


def _write_kml(
    path: Path,
    layer: Layer,
    props: tuple[Prop, ...],
    names: list[str],
    batches: Iterator[list[Any]],
    options: FileOptions,
    progress: Callable[[int], None] | None = None,
) -> None:
    """KML 2.2 as GDAL writes it (a Schema, then placemarks with SchemaData), one batch at a
    time. KML is WGS84 by definition; CGCS2000 is numerically the same, so nothing changes."""
    kml_type = {"integer": "int", "number": "double"}
    label = "name" if "name" in names else None  # the placemark's <name>, as GDAL does
    fields = [(n, p) for n, p in zip(names, (None, *props), strict=True) if n != label]
    with path.open("w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="utf-8" ?>\n'
            '<kml xmlns="http://www.opengis.net/kml/2.2">\n<Document id="root_doc">\n'
            f'<Schema name="{layer.id}" id="{layer.id}">\n'
        )
        for name, prop in fields:
            type_ = "int" if prop is None else kml_type.get(prop.type, "string")
            out.write(f'\t<SimpleField name="{name}" type="{type_}"></SimpleField>\n')
        out.write(f"</Schema>\n<Folder><name>{escape(layer.title)}</name>\n")
        written = 0
        for rows in batches:
            if not rows:
                continue
            geoms = _geometries(rows, options.coord_sys)
            for row, geom in zip(rows, geoms, strict=True):
                values = dict(zip(names, row[:-1], strict=True))
                parts = [f'<Placemark id="{layer.id}.{row[0]}">']
                if label is not None and values[label] is not None:
                    parts.append(f"<name>{escape(str(values[label]))}</name>")
                parts.append(f'<ExtendedData><SchemaData schemaUrl="#{layer.id}">')
                for name, _ in fields:
                    if values[name] is not None:
                        value = escape(str(values[name]))
                        parts.append(f'<SimpleData name="{name}">{value}</SimpleData>')
                parts.append(f"</SchemaData></ExtendedData>{_kml_geometry(geom)}</Placemark>\n")
                out.write("".join(parts))
            written += len(rows)
            if progress is not None:
                progress(written)
        out.write("</Folder>\n</Document></kml>\n")


def _field_map(names: list[str], props: tuple[Prop, ...]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["short_name", "full_name", "title"])
    writer.writerows(
        zip(
            names,
            ["id", *(p.name for p in props)],
            ["编号", *(p.title for p in props)],
            strict=True,
        )
    )
    # A byte-order mark so Excel and WPS read it as UTF-8 whatever the locale.
    return b"\xef\xbb\xbf" + out.getvalue().encode()


def write_file(
    layer: Layer,
    fmt_name: str,
    where: str,
    params: dict[str, Any],
    options: FileOptions,
    progress: Callable[[int], None] | None = None,
) -> tuple[Path, Path]:
    """Write the export into a fresh temp directory; (file, directory) — the caller deletes it.
    ``progress`` hears the number of rows written so far after each batch."""
    fmt = FILE_FORMATS[fmt_name]
    props = layer.props
    full = ["id", *(p.name for p in props)]
    names = short_names(full) if fmt.driver == "ESRI Shapefile" else full
    point = fmt_name == "xlsx"  # a spreadsheet wants one point per row
    sql = queries.to_psycopg(queries.export_rows_sql(layer, props, where, point=point))
    batches = stream_rows(sql, params)
    directory = Path(tempfile.mkdtemp(prefix="gridgov-export-"))
    try:
        path = directory / f"{layer.id}.{fmt.suffix}"
        if fmt_name == "xlsx":
            _write_xlsx(path, layer, props, batches, options, progress)
            return path, directory
        if fmt_name == "kml":
            _write_kml(path, layer, props, names, batches, options, progress)
            return path, directory
        _write_gdal(path, layer, fmt, props, names, batches, options, progress)
        if fmt.driver != "ESRI Shapefile":
            return path, directory
        if options.encoding == "GBK":
            # Say "GBK" whatever GDAL wrote: ArcGIS, QGIS and SuperMap all read that name.
            (directory / f"{layer.id}.cpg").write_text("GBK")
        archive = directory / f"{layer.id}.shp.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for part in sorted(directory.glob(f"{layer.id}.*")):
                if part != archive:
                    zf.write(part, part.name)
            zf.writestr("fields.csv", _field_map(names, props))
        return archive, directory
    except BaseException:
        batches.close()
        shutil.rmtree(directory, ignore_errors=True)
        raise


def stream_file(path: Path, directory: Path) -> Iterator[bytes]:
    """The file in chunks. The temp directory is removed at once: the open handle keeps the data
    readable until it is closed (last chunk sent, client gone, or never read at all)."""
    handle = path.open("rb")
    shutil.rmtree(directory, ignore_errors=True)
    return _chunks(handle)


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk
