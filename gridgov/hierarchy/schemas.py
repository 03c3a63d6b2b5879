from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field

from gridgov.geojson import AreaGeometry
from gridgov.hierarchy.models import AdminUnit, Grid, PartyOrg
from gridgov.inputs import EntityId, InputModel, PatchModel
from gridgov.wire import UtcDatetime

UnitLevel = Literal["county", "township", "village"]
OrgKind = Literal["committee", "general_branch", "branch"]


class UnitCreate(InputModel):
    code: str = Field(pattern=r"^[0-9]{6}([0-9]{3}){0,2}$", description="6/9/12 位区划代码")
    name: str = Field(min_length=1, max_length=100)
    geometry: AreaGeometry | None = None
    valid_from: date | None = None


class UnitUpdate(PatchModel):
    orm_model = AdminUnit
    columns = {"geometry": "geom"}

    name: str | None = Field(None, min_length=1, max_length=100)
    geometry: AreaGeometry | None = None
    clear_geometry: bool = Field(
        False, description="明确清除已有边界（仅当没有 geometry 时有效；默认保留已有边界）"
    )
    version: int | None = Field(None, description="乐观锁：读取时的版本号")


class UnitRead(BaseModel):
    id: int
    code: str
    name: str
    level: UnitLevel
    parent_code: str | None
    county_code: str
    valid_from: date
    valid_to: date | None
    version: int
    has_boundary: bool = Field(description="是否已有边界（按区划代码登记、尚未勾绘边界时为 false）")
    code_edition: str | None = Field(
        None, description="确认该代码的统计用区划代码版本（年份）；未见于已导入的代码表时为空"
    )
    successor_code: str | None = Field(None, description="撤并后的承继单位代码")
    area_km2: float | None = None
    geometry: dict[str, Any] | None = None
    updated_at: UtcDatetime


class PartyOrgCreate(InputModel):
    unit_code: str = Field(pattern=r"^[0-9]{9}([0-9]{3})?$", description="所在村（或乡镇）代码")
    name: str = Field(min_length=1, max_length=100)
    kind: OrgKind = Field(description="committee 党委 / general_branch 党总支 / branch 党支部")
    secretary_name: str | None = Field(None, max_length=50)
    secretary_phone: str | None = Field(None, pattern=r"^[0-9+\- ]{5,20}$")


class PartyOrgUpdate(PatchModel):
    orm_model = PartyOrg

    name: str | None = Field(None, min_length=1, max_length=100)
    kind: OrgKind | None = None
    secretary_name: str | None = Field(None, max_length=50)
    secretary_phone: str | None = Field(None, pattern=r"^[0-9+\- ]{5,20}$")
    version: int | None = None


class PartyOrgRead(BaseModel):
    id: int
    unit_code: str
    unit_name: str
    name: str
    kind: OrgKind
    secretary_name: str | None
    secretary_phone: str | None
    member_count: int
    version: int


class PartyOrgPage(BaseModel):
    items: list[PartyOrgRead]
    next: str | None = None


class GridCreate(InputModel):
    code: str = Field(pattern=r"^[0-9]{15}$", description="村代码 + 3 位序号（900–999 专属网格）")
    name: str = Field(min_length=1, max_length=100)
    geometry: AreaGeometry
    chief_member_id: EntityId | None = None


class GridUpdate(PatchModel):
    orm_model = Grid
    columns = {"geometry": "geom"}

    name: str | None = Field(None, min_length=1, max_length=100)
    geometry: AreaGeometry | None = None
    chief_member_id: EntityId | None = None
    version: int | None = None


class GridRead(BaseModel):
    id: int
    code: str
    name: str
    kind: Literal["general", "dedicated"]
    village_code: str
    village_name: str
    county_code: str
    chief_member_id: int | None
    chief_name: str | None
    household_count: int
    area_km2: float | None
    valid_from: date
    valid_to: date | None
    version: int
    geometry: dict[str, Any] | None = None


class UnitPage(BaseModel):
    items: list[UnitRead]
    next: str | None = Field(None, description="下一页地址；最后一页为空")


class GridPage(BaseModel):
    items: list[GridRead]
    next: str | None = None
