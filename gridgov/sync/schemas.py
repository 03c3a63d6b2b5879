"""Delta sync payloads (DESIGN §5)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from gridgov.visits.schemas import DueHousehold, VisitRead
from gridgov.wire import UtcDatetime


class SyncGrid(BaseModel):
    id: int
    code: str
    name: str
    village_id: int
    kind: str
    version: int
    boundary: dict[str, Any] | None


class SyncHousehold(BaseModel):
    id: int
    village_id: int
    grid_id: int | None
    head_name: str
    phone: str | None
    address: str | None
    hamlet: str | None
    size: int
    tags: list[str]
    flags: list[str]
    version: int
    location: dict[str, Any] | None


class SyncContact(BaseModel):
    id: int
    member_id: int
    household_id: int
    role: str
    valid_from: date


class SyncUpserts(BaseModel):
    grids: list[SyncGrid] = Field(default_factory=list)
    households: list[SyncHousehold] = Field(default_factory=list)
    contacts: list[SyncContact] = Field(default_factory=list)
    visits: list[VisitRead] = Field(default_factory=list)


class SyncTombstones(BaseModel):
    """Ids to drop from the phone: deleted, retired, ended, or no longer in the caller's scope."""

    grids: list[int] = Field(default_factory=list)
    households: list[int] = Field(default_factory=list)
    contacts: list[int] = Field(default_factory=list)
    visits: list[int] = Field(default_factory=list)


class SyncPage(BaseModel):
    reset: bool = Field(
        False,
        description=(
            "true：游标无效（格式错误、签名不符、属于其他用户，或早于已清理的变更日志）；"
            "清空本地数据，从头拉取"
        ),
    )
    upserts: SyncUpserts = Field(default_factory=SyncUpserts)
    tombstones: SyncTombstones = Field(default_factory=SyncTombstones)
    next: str | None = Field(None, description="下次拉取带上的游标")
    has_more: bool = False
    due: list[DueHousehold] | None = Field(None, description="本人应走访户（最后一页附带）")
    server_time: UtcDatetime
