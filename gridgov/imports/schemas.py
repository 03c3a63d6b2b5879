from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ImportKind = Literal["boundaries", "households"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "validated"]


class ImportErrorItem(BaseModel):
    index: int | None = Field(
        None,
        description="边界：要素在图层中的序号（从 0 起）；台账：所在行号（与 Excel 显示一致）",
    )
    id: str | None = Field(None, description="该条自己的标识：代码或台账编号")
    loc: list[str | int]
    msg: str
    code: str


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
    created_at: datetime
    finished_at: datetime | None
    report: ImportReport | None
