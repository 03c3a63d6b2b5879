"""Imports: one uploaded file, validated whole, loaded whole or not at all (DESIGN §2).

``start_import`` stores the upload and an ``ImportJob``; small files run at once in the caller's
transaction, big ones in a background thread with its own transaction (``run_job``), which
reports progress through separate short transactions so that ``GET /imports/{id}`` can show
it. Either way ``run_import`` does the work: read the file, hand every row to the domain's
writer, and report every problem found — file, row and rule — together.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import delete, event, insert, select, text, update
from sqlalchemy.orm import Session

from gridgov.audit import service as audit
from gridgov.auth.models import User
from gridgov.auth.permissions import Perm
from gridgov.auth.scope import Scope, scope_for, system_scope
from gridgov.config import get_settings
from gridgov.db import session_scope
from gridgov.errors import (
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    PayloadInvalid,
    PayloadTooLarge,
    RuleViolation,
)
from gridgov.geo import CoordSys
from gridgov.geo.crs import resolve_crs
from gridgov.hierarchy import service as hierarchy_service
from gridgov.hierarchy.models import AdminUnit, DivisionCode, Grid
from gridgov.hierarchy.rules import AreaRow
from gridgov.households import service as households_service
from gridgov.imports import readers
from gridgov.imports.models import ImportJob

log = logging.getLogger("gridgov.imports")

KINDS = ("boundaries", "households", "units")
LEVELS = ("township", "village", "grid")
PERM_FOR_KIND = {
    "boundaries": Perm.import_boundaries,
    "households": Perm.import_households,
    "units": Perm.import_boundaries,
}
EDITION_PATTERN = re.compile(r"^(19|20)[0-9]{2}$")

# progress(stage, done, total); stages: reading, validating, writing, done.
ProgressFn = Callable[[str, int, int], None]
SessionFactory = Callable[[], AbstractContextManager[Session]]


@dataclass
class ImportOutcome:
    job: ImportJob
    report: dict[str, Any] | None  # None while the job waits for its background thread

    @property
    def queued(self) -> bool:
        return self.report is None


# -- options --------------------------------------------------------------------------------------


def _invalid(field: str, msg: str, code: str) -> PayloadInvalid:
    return PayloadInvalid([FieldError(["options", field], msg, code)])


def normalise_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """Checked, JSON-able options (stored on the job, read again by the background thread)."""
    try:
        coord_sys = CoordSys(options.get("coord_sys") or CoordSys.wgs84)
    except ValueError as exc:
        raise _invalid(
            "coord_sys", "coord_sys 应为 wgs84、gcj02 或 bd09", "invalid_coord_sys"
        ) from exc
    out: dict[str, Any] = {"coord_sys": coord_sys.value}
    if kind == "units":
        edition = (str(options.get("edition") or "")).strip() or None
        if edition is not None and not EDITION_PATTERN.match(edition):
            raise _invalid("edition", "edition 应为代码表的年份，如 2023", "invalid_edition")
        out["edition"] = edition
        out["retire_missing"] = bool(options.get("retire_missing"))
        if out["retire_missing"] and edition is None:
            raise _invalid(
                "retire_missing",
                "撤销代码表中没有的单位时须注明代码表版本（edition）",
                "edition_required",
            )
        crs = (options.get("crs") or "").strip() or None
        if crs is not None:
            try:
                resolve_crs(crs)
            except ValueError as exc:
                raise _invalid("crs", str(exc), "invalid_crs") from exc
        out["crs"] = crs
        for key in ("code_field", "name_field", "layer", "sheet"):
            out[key] = (options.get(key) or "").strip() or None
        return out
    if kind == "boundaries":
        level = options.get("level") or "village"
        if level not in LEVELS:
            raise _invalid("level", "level 应为 township、village 或 grid", "invalid_level")
        out["level"] = level
        crs = (options.get("crs") or "").strip() or None
        if crs is not None:
            try:
                resolve_crs(crs)
            except ValueError as exc:
                raise _invalid("crs", str(exc), "invalid_crs") from exc
        out["crs"] = crs
        for key in ("code_field", "name_field", "layer"):
            out[key] = (options.get(key) or "").strip() or None
        out["clear_geometry"] = bool(options.get("clear_geometry"))
        return out
    mapping = options.get("mapping")
    if isinstance(mapping, str):
        mapping = mapping.strip() or None
        if mapping is not None:
            try:
                mapping = json.loads(mapping)
            except json.JSONDecodeError as exc:
                raise _invalid(
                    "mapping", f"mapping 不是合法的 JSON：{exc.msg}", "invalid_mapping"
                ) from exc
    if mapping is not None and not (
        isinstance(mapping, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())
    ):
        raise _invalid(
            "mapping",
            'mapping 应为“列名 → 字段”的 JSON 对象，如 {"户主": "head_name"}',
            "invalid_mapping",
        )
    if mapping:
        readers.header_map(mapping)  # unknown target fields are refused before any upload work
    out["mapping"] = mapping or None
    out["sheet"] = (options.get("sheet") or "").strip() or None
    return out


# -- the work -------------------------------------------------------------------------------------


def _error_dict(e: FieldError) -> dict[str, Any]:
    out = {"index": e.index, "id": e.id, "loc": e.loc, "msg": e.msg, "code": e.code}
    if e.detail_en is not None:
        out["detail_en"] = e.detail_en
    return out


def _field_error(d: dict[str, Any]) -> FieldError:
    return FieldError(
        d["loc"],
        d["msg"],
        d["code"],
        index=d.get("index"),
        id=d.get("id"),
        detail_en=d.get("detail_en"),
    )


def _report(
    *,
    kind: str,
    filename: str,
    dry_run: bool,
    total: int,
    errors: list[FieldError],
    written: int = 0,
    outside_grid: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    errors = sorted(errors, key=lambda e: (-1 if e.index is None else e.index, str(e.loc)))
    bad = {e.index for e in errors if e.index is not None}
    file_level = any(e.index is None for e in errors)
    return {
        "status": "failed" if errors else ("validated" if dry_run else "succeeded"),
        "kind": kind,
        "filename": filename,
        "dry_run": dry_run,
        "total": total,
        "valid": 0 if file_level else max(total - len(bad), 0),
        "written": 0 if errors else written,
        "outside_grid": outside_grid,
        "error_count": len(errors),
        **extra,
        "errors": [_error_dict(e) for e in errors],
    }


def run_import(
    session: Session,
    scope: Scope,
    *,
    kind: str,
    path: Path,
    filename: str,
    options: dict[str, Any],
    dry_run: bool,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Read ``path`` and write it through the domain writer; the report lists every error.

    Nothing is written when any row, feature or rule fails, nor on a dry run. A file that
    cannot be read at all raises its domain error (UnsupportedMedia, RuleViolation).
    """
    notify: ProgressFn = progress or (lambda stage, done, total: None)
    if kind == "boundaries":
        return _import_boundaries(session, scope, path, filename, options, dry_run, notify)
    if kind == "units":
        return _import_units(session, scope, path, filename, options, dry_run, notify)
    return _import_households(session, scope, path, filename, options, dry_run, notify)


def _current_ids(session: Session, scope: Scope, level: str, codes: list[str]) -> dict[str, int]:
    """Current units/grids in scope by code: re-importing a code updates it, never duplicates."""
    if not codes:
        return {}
    if level == "grid":
        query = select(Grid.code, Grid.id).where(
            scope.where(Grid), Grid.code.in_(codes), Grid.valid_to.is_(None)
        )
    else:
        query = select(AdminUnit.code, AdminUnit.id).where(
            scope.where(AdminUnit),
            AdminUnit.code.in_(codes),
            AdminUnit.level == level,
            AdminUnit.valid_to.is_(None),
        )
    return {code: id_ for code, id_ in session.execute(query)}


def _indexed(errors: list[FieldError], rows: list[AreaRow], prefix: str) -> list[FieldError]:
    """The area writer names a lone row without its index (API style); imports always index."""
    if len(rows) != 1:
        return errors
    idx = rows[0].idx
    for e in errors:
        if e.index is None and e.loc[:1] == [prefix] and len(e.loc) == 2:
            e.loc = [prefix, idx, e.loc[1]]
            e.index = idx
    return errors


def _import_boundaries(
    session: Session,
    scope: Scope,
    path: Path,
    filename: str,
    options: dict[str, Any],
    dry_run: bool,
    notify: ProgressFn,
) -> dict[str, Any]:
    level = options["level"]
    notify("reading", 0, 0)
    data = readers.read_boundaries(
        path,
        filename=filename,
        level=level,
        code_field=options.get("code_field"),
        name_field=options.get("name_field"),
        crs=options.get("crs"),
        coord_sys=options.get("coord_sys") or CoordSys.wgs84,
        layer=options.get("layer"),
        max_unpacked_bytes=4 * get_settings().limits.upload_max_bytes,
    )
    if data.total == 0:
        raise RuleViolation([FieldError(["file", "features"], "文件中没有要素", "empty_file")])
    notify("validating", 0, data.total)
    targets = _current_ids(session, scope, level, [r.code for r in data.rows if r.code])
    for row in data.rows:
        row.target_id = targets.get(row.code)
    # Features that could not be read are reported with the writer's findings on the others,
    # and stop the write just as a broken rule does.
    check_only = dry_run or bool(data.errors)
    if level == "grid":
        written = hierarchy_service.write_grids(
            session,
            scope,
            data.rows,
            county_code=scope.county_code,
            loc_prefix=[readers.FEATURES],
            dry_run=check_only,
        )
    else:
        written = hierarchy_service.write_units(
            session,
            scope,
            data.rows,
            level=level,
            county_code=scope.county_code,
            loc_prefix=[readers.FEATURES],
            dry_run=check_only,
            clear_geometry=bool(options.get("clear_geometry")),
        )
    errors = _indexed(written.errors, data.rows, readers.FEATURES)
    notify("writing", data.total, data.total)
    return _report(
        kind="boundaries",
        filename=filename,
        dry_run=dry_run,
        total=data.total,
        errors=data.errors + errors,
        written=len(written.ids),
        level=level,
        **_area_counts(data.rows, [written]),
        changes=written.changes,
        warnings=_warning_dicts(
            data.warnings + _indexed(written.warnings, data.rows, readers.FEATURES)
        ),
        code_field=data.code_field,
        name_field=data.name_field,
        crs=data.crs,
        encoding=data.encoding,
    )


def _area_counts(rows: list[AreaRow], writes: list[Any]) -> dict[str, int]:
    """created: new codes; updated: stored units that change; unchanged: stored, left as is."""
    targets = sum(1 for r in rows if r.target_id is not None)
    changed = sum(len(w.changes) for w in writes)
    return {
        "created": len(rows) - targets,
        "updated": changed,
        "unchanged": targets - changed,
    }


def _warning_dicts(warnings: list[FieldError]) -> list[dict[str, Any]]:
    return [_error_dict(w) for w in warnings]


def _import_units(
    session: Session,
    scope: Scope,
    path: Path,
    filename: str,
    options: dict[str, Any],
    dry_run: bool,
    notify: ProgressFn,
) -> dict[str, Any]:
    """A county's townships and villages from the official code list (polygons optional).

    Townships are written before villages (so that new villages find their new township),
    inside a savepoint that a dry run or any error rolls back: all or nothing, and a dry run
    sees exactly what the real run would. With an ``edition``, the list is compared with the
    units on record (appeared, disappeared, renamed) and kept in ``division_codes``.
    """
    notify("reading", 0, 0)
    data = readers.read_code_list(
        path,
        filename=filename,
        code_field=options.get("code_field"),
        name_field=options.get("name_field"),
        crs=options.get("crs"),
        coord_sys=options.get("coord_sys") or CoordSys.wgs84,
        layer=options.get("layer"),
        sheet=options.get("sheet"),
        max_unpacked_bytes=4 * get_settings().limits.upload_max_bytes,
    )
    if data.total == 0:
        raise RuleViolation([FieldError(["file", "rows"], "文件中没有区划代码", "empty_file")])
    county_code = scope.county_code
    prefix = readers.FEATURES if data.source == "gis" else readers.ROWS
    errors = list(data.errors)
    for row in data.rows:
        if not row.code.startswith(county_code):
            errors.append(
                FieldError(
                    [prefix, row.idx, "code"],
                    f"代码 {row.code} 不属于县 {county_code}",
                    "code_outside_county",
                    index=row.idx,
                    id=row.code,
                )
            )
    rows = [r for r in data.rows if r.code.startswith(county_code) and r.level != "county"]
    edition = options.get("edition")
    notify("validating", 0, data.total)
    before = _units_on_record(session, scope, county_code)
    savepoint = session.begin_nested()
    writes = []
    failed_townships: set[str] = set()
    for level in ("township", "village"):
        area_rows = [
            AreaRow(r.idx, r.code, r.name, r.geom, ref=r.code) for r in rows if r.level == level
        ]
        for area in area_rows:
            area.target_id = before.get(area.code, (None, None, None))[0]
        if not area_rows:
            continue
        written = hierarchy_service.write_units(
            session,
            scope,
            area_rows,
            level=level,
            county_code=county_code,
            loc_prefix=[prefix],
            # Written for real even on a dry run or after other errors (the savepoint is rolled
            # back then): villages must find the townships this same list creates.
            code_edition=edition,
        )
        level_errors = _indexed(written.errors, area_rows, prefix)
        if level == "village":
            # A village under a township that failed is explained by the township's error.
            level_errors = [
                e
                for e in level_errors
                if not (e.code == "parent_not_found" and str(e.id)[:9] in failed_townships)
            ]
        else:
            failed_townships = {str(e.id) for e in level_errors}
        errors += level_errors
        written.warnings = _indexed(written.warnings, area_rows, prefix)
        writes.append((level, area_rows, written))
        scope = scope.grown(written.ids, villages=level == "village")
    diff = _edition_diff(before, rows, edition) if edition else None
    retired: list[dict[str, Any]] = []
    if diff is not None and options.get("retire_missing") and not errors:
        retired, retire_errors = _retire_missing(session, scope, before, diff["disappeared"])
        errors += retire_errors
    if edition and not errors:
        _store_edition(session, county_code, edition, data.rows)
    if dry_run or errors:
        savepoint.rollback()
    else:
        savepoint.commit()
    notify("writing", data.total, data.total)
    counts: dict[str, dict[str, int]] = {}
    for level, area_rows, written in writes:
        counts[level] = _area_counts(area_rows, [written])
    return _report(
        kind="units",
        filename=filename,
        dry_run=dry_run,
        total=data.total,
        errors=errors,
        written=sum(len(w.ids) for _, _, w in writes) + len(retired),
        source=data.source,
        edition=edition,
        created=sum(c["created"] for c in counts.values()),
        updated=sum(c["updated"] for c in counts.values()),
        unchanged=sum(c["unchanged"] for c in counts.values()),
        by_level=counts,
        without_boundary=sum(1 for r in rows if r.geom is None),
        changes=[c for _, _, w in writes for c in w.changes],
        edition_diff=diff,
        retired=retired,
        warnings=_warning_dicts(data.warnings + [x for _, _, w in writes for x in w.warnings]),
        encoding=data.encoding,
        crs=data.crs,
    )


def _units_on_record(
    session: Session, scope: Scope, county_code: str
) -> dict[str, tuple[int, str, str]]:
    """Current townships and villages of the county in the caller's scope: code → (id, name,
    level)."""
    query = select(AdminUnit.code, AdminUnit.id, AdminUnit.name, AdminUnit.level).where(
        scope.where(AdminUnit),
        AdminUnit.county_code == county_code,
        AdminUnit.level.in_(("township", "village")),
        AdminUnit.valid_to.is_(None),
    )
    return {code: (id_, name, level) for code, id_, name, level in session.execute(query)}


def _edition_diff(
    before: dict[str, tuple[int, str, str]], rows: list[readers.CodeListRow], edition: str
) -> dict[str, Any]:
    """The list against the units on record before this import: what appeared, what was
    renamed, and which units of the levels the list covers it no longer holds (撤并 or
    abolished since): reported, and retired only on request — never deleted."""
    listed = {r.code: r for r in rows}
    levels = {r.level for r in rows}
    appeared = [
        {"code": r.code, "name": r.name, "level": r.level} for r in rows if r.code not in before
    ]
    renamed = [
        {"code": code, "from": before[code][1], "to": r.name, "level": r.level}
        for code, r in listed.items()
        if code in before and before[code][1] != r.name
    ]
    disappeared = [
        {"code": code, "name": name, "level": level}
        for code, (_, name, level) in sorted(before.items())
        if code not in listed and level in levels
    ]
    return {
        "edition": edition,
        "appeared": appeared,
        "renamed": renamed,
        "disappeared": disappeared,
        "hint": (
            f"{len(disappeared)} 个单位不在 {edition} 年版代码表中：如已撤并，请用 "
            "DELETE /api/v1/units/{code}?successor=承继单位代码 撤销并记录承继单位，"
            "或以 retire_missing=true 重新导入（只撤销其下已无网格和住户的单位）"
            if disappeared
            else None
        ),
    }


def _retire_missing(
    session: Session,
    scope: Scope,
    before: dict[str, tuple[int, str, str]],
    disappeared: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[FieldError]]:
    """Retire the units the new list no longer holds, villages before townships; one that still
    holds grids, households or current children is an error naming them (nothing retired)."""
    ordered = sorted(disappeared, key=lambda d: -len(d["code"]))
    gone = {d["code"] for d in ordered}
    blockers = hierarchy_service.retire_blockers(session, [before[d["code"]][0] for d in ordered])
    errors = []
    for d in ordered:
        found = dict(blockers.get(before[d["code"]][0], {}))
        if "units" in found:  # children retired by this same import do not count
            still = sum(
                1
                for code, (_, _, _) in before.items()
                if len(code) > len(d["code"]) and code.startswith(d["code"]) and code not in gone
            )
            if still:
                found["units"] = still
            else:
                found.pop("units")
        if found:
            errors.append(
                FieldError(
                    ["options", "retire_missing"],
                    f"{d['name']}（{d['code']}）不在新版代码表中，但其下仍有"
                    f"{hierarchy_service.describe_blockers(found)}，不能撤销；"
                    "请先调整到承继单位",
                    "cannot_retire",
                    id=d["code"],
                )
            )
    if errors:
        return [], errors
    retired = []
    for d in ordered:
        hierarchy_service.retire_unit(session, scope, d["code"])
        retired.append(d)
    return retired, []


def _store_edition(
    session: Session, county_code: str, edition: str, rows: list[readers.CodeListRow]
) -> None:
    """Keep the list as published (this edition, this county), replacing an earlier import of
    the same edition."""
    session.execute(
        delete(DivisionCode).where(
            DivisionCode.edition == edition, DivisionCode.county_code == county_code
        )
    )
    values = {
        r.code: {
            "edition": edition,
            "code": r.code,
            "name": r.name,
            "level": r.level,
            "county_code": county_code,
            "urban_rural_code": r.urban_rural_code,
        }
        for r in rows
        if r.code.startswith(county_code)
    }
    if values:
        session.execute(insert(DivisionCode), list(values.values()))


def read_county_boundary(
    path: Path,
    *,
    county_code: str,
    coord_sys: str = "wgs84",
    crs: str | None = None,
    code_field: str | None = None,
    name_field: str | None = None,
) -> Any:
    """The county's polygon from a boundary file (one feature, or the one with its code), as
    WGS84; a RuleViolation names every problem (the file's features are checked as imports)."""
    data = readers.read_boundaries(
        path,
        filename=path.name,
        level="county",
        code_field=code_field,
        name_field=name_field,
        crs=crs,
        coord_sys=coord_sys,
    )
    rows = data.rows if len(data.rows) == 1 else [r for r in data.rows if r.code == county_code]
    errors = [e for e in data.errors if len(data.rows) == 1 or e.id == county_code]
    if errors:
        raise RuleViolation(errors, detail="县界文件中的几何不符合规则")
    if len(rows) != 1 or rows[0].geom is None:
        raise RuleViolation(
            [
                FieldError(
                    ["file", "features"],
                    f"县界文件应只有一个要素，或有一个代码为 {county_code} 的面要素"
                    f"（共 {data.total} 个要素）",
                    "county_feature_not_found",
                )
            ]
        )
    return rows[0].geom


def _import_households(
    session: Session,
    scope: Scope,
    path: Path,
    filename: str,
    options: dict[str, Any],
    dry_run: bool,
    notify: ProgressFn,
) -> dict[str, Any]:
    notify("reading", 0, 0)
    data = readers.read_households(
        path,
        filename=filename,
        mapping=options.get("mapping"),
        coord_sys=options.get("coord_sys") or CoordSys.wgs84,
        sheet=options.get("sheet"),
        progress=lambda n: notify("reading", n, 0),
    )
    if data.total == 0:
        raise RuleViolation([FieldError(["file", "rows"], "文件中没有数据行", "empty_file")])
    notify("validating", 0, data.total)
    result = households_service.write_households(
        session,
        scope,
        data.rows,
        county_code=scope.county_code,
        loc_prefix=[readers.ROWS],
        dry_run=dry_run,
        progress=lambda n: notify("validating", n, data.total),
    )
    notify("writing", data.total, data.total)
    return _report(
        kind="households",
        filename=filename,
        dry_run=dry_run,
        total=data.total,
        errors=result.errors,
        written=len(result.ids),
        outside_grid=result.outside_grid,
        columns=data.columns,
        ignored_columns=data.ignored,
        header_line=data.header_line,
        encoding=data.encoding,
        sheet=data.sheet,
    )


# -- jobs -----------------------------------------------------------------------------------------


def uploads_dir() -> Path:
    path = Path(get_settings().data_dir) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_path(job: ImportJob) -> Path:
    return uploads_dir() / f"{job.id}{readers.extension(job.filename)}"


def save_upload(upload: BinaryIO, path: Path) -> int:
    """Copy the upload to ``path`` in chunks, refusing it past the size limit."""
    limit = get_settings().limits.upload_max_bytes
    size = 0
    try:
        with path.open("wb") as out:
            while chunk := upload.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"文件超过上限 {limit / 2**20:.0f} MB")
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return size


def _county_lock(session: Session, county_code: str, *, wait: bool) -> None:
    """One import per county at a time: the write rules check against what is stored."""
    key = f"gridgov:import:{county_code}"
    if wait:
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})
        return
    if not session.scalar(text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": key}):
        raise Conflict("本县另有导入正在进行，请稍后再试", code="import_in_progress")


def start_import(
    session: Session,
    scope: Scope,
    *,
    kind: str,
    upload: BinaryIO,
    filename: str | None,
    options: dict[str, Any],
    dry_run: bool,
    background: bool | None = None,
    progress: ProgressFn | None = None,
) -> ImportOutcome:
    """Store the upload and its job; run it now, or after commit in a background thread.

    ``background=None`` decides by size (``limits.import_inline_max_rows``). A failed inline
    import raises (422, or 415 for an unreadable file) with every error and the job id; the
    job row is kept (``commit=True``), nothing else is written.
    """
    assert kind in KINDS
    name = Path(filename or "upload").name[:255] or "upload"
    ext = readers.check_extension(name, kind)
    opts = normalise_options(kind, options)
    job_id = uuid.uuid4()
    path = uploads_dir() / f"{job_id}{ext}"
    save_upload(upload, path)
    try:
        readers.check_content(path, ext)
        total = readers.count_rows(path, filename=name)
        if background is None:
            background = total > get_settings().limits.import_inline_max_rows
        if not background:
            _county_lock(session, scope.county_code, wait=False)
        job = ImportJob(
            id=job_id,
            kind=kind,
            status="queued" if background else "running",
            dry_run=dry_run,
            filename=name,
            options=opts,
            county_code=scope.county_code,
            created_by=scope.user_id or None,
            total=total,
            processed=0,
            stage="queued" if background else "reading",
        )
        session.add(job)
        session.flush()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if background:
        # The thread must see the job: start it only once the caller's transaction commits.
        event.listen(session, "after_commit", lambda _s: launch(job_id), once=True)
        return ImportOutcome(job, None)
    try:
        report, failure = _execute(session, scope, job, path, progress)
    finally:
        path.unlink(missing_ok=True)
    if report["status"] == "failed":
        raise _failed(job, report, failure)
    return ImportOutcome(job, report)


def _execute(
    session: Session, scope: Scope, job: ImportJob, path: Path, progress: ProgressFn | None
) -> tuple[dict[str, Any], DomainError | None]:
    """Run the import in a savepoint, then record the outcome on the job and in the audit log."""
    failure: DomainError | None = None
    try:
        with session.begin_nested():
            report = run_import(
                session,
                scope,
                kind=job.kind,
                path=path,
                filename=job.filename,
                options=job.options,
                dry_run=job.dry_run,
                progress=progress,
            )
    except DomainError as exc:
        failure = exc
        errors = exc.errors or [FieldError(["file"], exc.detail or exc.title, exc.code)]
        report = _report(
            kind=job.kind, filename=job.filename, dry_run=job.dry_run, total=0, errors=errors
        )
    report["job_id"] = str(job.id)
    job.status = report["status"]
    job.report = report
    job.total = report["total"]
    job.processed = report["total"]
    job.stage = "done"
    job.finished_at = datetime.now(UTC)
    session.flush()
    audit.record(
        session,
        scope,
        action="import",
        entity="import_job",
        entity_id=job.id,
        county_code=job.county_code,
        after={k: v for k, v in report.items() if k != "errors"},
    )
    return report, failure


def _failed(job: ImportJob, report: dict[str, Any], failure: DomainError | None) -> DomainError:
    if failure is None:
        errors = [_field_error(e) for e in report["errors"]]
        bad = len({e.index for e in errors if e.index is not None})
        failure = RuleViolation(
            errors,
            detail=f"导入未完成：{bad} 条数据共 {len(errors)} 处错误，未写入任何数据",
        )
        failure.code = "import_failed"
    # Keep the job row (and its report) although the request fails: GET can show it again.
    failure.commit = True
    failure.extra = {
        **failure.extra,
        "job_id": str(job.id),
        "job_status": "failed",
        "kind": job.kind,
        "filename": job.filename,
        "dry_run": job.dry_run,
        "total": report["total"],
        "valid": report["valid"],
    }
    return failure


def launch(job_id: uuid.UUID) -> threading.Thread:
    thread = threading.Thread(target=run_job, args=(job_id,), name=f"import-{job_id}", daemon=True)
    thread.start()
    return thread


def job_scope(session: Session, job: ImportJob) -> Scope:
    """The scope the job runs with: its creator's, as it is now; the system's for the CLI."""
    if job.created_by is not None:
        user = session.get(User, job.created_by)
        if user is None or not user.is_active:
            raise NotFound("导入任务的创建用户")
        return scope_for(session, user)
    return system_scope(session, job.county_code)


def progress_writer(job_id: uuid.UUID, session_factory: SessionFactory) -> ProgressFn:
    """Progress in short transactions of their own, at most ~20 writes per stage."""
    last: dict[str, Any] = {"stage": None, "done": 0}

    def write(stage: str, done: int, total: int) -> None:
        step = max(total // 20, 1000 if total == 0 else 1)
        if stage == last["stage"] and done - last["done"] < step and done != total:
            return
        last.update(stage=stage, done=done)
        values: dict[str, Any] = {"stage": stage, "processed": done}
        if total:
            values["total"] = total
        try:
            with session_factory() as s:
                s.execute(update(ImportJob).where(ImportJob.id == job_id).values(**values))
        except Exception:  # progress is advice; the import itself must not fail on it
            log.warning("could not record progress of import %s", job_id, exc_info=True)

    return write


def run_job(job_id: uuid.UUID, *, session_factory: SessionFactory = session_scope) -> None:
    """The background thread's body: claim the queued job, run it, record the outcome."""
    with session_factory() as s:
        job = s.get(ImportJob, job_id, with_for_update=True)
        if job is None or job.status != "queued":
            log.warning("import job %s is not queued; not run", job_id)
            return
        job.status = "running"
        job.stage = "reading"
        path = upload_path(job)
    try:
        with session_factory() as s:
            job = s.get(ImportJob, job_id)
            assert job is not None
            _county_lock(s, job.county_code, wait=True)
            _execute(s, job_scope(s, job), job, path, progress_writer(job_id, session_factory))
    except Exception as exc:
        log.exception("import job %s failed", job_id)
        detail = exc.detail if isinstance(exc, DomainError) else "导入时发生内部错误，请联系管理员"
        with session_factory() as s:
            job = s.get(ImportJob, job_id)
            if job is not None:
                report = _report(
                    kind=job.kind,
                    filename=job.filename,
                    dry_run=job.dry_run,
                    total=job.total,
                    errors=[FieldError(["file"], detail or "导入失败", "job_failed")],
                )
                report["job_id"] = str(job.id)
                job.status, job.report, job.stage = "failed", report, "done"
                job.finished_at = datetime.now(UTC)
    finally:
        path.unlink(missing_ok=True)


# -- reads ----------------------------------------------------------------------------------------


def get_job(session: Session, scope: Scope, job_id: uuid.UUID) -> ImportJob:
    """A job of the caller's county: its creator sees it; so do county-level importers of its
    kind. Reports quote the rows they reject (names, phones), so nobody else does."""
    job = session.get(ImportJob, job_id)
    if job is None or job.county_code != scope.county_code:
        raise NotFound("导入任务")
    if scope.user_id and job.created_by != scope.user_id:
        county_level = (
            scope.unit_id is not None
            and session.scalar(select(AdminUnit.level).where(AdminUnit.id == scope.unit_id))
            == "county"
        )
        if not (county_level and scope.can(PERM_FOR_KIND[job.kind])):
            raise NotFound("导入任务")
    return job
