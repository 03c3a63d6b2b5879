"""Imports over HTTP: multipart upload in, report (201) or job handle (202) out."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, File, Form, Request, Response, UploadFile

from gridgov.auth.permissions import Perm
from gridgov.deps import Allowed, ReadScope, SessionDep
from gridgov.geo import CoordSys
from gridgov.imports import service as imports_service
from gridgov.imports.schemas import ImportJobRead, ImportQueued, ImportReport

router = APIRouter(prefix="/imports", tags=["imports"])

RESPONSES: dict[int | str, dict[str, object]] = {
    201: {"model": ImportReport, "description": "已完成（成功或试运行通过）"},
    202: {"model": ImportQueued, "description": "文件较大，已转为后台任务"},
    413: {"description": "文件过大"},
    415: {"description": "格式不支持或文件无法读取"},
    422: {"description": "有错误，未写入任何数据；errors 列出每一处，并带 job_id"},
}
DRY_RUN = Form(False, description="只校验不写入")
COORD_SYS = Form(CoordSys.wgs84, description="坐标系：wgs84、gcj02（高德/腾讯）、bd09（百度）")


def _respond(
    outcome: imports_service.ImportOutcome, request: Request, response: Response
) -> ImportReport | ImportQueued:
    if outcome.queued:
        response.status_code = 202
        url = str(request.url_for("get_import", job_id=str(outcome.job.id)))
        return ImportQueued(job_id=outcome.job.id, progress_url=url)
    response.status_code = 201
    return ImportReport.model_validate(outcome.report)


@router.post(
    "/boundaries",
    response_model=ImportReport | ImportQueued,
    status_code=201,
    responses=RESPONSES,
    summary="导入边界（GeoJSON、GeoPackage、zip 打包的 Shapefile）",
)
def import_boundaries(
    request: Request,
    response: Response,
    session: SessionDep,
    scope: Allowed(Perm.import_boundaries),
    file: UploadFile = File(description="GeoJSON、GeoPackage 或 zip 打包的 Shapefile"),
    level: Literal["township", "village", "grid"] = Form(description="导入的层级"),
    code_field: str | None = Form(None, max_length=64, description="代码字段（默认自动识别）"),
    name_field: str | None = Form(None, max_length=64, description="名称字段（默认自动识别）"),
    crs: str | None = Form(
        None, max_length=4000, description="覆盖文件声明的坐标系，如 EPSG:4490、EPSG:4546"
    ),
    coord_sys: CoordSys = COORD_SYS,
    layer: str | None = Form(None, max_length=200, description="多图层文件中的图层名"),
    clear_geometry: bool = Form(
        False,
        description="几何为空的要素清除已有边界（默认保留已有边界，只更新名称）",
    ),
    dry_run: bool = DRY_RUN,
) -> ImportReport | ImportQueued:
    outcome = imports_service.start_import(
        session,
        scope,
        kind="boundaries",
        upload=file.file,
        filename=file.filename,
        options={
            "level": level,
            "code_field": code_field,
            "name_field": name_field,
            "crs": crs,
            "coord_sys": coord_sys,
            "layer": layer,
            "clear_geometry": clear_geometry,
        },
        dry_run=dry_run,
    )
    return _respond(outcome, request, response)


@router.post(
    "/units",
    response_model=ImportReport | ImportQueued,
    status_code=201,
    responses=RESPONSES,
    summary="导入乡镇和村的统计用区划代码（CSV、XLSX 或 GIS 文件；边界可有可无）",
)
def import_units(
    request: Request,
    response: Response,
    session: SessionDep,
    scope: Allowed(Perm.import_boundaries),
    file: UploadFile = File(
        description="代码表：CSV/XLSX（统计用区划代码、名称，城乡分类代码可选；可无表头），"
        "或 GeoJSON、GeoPackage、zip 打包的 Shapefile（几何可为空）"
    ),
    edition: str | None = Form(
        None, pattern=r"^(19|20)[0-9]{2}$", description="代码表版本（年份，如 2023）"
    ),
    retire_missing: bool = Form(
        False, description="撤销本县现有而新版代码表中没有的乡镇和村（须注明 edition）"
    ),
    code_field: str | None = Form(None, max_length=64, description="代码列（默认自动识别）"),
    name_field: str | None = Form(None, max_length=64, description="名称列（默认自动识别）"),
    crs: str | None = Form(None, max_length=4000, description="GIS 文件：覆盖声明的坐标系"),
    coord_sys: CoordSys = COORD_SYS,
    layer: str | None = Form(None, max_length=200, description="多图层文件中的图层名"),
    sheet: str | None = Form(None, max_length=100, description="XLSX 工作表名（默认第一个）"),
    dry_run: bool = DRY_RUN,
) -> ImportReport | ImportQueued:
    outcome = imports_service.start_import(
        session,
        scope,
        kind="units",
        upload=file.file,
        filename=file.filename,
        options={
            "edition": edition,
            "retire_missing": retire_missing,
            "code_field": code_field,
            "name_field": name_field,
            "crs": crs,
            "coord_sys": coord_sys,
            "layer": layer,
            "sheet": sheet,
        },
        dry_run=dry_run,
    )
    return _respond(outcome, request, response)


@router.post(
    "/households",
    response_model=ImportReport | ImportQueued,
    status_code=201,
    responses=RESPONSES,
    summary="导入户台账（CSV、XLSX）",
)
def import_households(
    request: Request,
    response: Response,
    session: SessionDep,
    scope: Allowed(Perm.import_households),
    file: UploadFile = File(description="CSV（UTF-8 或 GBK）或 XLSX 台账"),
    mapping: str | None = Form(
        None,
        max_length=10_000,
        description='列名到字段的 JSON 对象，补充默认识别，如 {"户主": "head_name"}',
    ),
    coord_sys: CoordSys = COORD_SYS,
    sheet: str | None = Form(None, max_length=100, description="工作表名（默认第一个有表头的）"),
    dry_run: bool = DRY_RUN,
) -> ImportReport | ImportQueued:
    outcome = imports_service.start_import(
        session,
        scope,
        kind="households",
        upload=file.file,
        filename=file.filename,
        options={"mapping": mapping, "coord_sys": coord_sys, "sheet": sheet},
        dry_run=dry_run,
    )
    return _respond(outcome, request, response)


@router.get("/{job_id}", response_model=ImportJobRead, summary="导入任务状态与报告")
def get_import(job_id: uuid.UUID, session: SessionDep, scope: ReadScope) -> ImportJobRead:
    return ImportJobRead.model_validate(imports_service.get_job(session, scope, job_id))
