"""Reading the files counties really have: boundaries (GeoJSON, GeoPackage, zipped Shapefile)
and household ledgers (CSV, XLSX). No database here.

A file that cannot be read at all raises a domain error (UnsupportedMedia, RuleViolation). A
feature or row that cannot be read becomes a FieldError for the report, never an exception:
the writers then see every problem of the file at once.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
import struct
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from gridgov.errors import FieldError, PayloadTooLarge, RuleViolation, UnsupportedMedia
from gridgov.gdal import pyogrio
from gridgov.geo import CoordSys, GeoProblem, check_coordinates, convert, transform_geometry
from gridgov.geo.crs import resolve_crs, transformer_to_wgs84
from gridgov.geo.validity import parse_problem, validity_problems
from gridgov.hierarchy.rules import AreaRow
from gridgov.households.service import HouseholdRow
from gridgov.imports import gdal_messages

BOUNDARY_EXTENSIONS = (".geojson", ".json", ".gpkg", ".zip")
LEDGER_EXTENSIONS = (".csv", ".xlsx")
FEATURES = "features"  # loc prefix of boundary errors
ROWS = "rows"  # loc prefix of ledger errors

Progress = Callable[[int], None]


# -- shared -------------------------------------------------------------------------------------


def extension(filename: str) -> str:
    return Path(filename).suffix.lower()


def check_extension(filename: str, kind: str) -> str:
    """The lower-case extension, or UnsupportedMedia naming what is accepted."""
    ext = extension(filename)
    if kind == "units":
        if ext not in BOUNDARY_EXTENSIONS + LEDGER_EXTENSIONS:
            raise UnsupportedMedia(
                f"区划代码表格式“{ext or filename}”不受支持；请上传 CSV、XLSX，"
                "或 GeoJSON、GeoPackage、zip 打包的 Shapefile"
            )
        return ext
    if kind == "boundaries":
        if ext == ".shp":
            raise UnsupportedMedia(
                "Shapefile 请将 .shp、.shx、.dbf、.prj（及 .cpg）一起打包为 zip 上传",
                code="shapefile_not_zipped",
            )
        if ext not in BOUNDARY_EXTENSIONS:
            raise UnsupportedMedia(
                f"边界文件格式“{ext or filename}”不受支持；请上传 GeoJSON、GeoPackage（.gpkg）"
                "或打包为 zip 的 Shapefile"
            )
    else:
        if ext == ".xls":
            raise UnsupportedMedia(
                "不支持旧版 Excel（.xls）；请在 Excel 中另存为 .xlsx 或 CSV 后上传",
                code="legacy_excel",
            )
        if ext not in LEDGER_EXTENSIONS:
            raise UnsupportedMedia(f"台账格式“{ext or filename}”不受支持；请上传 .xlsx 或 .csv")
    return ext


_MAGIC = {
    ".zip": (b"PK\x03\x04", "zip 压缩包"),
    ".xlsx": (b"PK\x03\x04", "Excel .xlsx"),
    ".gpkg": (b"SQLite format 3\x00", "GeoPackage"),
}


def check_content(path: Path, ext: str) -> None:
    """Refuse a file whose first bytes contradict its extension (renamed .xls, HTML page…)."""
    with path.open("rb") as fh:
        head = fh.read(16)
    if not head:
        raise UnsupportedMedia("上传的文件为空", code="empty_file")
    magic = _MAGIC.get(ext)
    if magic and not head.startswith(magic[0]):
        raise UnsupportedMedia(
            f"文件内容不是 {magic[1]}（扩展名与内容不符）", code="content_mismatch"
        )


def _unreadable(exc: Exception | str) -> UnsupportedMedia:
    text = str(exc).split("; It might help")[0][:300]
    return UnsupportedMedia(f"无法读取文件：{text}", code="unreadable_file")


def _file_error(field_: str, msg: str, code: str) -> RuleViolation:
    return RuleViolation([FieldError(["file", field_], msg, code)])


def _text(value: Any) -> str | None:
    """A cell or attribute as trimmed text; integral numbers without the ``.0``."""
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
    elif isinstance(value, int | np.integer):
        return str(int(value))
    # NUL cannot be stored in PostgreSQL text; it is never meaningful in a ledger cell.
    out = str(value).replace("\x00", "").strip()
    return out or None


def _digits_text(value: Any) -> str | None:
    """Like ``_text``, with full-width digits and signs (typed on a Chinese IME) made ASCII."""
    out = _text(value)
    if out is None:
        return None
    return unicodedata.normalize("NFKC", out).strip() or None


_SCI = re.compile(r"^[0-9]+(\.[0-9]+)?[eE]\+?[0-9]+$")
_INT_DOT_ZERO = re.compile(r"^[0-9]+\.0+$")


def normalise_code(value: Any) -> str | None:
    """A 统计用区划代码 or other digit code read as number or text → its digit string.

    Spreadsheets and DBF numeric fields turn 439902100201 into 439902100201.0 or
    4.39902100201e11; these are the same code (exact: codes are far below 2**53).
    """
    out = _digits_text(value)
    if out is None:
        return None
    if _INT_DOT_ZERO.match(out):
        return out.split(".", 1)[0]
    if _SCI.match(out):
        try:
            number = Decimal(out)
        except InvalidOperation:
            return out
        if number == number.to_integral_value():
            return str(int(number))
    return out


@contextmanager
def as_path(source: Path | bytes, filename: str) -> Iterator[Path]:
    """A path for ``source``; bytes are written to a temporary file that is removed afterwards."""
    if isinstance(source, Path):
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="gridgov-import-") as tmp:
        path = Path(tmp) / ("upload" + extension(filename))
        path.write_bytes(source)
        yield path


# -- boundaries ---------------------------------------------------------------------------------

CODE_FIELDS = {
    "grid": ("WGBM", "网格编码", "网格代码", "代码", "编码", "code", "WGDM"),
    "unit": (
        "XZQDM",
        "区划代码",
        "统计用区划代码",
        "行政区划代码",
        "代码",
        "编码",
        "code",
        "adcode",  # DataV / AMap district GeoJSON
        "CUNDM",
        "XZDM",
    ),
}
NAME_FIELDS = {
    "grid": ("WGMC", "网格名称", "名称", "name", "XZQMC"),
    "unit": ("XZQMC", "名称", "name", "村名称", "单位名称", "CUNMC", "XZMC"),
}


@dataclass
class BoundaryFile:
    rows: list[AreaRow]
    errors: list[FieldError]  # features that could not be read
    total: int
    fields: list[str]
    code_field: str
    name_field: str
    crs: str | None  # as declared by the file (or the override)
    encoding: str | None = None
    warnings: list[FieldError] = field(default_factory=list)  # what GDAL said while reading


def read_boundaries(
    source: Path | bytes,
    *,
    filename: str,
    level: str = "village",
    code_field: str | None = None,
    name_field: str | None = None,
    crs: str | None = None,
    coord_sys: CoordSys | str = CoordSys.wgs84,
    layer: str | None = None,
    max_unpacked_bytes: int | None = None,
) -> BoundaryFile:
    """Every feature of a polygon layer as a WGS84 ``AreaRow`` (index = position in the layer)."""
    ext = check_extension(filename, "boundaries")
    coord_sys = CoordSys(coord_sys)
    with as_path(source, filename) as path:
        check_content(path, ext)
        notes: list[FieldError] = []
        if ext == ".zip":
            with tempfile.TemporaryDirectory(prefix="gridgov-shp-") as tmp:
                shp, encoding = extract_shapefile(
                    path, Path(tmp), layer=layer, max_unpacked_bytes=max_unpacked_bytes
                )
                meta, wkb, geoms, values = _read_layer(shp, None, encoding, notes)
        else:
            encoding = None
            meta, wkb, geoms, values = _read_layer(path, _pick_layer(path, layer), None, notes)
    fields = [str(f) for f in meta["fields"]]
    group = "grid" if level == "grid" else "unit"
    code_key = _pick_field(fields, code_field, CODE_FIELDS[group], "code", "代码")
    name_key = _pick_field(fields, name_field, NAME_FIELDS[group], "name", "名称")
    declared = crs or meta.get("crs")
    try:
        to_wgs84 = transformer_to_wgs84(resolve_crs(declared))
    except ValueError as exc:
        loc = ["options", "crs"] if crs else ["file", "crs"]
        raise RuleViolation([FieldError(loc, str(exc), "invalid_crs")]) from exc

    codes = values[fields.index(code_key)]
    names = values[fields.index(name_key)]
    rows: list[AreaRow] = []
    errors: list[FieldError] = []
    for i, geom in enumerate(geoms):
        code = normalise_code(codes[i])
        name = _text(names[i])
        ref = code or name

        def bad(p: GeoProblem, i: int = i, ref: str | None = ref) -> None:
            errors.append(
                FieldError(
                    [FEATURES, i, "geometry"],
                    p.message,
                    p.code,
                    index=i,
                    id=ref,
                    detail_en=p.detail_en,
                )
            )

        if geom is None and wkb[i] is not None:
            # GDAL read a geometry that GEOS cannot build (an unclosed ring …): say why.
            bad(_wkb_problem(wkb[i]))
            continue
        if geom is not None and not shapely.is_empty(geom):
            if geom.geom_type not in ("Polygon", "MultiPolygon"):
                bad(
                    GeoProblem(
                        "geometry_type",
                        f"几何类型应为面（Polygon/MultiPolygon），收到 {geom.geom_type}",
                    )
                )
                continue
            geom = to_wgs84(shapely.force_2d(geom))
            problems = check_coordinates(geom)
            if problems:
                # Not sent to PostGIS: its validity is judged here, so all rules are listed.
                for p in problems + validity_problems(geom):
                    bad(p)
                continue
            if coord_sys != CoordSys.wgs84:
                geom = transform_geometry(geom, coord_sys, CoordSys.wgs84)
            if geom.geom_type == "Polygon":
                geom = shapely.MultiPolygon([geom])
        else:
            geom = None  # the writer decides whether this level needs a boundary
        rows.append(AreaRow(i, code or "", name or "", geom, ref=ref))
    return BoundaryFile(
        rows=rows,
        errors=errors,
        total=len(geoms),
        fields=fields,
        code_field=code_key,
        name_field=name_key,
        crs=str(declared) if declared else None,
        encoding=encoding,
        warnings=notes,
    )


def _pick_layer(path: Path, layer: str | None) -> str | None:
    try:
        with gdal_messages.collected():  # the real read reports what GDAL says
            layers = pyogrio.list_layers(path)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, RuntimeError) as exc:
        raise _unreadable(exc) from exc
    names = [str(name) for name, _ in layers]
    if layer is not None:
        if layer not in names:
            raise _file_error(
                "layer",
                f"文件中没有图层“{layer}”（现有图层：{'、'.join(names)}）",
                "layer_not_found",
            )
        return layer
    if len(names) <= 1:
        return None
    polygonal = [str(n) for n, t in layers if "Polygon" in str(t) or str(t) == "Unknown"]
    if len(polygonal) == 1:
        return polygonal[0]
    raise _file_error(
        "layer", f"文件含多个图层（{'、'.join(names)}），请指定 layer", "multiple_layers"
    )


def _read_layer(
    path: Path, layer: str | None, encoding: str | None, notes: list[FieldError]
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, list[np.ndarray]]:
    """The layer's metadata, WKB, shapely geometries (None where GEOS refuses the WKB) and
    attribute columns. GDAL's warnings go to ``notes`` for the report, not to the terminal."""
    try:
        with gdal_messages.collected() as said:
            meta, _fids, wkb, values = pyogrio.raw.read(path, layer=layer, encoding=encoding)
        notes.extend(_gdal_note(message) for message in dict.fromkeys(said))
    except UnicodeDecodeError as exc:
        raise UnsupportedMedia(
            f"属性文字无法按 {encoding} 解码；"
            "请在压缩包中附上注明编码的 .cpg 文件（如 GBK 或 UTF-8）",
            code="unknown_encoding",
        ) from exc
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, RuntimeError) as exc:
        raise _unreadable(exc) from exc
    if wkb is None:
        raise _file_error("geometry", "文件没有几何列", "no_geometry_column")
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    return meta, wkb, geoms, list(values)


def _wkb_problem(wkb: bytes) -> GeoProblem:
    try:
        shapely.from_wkb(wkb, on_invalid="raise")
    except (shapely.errors.GEOSException, ValueError) as exc:
        return parse_problem(exc)
    return parse_problem("unknown")  # pragma: no cover - from_wkb failed once already


_GDAL_NOTES = (
    ("Non closed ring", "gdal_unclosed_ring", "文件中有未闭合的面边界环（相应要素已逐条报错）"),
)


def _gdal_note(message: str) -> FieldError:
    """A warning GDAL printed while reading, as a report entry (Chinese, English kept aside)."""
    for needle, code, msg in _GDAL_NOTES:
        if needle.lower() in message.lower():
            return FieldError(["file"], msg, code, detail_en=message)
    return FieldError(
        ["file"], "读取文件时 GDAL 给出提示（见 detail_en）", "gdal_warning", detail_en=message
    )


def _pick_field(
    fields: Sequence[str], explicit: str | None, candidates: Sequence[str], key: str, label: str
) -> str:
    by_lower = {f.lower(): f for f in fields}
    shown = "、".join(fields) or "无"
    if explicit:
        found = by_lower.get(explicit.strip().lower())
        if found is None:
            raise RuleViolation(
                [
                    FieldError(
                        ["options", f"{key}_field"],
                        f"文件中没有字段“{explicit}”（现有字段：{shown}）",
                        "field_not_found",
                    )
                ]
            )
        return found
    for candidate in candidates:
        if candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
    raise RuleViolation(
        [
            FieldError(
                ["options", f"{key}_field"],
                f"找不到{label}字段，请用 {key}_field 指定（现有字段：{shown}）",
                "field_not_found",
            )
        ]
    )


def _member_name(info: zipfile.ZipInfo) -> str:
    """Member names as the user sees them: Windows zip tools write GBK without the UTF-8 flag."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gbk")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def extract_shapefile(
    path: Path, workdir: Path, *, layer: str | None = None, max_unpacked_bytes: int | None = None
) -> tuple[Path, str | None]:
    """Unpack one Shapefile from a zip under safe names; (the .shp, encoding to read it with).

    Only the Shapefile's own members are written, under fixed names: no zip-slip, and member
    names in any encoding do not matter.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsupportedMedia("zip 压缩包已损坏或无法打开", code="unreadable_file") from exc
    with zf:
        infos = [
            i
            for i in zf.infolist()
            if not i.is_dir()
            and "__MACOSX" not in i.filename
            and not Path(i.filename).name.startswith(".")
        ]
        if max_unpacked_bytes is not None and sum(i.file_size for i in infos) > max_unpacked_bytes:
            raise PayloadTooLarge(f"压缩包解压后超过 {max_unpacked_bytes // 2**20} MB")
        shps = [i for i in infos if i.filename.lower().endswith(".shp")]
        if not shps:
            raise _file_error("shapefile", "压缩包中没有 .shp 文件", "no_shapefile")
        if len(shps) > 1:
            stems = [Path(_member_name(i)).stem for i in shps]
            chosen = [i for i, s in zip(shps, stems, strict=True) if layer and s == layer]
            if not chosen:
                raise _file_error(
                    "layer",
                    f"压缩包中有多个 Shapefile（{'、'.join(stems)}），请用 layer 指定其一",
                    "multiple_layers",
                )
            shps = chosen
        stem = shps[0].filename[:-4].lower()
        members = {i.filename.lower(): i for i in infos}
        found: dict[str, zipfile.ZipInfo] = {}
        for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            info = members.get(stem + ext)
            if info is not None:
                found[ext] = info
        missing = [ext for ext in (".shx", ".dbf") if ext not in found]
        if missing:
            raise _file_error(
                "shapefile", f"Shapefile 缺少 {'、'.join(missing)} 文件", "shapefile_incomplete"
            )
        budget = max_unpacked_bytes
        for ext, info in found.items():
            budget = _unpack(zf, info, workdir / f"layer{ext}", budget)
    encoding = None if ".cpg" in found else dbf_encoding(workdir / "layer.dbf")
    return workdir / "layer.shp", encoding


def _unpack(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int | None
) -> int | None:
    """Copy one member out, counting the bytes really unpacked (the sizes in a zip's headers
    are the sender's claim); a damaged member — bad CRC, truncated or corrupt data, sizes that
    do not match — is a 415, never an exception further on. Returns the budget left."""
    try:
        with zf.open(info) as src, target.open("wb") as dst:
            while chunk := src.read(1 << 20):
                if budget is not None:
                    budget -= len(chunk)
                    if budget < 0:
                        raise PayloadTooLarge("压缩包解压后超过允许的大小")
                dst.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise UnsupportedMedia(
            f"zip 压缩包中的 {_member_name(info)} 已损坏（校验失败或数据不完整）",
            code="unreadable_file",
        ) from exc
    return budget


def dbf_encoding(dbf: Path, *, sample: int = 8 << 20) -> str:
    """The text encoding of a .dbf that came without a .cpg: UTF-8 if its text is, else GBK.

    Without a .cpg GDAL falls back to the DBF language byte, which Chinese tools mostly leave at
    0 (read as ISO-8859-1: mojibake). Attribute text that is not valid UTF-8 in a Chinese
    county's file is CP936/GBK, what ArcGIS and most desktop tools write on Chinese Windows.
    Only field names and record bytes are checked: descriptor bytes are binary.
    """
    with dbf.open("rb") as fh:
        data = fh.read(sample)
    if len(data) < 32:
        return "UTF-8"
    header_len = struct.unpack("<H", data[8:10])[0]
    names = b"".join(
        data[pos : pos + 11].split(b"\x00", 1)[0] for pos in range(32, header_len - 1, 32)
    )
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(names, final=True)
        decoder.reset()
        # A sample may end inside a character: final=False keeps that from counting as bad.
        decoder.decode(data[header_len:], final=len(data) < sample)
    except UnicodeDecodeError:
        return "GBK"
    return "UTF-8"


# -- household ledgers ----------------------------------------------------------------------------

HOUSEHOLD_FIELDS = (
    "head_name",
    "phone",
    "id_number",
    "address",
    "lon",
    "lat",
    "size",
    "tags",
    "external_id",
    "village_code",
    "hamlet",
)
REQUIRED_FIELDS = {"head_name": "户主姓名", "lon": "经度", "lat": "纬度"}
DEFAULT_HEADERS: dict[str, str] = {
    "户主姓名": "head_name",
    "户主": "head_name",
    "姓名": "head_name",
    "联系电话": "phone",
    "电话": "phone",
    "手机": "phone",
    "手机号": "phone",
    "手机号码": "phone",
    "身份证号": "id_number",
    "身份证号码": "id_number",
    "户主身份证号": "id_number",
    "地址": "address",
    "住址": "address",
    "家庭住址": "address",
    "经度": "lon",
    "lon": "lon",
    "lng": "lon",
    "longitude": "lon",
    "纬度": "lat",
    "lat": "lat",
    "latitude": "lat",
    "人口数": "size",
    "家庭人口": "size",
    "家庭人口数": "size",
    "标签": "tags",
    "重点人群": "tags",
    "户编号": "external_id",
    "台账编号": "external_id",
    "编号": "external_id",
    "户号": "external_id",
    "村代码": "village_code",
    "村编码": "village_code",
    "村民小组": "hamlet",
    "组": "hamlet",
}
# How far down a sheet the header row may be (title rows, notes above the table).
HEADER_SEARCH_ROWS = 30


@dataclass
class LedgerFile:
    """The rows of a ledger. ``HouseholdRow.idx`` is the row's line number in the file."""

    rows: list[HouseholdRow]
    total: int
    columns: dict[str, str]  # header as written → field
    ignored: list[str] = field(default_factory=list)  # headers not used
    header_line: int = 1
    encoding: str | None = None
    sheet: str | None = None


def normalise_header(value: Any) -> str:
    text = unicodedata.normalize("NFKC", str(value or ""))
    text = re.sub(r"\s+", "", text).strip("*：:")
    return text.lower()


def _strip_note(header: str) -> str:
    # “经度(WGS84)”, “联系电话（手机）” → the bare header
    return re.sub(r"[(（\[【].*?[)）\]】]$", "", header)


def header_map(mapping: dict[str, str] | None) -> dict[str, str]:
    """Defaults overlaid with the caller's header → field mapping (normalised headers)."""
    out = {normalise_header(k): v for k, v in DEFAULT_HEADERS.items()}
    for header, target in (mapping or {}).items():
        if target not in HOUSEHOLD_FIELDS:
            raise RuleViolation(
                [
                    FieldError(
                        ["options", "mapping", header],
                        f"未知的字段“{target}”，可用：{'、'.join(HOUSEHOLD_FIELDS)}",
                        "unknown_field",
                    )
                ]
            )
        out[normalise_header(header)] = target
    return out


def _columns(cells: Sequence[Any], headers: dict[str, str]) -> dict[int, str]:
    """Column position → field for one candidate header row (first column wins a field)."""
    out: dict[int, str] = {}
    taken: set[str] = set()
    for pos, cell in enumerate(cells):
        name = normalise_header(cell)
        target = headers.get(name) or headers.get(_strip_note(name))
        if target and target not in taken:
            out[pos] = target
            taken.add(target)
    return out


def read_households(
    source: Path | bytes,
    *,
    filename: str,
    mapping: dict[str, str] | None = None,
    coord_sys: CoordSys | str = CoordSys.wgs84,
    sheet: str | None = None,
    progress: Progress | None = None,
) -> LedgerFile:
    """Every data row of a CSV/XLSX ledger as a ``HouseholdRow`` with its read errors."""
    ext = check_extension(filename, "households")
    headers = header_map(mapping)
    with as_path(source, filename) as path:
        check_content(path, ext)
        if ext == ".csv":
            encoding, lines = _csv_lines(path)
            ledger = _read_table(lines, headers, progress)
            ledger.encoding = encoding
        else:
            ledger = _read_xlsx(path, headers, sheet, progress)
    _convert_coordinates(ledger.rows, CoordSys(coord_sys))
    return ledger


def _csv_lines(path: Path) -> tuple[str, Iterator[tuple[int, Sequence[Any]]]]:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes nearly any byte string
        raise UnsupportedMedia("无法识别 CSV 的编码（应为 UTF-8 或 GBK）", code="unknown_encoding")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel
    # NUL is never meaningful in a ledger and the csv module refuses it.
    reader = csv.reader(io.StringIO(text.replace("\x00", ""), newline=""), dialect)

    def lines() -> Iterator[tuple[int, Sequence[Any]]]:
        try:
            for row in reader:
                yield reader.line_num, row
        except csv.Error as exc:
            raise _unreadable(f"CSV 第 {reader.line_num} 行：{exc}") from exc

    return ("UTF-8" if encoding == "utf-8-sig" else "GB18030"), lines()


def _read_xlsx(
    path: Path, headers: dict[str, str], sheet: str | None, progress: Progress | None
) -> LedgerFile:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise _unreadable(exc) from exc
    try:
        if sheet is not None:
            if sheet not in workbook.sheetnames:
                raise _file_error(
                    "sheet",
                    f"没有工作表“{sheet}”（现有：{'、'.join(workbook.sheetnames)}）",
                    "sheet_not_found",
                )
            sheets = [workbook[sheet]]
        else:
            sheets = list(workbook.worksheets)
        first_error: RuleViolation | None = None
        for ws in sheets:
            rows = ((n, r) for n, r in enumerate(ws.iter_rows(values_only=True), start=1))
            try:
                ledger = _read_table(rows, headers, progress)
            except RuleViolation as exc:
                # Try the next sheet: a cover or notes sheet often comes first.
                first_error = first_error or exc
                continue
            ledger.sheet = ws.title
            return ledger
        assert first_error is not None
        raise first_error
    finally:
        workbook.close()


def _read_table(
    lines: Iterator[tuple[int, Sequence[Any]]],
    headers: dict[str, str],
    progress: Progress | None,
) -> LedgerFile:
    columns: dict[int, str] | None = None
    header_line = 0
    header_cells: Sequence[Any] = ()
    for line, cells in lines:
        found = _columns(cells, headers)
        if len(found) >= 2:
            columns, header_line, header_cells = found, line, cells
            break
        if line >= HEADER_SEARCH_ROWS:
            break
    if columns is None:
        raise _file_error(
            "columns",
            f"前 {HEADER_SEARCH_ROWS} 行中找不到表头（至少需要两个可识别的列名，如“户主姓名”“经度”"
            "“纬度”）；列名不同时请提供 mapping",
            "header_not_found",
        )
    missing = [label for key, label in REQUIRED_FIELDS.items() if key not in columns.values()]
    if missing:
        raise _file_error(
            "columns",
            f"缺少必需的列：{'、'.join(missing)}（第 {header_line} 行为表头）",
            "missing_columns",
        )
    used = {str(header_cells[pos]).strip(): target for pos, target in columns.items()}
    ignored = [
        str(c).strip()
        for pos, c in enumerate(header_cells)
        if pos not in columns and c not in (None, "")
    ]
    rows: list[HouseholdRow] = []
    for line, cells in lines:
        values = {target: cells[pos] for pos, target in columns.items() if pos < len(cells)}
        if all(_text(v) is None for v in values.values()):
            continue  # blank rows and trailing formatting
        rows.append(_household(line, values))
        if progress and len(rows) % 1000 == 0:
            progress(len(rows))
    return LedgerFile(
        rows=rows, total=len(rows), columns=used, ignored=ignored, header_line=header_line
    )


def _household(line: int, values: dict[str, Any]) -> HouseholdRow:
    errors: list[tuple[str, str, str]] = []
    row = HouseholdRow(
        idx=line,
        head_name=_text(values.get("head_name")),
        lon=None,
        lat=None,
        external_id=normalise_code(values.get("external_id")),
        village_code=normalise_code(values.get("village_code")),
        phone=_phone(values.get("phone")),
        address=_text(values.get("address")),
        hamlet=_text(values.get("hamlet")),
        tags=_text(values.get("tags")),
        read_errors=errors,
    )
    row.ref = row.external_id
    for key, label in (("lon", "经度"), ("lat", "纬度")):
        raw = values.get(key)
        number = _number(raw)
        if number is None and _text(raw) is not None:
            errors.append((key, f"{label}“{_text(raw)}”不是数字", "invalid_number"))
        setattr(row, key, number)
    raw_size = values.get("size")
    if _text(raw_size) is None:
        row.size = 1  # ledgers often leave 人口数 empty; one person is the least a household has
    else:
        size = _number(_text(raw_size).rstrip("人口"))  # type: ignore[union-attr]
        if size is None or not size.is_integer() or not 1 <= size <= 30:
            errors.append(("size", f"人口数“{_text(raw_size)}”应为 1–30 的整数", "invalid_size"))
            row.size = 1  # reported above; keep the writer from reporting it twice
        else:
            row.size = int(size)
    row.id_number = _id_number(values.get("id_number"), errors)
    return row


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    text = _digits_text(value)
    if text is None:
        return None
    try:
        number = float(text.rstrip("°"))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _phone(value: Any) -> str | None:
    text = _digits_text(value)
    if text and _INT_DOT_ZERO.match(text):
        text = text.split(".", 1)[0]
    return text


def _id_number(value: Any, errors: list[tuple[str, str, str]]) -> str | None:
    # Excel keeps 15 significant digits: an ID number typed as a number has lost its last
    # digits and cannot be recovered; say so rather than "check digit wrong".
    lost = "身份证号被存为数字，末几位已丢失；请将该列设为文本格式后重新导出"
    if isinstance(value, float | np.floating):
        errors.append(("id_number", lost, "id_number_as_number"))
        return None
    text = _digits_text(value)
    if text and _SCI.match(text):
        errors.append(("id_number", lost, "id_number_as_number"))
        return None
    return text.upper() if text else None


def _convert_coordinates(rows: list[HouseholdRow], coord_sys: CoordSys) -> None:
    """GCJ-02/BD-09 ledger coordinates → WGS84, in one vector pass."""
    if coord_sys == CoordSys.wgs84:
        return
    located = [r for r in rows if r.lon is not None and r.lat is not None]
    if not located:
        return
    lon = np.array([r.lon for r in located], dtype=np.float64)
    lat = np.array([r.lat for r in located], dtype=np.float64)
    out_lon, out_lat = convert(lon, lat, coord_sys, CoordSys.wgs84)
    for row, x, y in zip(located, out_lon.tolist(), out_lat.tolist(), strict=True):
        row.lon, row.lat = x, y


# -- sizes --------------------------------------------------------------------------------------


def count_rows(path: Path, *, filename: str) -> int:
    """A cheap estimate of the number of features/rows, to decide inline vs background job."""
    ext = extension(filename)
    try:
        if ext == ".csv":
            with path.open("rb") as fh:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
            return max(lines - 1, 0)
        if ext == ".xlsx":
            import openpyxl

            wb = openpyxl.load_workbook(path, read_only=True)
            try:
                return max((ws.max_row or 0) - 1 for ws in wb.worksheets)
            finally:
                wb.close()
        if ext == ".zip":
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if info.filename.lower().endswith(".dbf"):
                        with zf.open(info) as fh:
                            return int(struct.unpack("<I", fh.read(8)[4:8])[0])
            return 0
        with gdal_messages.collected():  # the real read reports what GDAL says
            return int(pyogrio.read_info(path)["features"])
    except Exception:  # a broken file is reported by the real read, with a proper message
        return 0


# -- official code lists (统计用区划代码) ---------------------------------------------------------

CODE_LIST_CODE_HEADERS = (
    "统计用区划代码",
    "区划代码",
    "行政区划代码",
    "代码",
    "编码",
    "code",
    "adcode",
)
CODE_LIST_NAME_HEADERS = ("名称", "单位名称", "区划名称", "name")
CODE_LIST_URBAN_RURAL_HEADERS = ("城乡分类代码", "城乡分类", "urban_rural_code")
UNIT_LEVELS = {6: "county", 9: "township", 12: "village"}


@dataclass
class CodeListRow:
    idx: int  # line number (table) or feature position (GIS file)
    code: str  # 6/9/12 digits as stored (trailing zeros of the published 12-digit form cut)
    name: str
    level: str
    urban_rural_code: str | None = None
    geom: shapely.Geometry | None = None


@dataclass
class CodeList:
    rows: list[CodeListRow]
    errors: list[FieldError]
    total: int
    source: str  # "table" or "gis"
    encoding: str | None = None
    warnings: list[FieldError] = field(default_factory=list)
    crs: str | None = None


def unit_code(published: str) -> str | None:
    """A code as the statistics bureau publishes it (12 digits at every level: 150422000000 is
    the county, 150422100000 a township) → the unit's own 6/9/12-digit code; None if invalid."""
    if not published.isdigit():
        return None
    if len(published) == 12:
        if published.endswith("000000"):
            return published[:6]
        if published.endswith("000"):
            return published[:9]
        return published
    return published if len(published) in (6, 9) else None


def read_code_list(
    source: Path | bytes,
    *,
    filename: str,
    code_field: str | None = None,
    name_field: str | None = None,
    crs: str | None = None,
    coord_sys: CoordSys | str = CoordSys.wgs84,
    layer: str | None = None,
    sheet: str | None = None,
    max_unpacked_bytes: int | None = None,
) -> CodeList:
    """A county's townships and villages from the official list: a CSV/XLSX table of code and
    name (城乡分类代码 optional; with or without a header row, as the bureau's pages are copied),
    or a GIS file whose features may have no geometry. The level comes from the code."""
    ext = check_extension(filename, "units")
    if ext in BOUNDARY_EXTENSIONS:
        data = read_boundaries(
            source,
            filename=filename,
            level="village",
            code_field=code_field,
            name_field=name_field,
            crs=crs,
            coord_sys=coord_sys,
            layer=layer,
            max_unpacked_bytes=max_unpacked_bytes,
        )
        errors = list(data.errors)
        rows = []
        for r in data.rows:
            row = _code_list_row(r.idx, r.code, r.name, None, errors, loc_prefix=FEATURES)
            if row is not None:
                row.geom = r.geom
                rows.append(row)
        return CodeList(rows, errors, data.total, "gis", data.encoding, data.warnings, crs=data.crs)
    with as_path(source, filename) as path:
        check_content(path, ext)
        if ext == ".csv":
            encoding, lines = _csv_lines(path)
            table = list(lines)
        else:
            encoding = None
            table = _xlsx_table(path, sheet)
    rows, errors = _code_list_table(table, code_field, name_field)
    return CodeList(rows, errors, len(rows) + len({e.index for e in errors}), "table", encoding)


def _xlsx_table(path: Path, sheet: str | None) -> list[tuple[int, Sequence[Any]]]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise _unreadable(exc) from exc
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise _file_error(
                "sheet",
                f"没有工作表“{sheet}”（现有：{'、'.join(workbook.sheetnames)}）",
                "sheet_not_found",
            )
        ws = workbook[sheet] if sheet is not None else workbook.worksheets[0]
        return [(n, r) for n, r in enumerate(ws.iter_rows(values_only=True), start=1)]
    finally:
        workbook.close()


def _header_position(
    cells: Sequence[Any], explicit: str | None, names: Sequence[str]
) -> int | None:
    headers = [normalise_header(c).lower() for c in cells]
    wanted = [explicit.strip().lower()] if explicit else [n.lower() for n in names]
    for name in wanted:
        if name in headers:
            return headers.index(name)
    return None


def _code_list_table(
    table: list[tuple[int, Sequence[Any]]], code_field: str | None, name_field: str | None
) -> tuple[list[CodeListRow], list[FieldError]]:
    code_pos = name_pos = urban_pos = None
    start = 0
    for i, (_line, cells) in enumerate(table[:HEADER_SEARCH_ROWS]):
        found = _header_position(cells, code_field, CODE_LIST_CODE_HEADERS)
        if found is not None:
            code_pos = found
            name_pos = _header_position(cells, name_field, CODE_LIST_NAME_HEADERS)
            urban_pos = _header_position(cells, None, CODE_LIST_URBAN_RURAL_HEADERS)
            start = i + 1
            if name_pos is None:
                raise _file_error(
                    "columns",
                    f"第 {table[i][0]} 行为表头，但找不到名称列（如“名称”）；请用 name_field 指定",
                    "missing_columns",
                )
            break
    if code_pos is None:
        if code_field or name_field:
            raise _file_error(
                "columns", f"前 {HEADER_SEARCH_ROWS} 行中找不到指定的列", "header_not_found"
            )
        # No header, as copied from the bureau's pages: code, [城乡分类代码,] name.
        for _line, cells in table:
            values = [_digits_text(c) for c in cells]
            if values and values[0] and values[0].isdigit():
                code_pos = 0
                texts = [j for j, v in enumerate(values) if v and not v.isdigit()]
                name_pos = texts[0] if texts else None
                digits = [j for j, v in enumerate(values[1:], start=1) if v and v.isdigit()]
                urban_pos = digits[0] if digits and len(values[digits[0]] or "") == 3 else None
                break
        if code_pos is None or name_pos is None:
            raise _file_error(
                "columns",
                "找不到区划代码和名称：表头应含“统计用区划代码”（或“区划代码”“代码”）和“名称”，"
                "或不带表头、每行为“代码，名称”",
                "header_not_found",
            )
    rows: list[CodeListRow] = []
    errors: list[FieldError] = []
    for line, cells in table[start:]:

        def cell(pos: int | None, cells: Sequence[Any] = cells) -> Any:
            return cells[pos] if pos is not None and pos < len(cells) else None

        code, name = normalise_code(cell(code_pos)), _text(cell(name_pos))
        if code is None and name is None:
            continue  # blank and trailing rows
        row = _code_list_row(line, code or "", name or "", _digits_text(cell(urban_pos)), errors)
        if row is not None:
            rows.append(row)
    return rows, errors


def _code_list_row(
    idx: int,
    published: str,
    name: str,
    urban_rural: str | None,
    errors: list[FieldError],
    *,
    loc_prefix: str = ROWS,
) -> CodeListRow | None:
    code = unit_code(published)
    ref = published or name or None
    if code is None:
        errors.append(
            FieldError(
                [loc_prefix, idx, "code"],
                f"区划代码应为 6、9 或 12 位数字，收到“{published}”",
                "invalid_code",
                index=idx,
                id=ref,
            )
        )
        return None
    if not name.strip():
        errors.append(
            FieldError([loc_prefix, idx, "name"], "名称不能为空", "missing_name", index=idx, id=ref)
        )
        return None
    if urban_rural is not None and not (urban_rural.isdigit() and len(urban_rural) == 3):
        urban_rural = None
    return CodeListRow(idx, code, name, UNIT_LEVELS[len(code)], urban_rural)
