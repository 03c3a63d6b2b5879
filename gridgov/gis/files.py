"""File exports through GDAL (pyogrio): GeoPackage, zipped Shapefile, KML, FlatGeobuf — and XLSX.

Rows come from PostgreSQL in batches through a server-side cursor (typed columns, geometry as
PostGIS's own WKB) and become Arrow record batches that GDAL pulls one at a time through the
Arrow C stream interface: the file is opened once and written in one session (pyogrio's
write_arrow), so GDAL builds a GeoPackage's R-tree once at the end instead of row by row, and
memory holds one batch whatever the size. The finished file is then streamed out in chunks and
deleted. Coordinates may be shifted to GCJ-02 or BD-09 per batch (gridgov.geo.convert) for
overlay on AMap or Baidu basemaps.
"""

from __future__ import annotations

import csv
import ctypes
import errno
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

import nanoarrow as na
import numpy as np
import shapely
from openpyxl import Workbook

from gridgov.cells import safe_cell
from gridgov.db import to_psycopg
from gridgov.gdal import pyogrio
from gridgov.geo import CoordSys, convert
from gridgov.gis import queries
from gridgov.gis.layers import Layer, Prop
from gridgov.gis.service import CRS84, bad_parameter, stream_rows

CHUNK = 96 * 1024  # bytes per chunk streamed out: under glibc's mmap threshold (see exports)
# Rows per Arrow batch handed to GDAL: cursor batches are gathered up to this many (memory stays
# bounded by it, not by the export's size).
FILE_BATCH = 1_000

# GDAL builds a GeoPackage's R-tree on a thread of its own while the features are written.
# Within OGR_GPKG_MAX_RAM_USAGE_RTREE bytes (GDAL counts ~40 a feature) it builds it in memory
# and writes it once at the end. Past that budget (and with 0, which this module used to set to
# save ~25 MB per million points) it inserts every feature into an SQLite R-tree in a temporary
# database attached to the file's connection, in one transaction that keeps that database
# locked; closing the file, GDAL runs `DROP TABLE IF EXISTS ogr_empty_table`, which looks into
# every attached database, finds the temporary one locked and naps in SQLite's busy handler
# (1, 2, 5 … 100 ms) until its 5 s SQLITE_BUSY_TIMEOUT is spent: 59 clock_nanosleep calls,
# 5.0 s of a 150,000-point export's 6.4 s asleep, and the R-tree itself built several times
# slower. 48 MiB keeps exports of up to ~1.2 M features in memory (measured: a 1,000,000-point
# export needs 36–40 MB by GDAL's count, ~30 MB more peak RSS than the on-disk path, and leaves
# room for the tile cache within the 300 MB bound of tests/gis/test_export_memory.py). The value
# is in bytes (with "500MB" GDAL still takes the on-disk path). The environment may override it.
RTREE_RAM_BYTES = 48 * 1024 * 1024
if "OGR_GPKG_MAX_RAM_USAGE_RTREE" not in os.environ:
    pyogrio.set_gdal_config_options({"OGR_GPKG_MAX_RAM_USAGE_RTREE": str(RTREE_RAM_BYTES)})
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


def _geometries(rows: list[Any], coord_sys: CoordSys) -> np.ndarray:
    geoms = shapely.from_wkb([r[-1] for r in rows])
    if coord_sys is not CoordSys.wgs84:

        def shift(xy: np.ndarray) -> np.ndarray:
            lon, lat = convert(xy[:, 0], xy[:, 1], CoordSys.wgs84, coord_sys)
            return np.column_stack([lon, lat])

        geoms = shapely.transform(geoms, shift)
    return geoms


def _regroup(batches: Iterator[list[Any]], size: int) -> Iterator[list[Any]]:
    group: list[Any] = []
    for rows in batches:
        group.extend(rows)
        if len(group) >= size:
            yield group
            group = []
    if group:
        yield group


# -- Arrow batches for GDAL --------------------------------------------------------------------

ARROW_TYPES = {"integer": na.int64(), "number": na.float64()}  # anything else: text from SQL
GEOMETRY = "geometry"  # the WKB column of the batches (GDAL names the file's own column)


def _arrow_types(props: tuple[Prop, ...]) -> list[na.Schema]:
    return [na.int64(), *(ARROW_TYPES.get(p.type, na.string()) for p in props), na.binary()]


def _record_batch(schema: na.Schema, types: list[na.Schema], rows: list[Any], wkb: Any) -> Any:
    """One batch as an Arrow struct array: the rows' columns as they came from PostgreSQL
    (id, typed properties, WKB), NULLs kept; ``wkb`` replaces the last column if not None."""
    columns = list(zip(*rows, strict=True))
    if wkb is not None:
        columns[-1] = wkb
    children = [na.c_array(column, type_) for column, type_ in zip(columns, types, strict=True)]
    return na.c_array_from_buffers(schema, len(rows), [None], children=children)


class _ArrowSchema(ctypes.Structure):
    _fields_ = [
        ("format", ctypes.c_void_p),
        ("name", ctypes.c_void_p),
        ("metadata", ctypes.c_void_p),
        ("flags", ctypes.c_int64),
        ("n_children", ctypes.c_int64),
        ("children", ctypes.c_void_p),
        ("dictionary", ctypes.c_void_p),
        ("release", ctypes.c_void_p),
        ("private_data", ctypes.c_void_p),
    ]


class _ArrowArray(ctypes.Structure):
    _fields_ = [
        ("length", ctypes.c_int64),
        ("null_count", ctypes.c_int64),
        ("offset", ctypes.c_int64),
        ("n_buffers", ctypes.c_int64),
        ("n_children", ctypes.c_int64),
        ("buffers", ctypes.c_void_p),
        ("children", ctypes.c_void_p),
        ("dictionary", ctypes.c_void_p),
        ("release", ctypes.c_void_p),
        ("private_data", ctypes.c_void_p),
    ]


_GET = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_ERROR = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
_RELEASE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class _ArrowArrayStream(ctypes.Structure):
    _fields_ = [
        ("get_schema", _GET),
        ("get_next", _GET),
        ("get_last_error", _ERROR),
        ("release", _RELEASE),
        ("private_data", ctypes.c_void_p),
    ]


_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


def _move(capsule: Any, name: bytes, struct: type[ctypes.Structure], out: int) -> None:
    """Move an exported Arrow schema or array out of its capsule into ``out`` (the capsule is
    left released, as the C data interface's move semantics say)."""
    source = _capsule_pointer(capsule, name)
    ctypes.memmove(out, source, ctypes.sizeof(struct))
    struct.from_address(source).release = None  # type: ignore[attr-defined]


class BatchStream:
    """An Arrow C stream (``__arrow_c_stream__``) over an iterator of record batches, pulled
    one at a time: GDAL writes a batch before the next one is built, so one batch is in memory
    whatever the export's size. An error raised while building a batch (the database, say) is
    kept in ``error`` for the caller to raise; GDAL only hears that the stream failed."""

    def __init__(self, schema: na.Schema, batches: Iterator[Any]) -> None:
        self.schema = na.c_schema(schema)
        self.batches = batches
        self.error: BaseException | None = None
        self._message = ctypes.create_string_buffer(b"")
        # The callbacks must outlive the C structure that points at them.
        self._callbacks = (
            _GET(self._get_schema),
            _GET(self._get_next),
            _ERROR(self._get_last_error),
            _RELEASE(self._release),
        )
        self._stream = _ArrowArrayStream(*self._callbacks, None)

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        # No destructor: the structure belongs to this object, which outlives the write.
        return _capsule_new(ctypes.addressof(self._stream), b"arrow_array_stream", None)

    def _fail(self, exc: BaseException) -> int:
        self.error = exc
        self._message = ctypes.create_string_buffer(repr(exc).encode(errors="replace"))
        return errno.EIO

    def _get_schema(self, stream: int, out: int) -> int:
        try:
            _move(self.schema.__arrow_c_schema__(), b"arrow_schema", _ArrowSchema, out)
            return 0
        except BaseException as exc:  # a C callback must not raise
            return self._fail(exc)

    def _get_next(self, stream: int, out: int) -> int:
        try:
            batch = next(self.batches, None)
            if batch is None:  # end of stream: a released array
                ctypes.memset(out, 0, ctypes.sizeof(_ArrowArray))
                return 0
            _move(batch.__arrow_c_array__()[1], b"arrow_array", _ArrowArray, out)
            return 0
        except BaseException as exc:  # a C callback must not raise
            return self._fail(exc)

    def _get_last_error(self, stream: int) -> int | None:
        return ctypes.addressof(self._message) if self.error is not None else None

    def _release(self, stream: int) -> None:
        self._stream.release = _RELEASE()  # NULL: released


# -- GDAL formats ----------------------------------------------------------------------------


def _gdal_batches(
    props: tuple[Prop, ...],
    schema: na.Schema,
    batches: Iterator[list[Any]],
    coord_sys: CoordSys,
    progress: Callable[[int], None] | None,
) -> Iterator[Any]:
    types = _arrow_types(props)
    written = 0
    for rows in _regroup(batches, FILE_BATCH):
        # PostGIS's own WKB as is unless shifted (a round trip through shapely costs more than
        # GDAL's whole write of a point).
        wkb = None
        if coord_sys is not CoordSys.wgs84:
            wkb = shapely.to_wkb(_geometries(rows, coord_sys)).tolist()
        yield _record_batch(schema, types, rows, wkb)
        written += len(rows)  # GDAL asks for the next batch once this one is written
        if progress is not None:
            progress(written)


def _write_gdal(
    path: Path,
    layer: Layer,
    fmt: FileFormat,
    props: tuple[Prop, ...],
    names: list[str],
    batches: Iterator[list[Any]],
    options: FileOptions,
    progress: Callable[[int], None] | None = None,
) -> None:
    """The file in one GDAL write session fed by a stream of Arrow batches. A GeoPackage gets
    its spatial index (GDAL creates the R-tree in one go when the session ends); a FlatGeobuf
    none: its index would hold an entry per feature in memory until the end."""
    geometry_type = "MultiPolygon" if layer.geometry_type == "polygon" else "Point"
    layer_options = {"SPATIAL_INDEX": "NO"} if fmt.driver == "FlatGeobuf" else None
    fields = dict(zip(names, _arrow_types(props)[:-1], strict=True))
    schema = na.struct({**fields, GEOMETRY: na.binary()})
    stream = BatchStream(schema, _gdal_batches(props, schema, batches, options.coord_sys, progress))
    try:
        pyogrio.raw.write_arrow(
            stream,
            str(path),
            layer=layer.id,
            driver=fmt.driver,
            geometry_name=GEOMETRY,
            geometry_type=geometry_type,
            crs=options.crs,
            encoding=options.encoding if fmt.driver == "ESRI Shapefile" else None,
            layer_options=layer_options,
        )
    except Exception:
        if stream.error is not None:
            raise stream.error from None
        raise


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
            values = [
                v if isinstance(v, int | float) or v is None else safe_cell(str(v))
                for v in row[:-1]
            ]
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
        [safe_cell(v) for v in row]
        for row in zip(
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
    sql = to_psycopg(queries.export_rows_sql(layer, props, where, point=point))
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
