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
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import event, select, text, update
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
from gridgov.hierarchy.models import AdminUnit, Grid
from gridgov.hierarchy.rules import AreaRow
from gridgov.households import service as households_service
from gridgov.imports import readers
from gridgov.imports.models import ImportJob

log = logging.getLogger("gridgov.imports")

KINDS = ("boundaries", "households")
LEVELS = ("township", "village", "grid")
PERM_FOR_KIND = {"boundaries": Perm.import_boundaries, "households": Perm.import_households}

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
    return {"index": e.index, "id": e.id, "loc": e.loc, "msg": e.msg, "code": e.code}


def _field_error(d: dict[str, Any]) -> FieldError:
    return FieldError(d["loc"], d["msg"], d["code"], index=d.get("index"), id=d.get("id"))


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
        ids, errors = hierarchy_service.write_grids(
            session,
            scope,
            data.rows,
            county_code=scope.county_code,
            loc_prefix=[readers.FEATURES],
            dry_run=check_only,
        )
    else:
        ids, errors = hierarchy_service.write_units(
            session,
            scope,
            data.rows,
            level=level,
            county_code=scope.county_code,
            loc_prefix=[readers.FEATURES],
            dry_run=check_only,
        )
    errors = _indexed(errors, data.rows, readers.FEATURES)
    notify("writing", data.total, data.total)
    updated = sum(1 for r in data.rows if r.target_id is not None)
    return _report(
        kind="boundaries",
        filename=filename,
        dry_run=dry_run,
        total=data.total,
        errors=data.errors + errors,
        written=len(ids),
        level=level,
        created=len(data.rows) - updated,
        updated=updated,
        code_field=data.code_field,
        name_field=data.name_field,
        crs=data.crs,
        encoding=data.encoding,
    )


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
