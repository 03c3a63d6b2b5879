from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gridgov.wire import UtcDatetime

ImportKind = Literal["boundaries", "households", "units"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "validated"]


class ImportErrorItem(BaseModel):
    """One problem; ``detail_en`` (when present) quotes the geometry library or GDAL in English
    for a technician."""

    model_config = ConfigDict(extra="allow")

    index: int | None = Field(
        None,
        description="边界：要素在图层中的序号（从 0 起）；台账：所在行号（与 Excel 显示一致）",
    )
    id: str | None = Field(None, description="该条自己的标识：代码或台账编号")
    loc: list[str | int]
    msg: str
    code: str


class AreaChange(BaseModel):
    """What the import changes (or, on a dry run, would change) in one stored unit or grid."""

    model_config = ConfigDict(extra="allow")

    index: int
    code: str
    id: str | None = None
    geometry: Literal["unchanged", "kept", "set", "replaced", "cleared"] = Field(
        description="unchanged 不变；kept 文件中无几何、保留已有边界；set 首次有边界；"
        "replaced 替换；cleared 已按要求清除"
    )
    area_km2_before: float | None = None
    area_km2_after: float | None = None
    name: dict[str, str] | None = Field(None, description="名称变化 {from, to}")
    parent_code: dict[str, str | None] | None = Field(None, description="上级变化 {from, to}")


class ImportReport(BaseModel):
    model_config = ConfigDict(extra="allow")  # format-specific details (fields, encoding, …)

    job_id: uuid.UUID
    status: Literal["succeeded", "failed", "validated"]
    kind: ImportKind
    filename: str
    dry_run: bool
    total: int = Field(description="文件中的要素/数据行数")
    valid: int = Field(description="没有错误的条数")
    written: int = Field(description="写入（新增或更新）的条数；试运行或有错误时为 0")
    outside_grid: int = Field(0, description="户：不在任何网格内（已标记）的户数")
    error_count: int = 0
    errors: list[ImportErrorItem] = []
    warnings: list[ImportErrorItem] = Field(
        [], description="不阻止导入的提示：如代码不在最新版代码表中、上级尚无边界、GDAL 的提示"
    )
    changes: list[AreaChange] | None = Field(
        None, description="边界与区划代码：对已有单位的每一处改动（试运行时即列出）"
    )


class ImportQueued(BaseModel):
    job_id: uuid.UUID
    status: Literal["queued"] = "queued"
    progress_url: str


class ImportJobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: ImportKind
    status: JobStatus
    dry_run: bool
    filename: str
    options: dict[str, Any]
    total: int
    processed: int
    stage: str | None
    created_at: UtcDatetime
    finished_at: UtcDatetime | None
    report: ImportReport | None
