from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from gridgov.geojson import PointGeometry
from gridgov.inputs import EntityId, InputModel, PatchModel
from gridgov.members.models import PartyMember
from gridgov.privacy import IdNumberIn, PhoneIn
from gridgov.wire import UtcDatetime

MemberStatus = Literal["full", "probationary"]


class _MemberFields(InputModel):
    """Phone and ID number: ``gridgov.privacy``'s input types (the households' check)."""


class MemberCreate(_MemberFields):
    name: str = Field(min_length=1, max_length=50)
    party_org_id: EntityId = Field(description="所属党组织")
    grid_code: str | None = Field(None, pattern=r"^[0-9]{15}$", description="所在/服务网格")
    gender: Literal["M", "F"] | None = None
    phone: PhoneIn | None = None
    id_number: IdNumberIn | None = None
    status: MemberStatus = Field("full", description="full 正式党员 / probationary 预备党员")
    flowing: bool = Field(False, description="流动党员")
    is_hub: bool = Field(False, description="党员中心户")
    capacity: int | None = Field(None, ge=0, le=50, description="可联系户数上限（空＝县默认）")
    joined_year: int | None = Field(None, ge=1921, le=2100)
    location: PointGeometry | None = Field(None, description="居住位置")


class MemberUpdate(_MemberFields, PatchModel):
    orm_model = PartyMember
    columns = {"location": "geom", "grid_code": "grid_id"}

    name: str | None = Field(None, min_length=1, max_length=50)
    grid_code: str | None = Field(None, pattern=r"^[0-9]{15}$")
    gender: Literal["M", "F"] | None = None
    phone: PhoneIn | None = None
    id_number: IdNumberIn | None = None
    status: MemberStatus | None = None
    flowing: bool | None = None
    is_hub: bool | None = None
    capacity: int | None = Field(None, ge=0, le=50)
    joined_year: int | None = Field(None, ge=1921, le=2100)
    location: PointGeometry | None = None
    version: int | None = None


class MemberLeave(InputModel):
    reason: str = Field(
        min_length=1, max_length=200, description="离开原因（迁出、去世、组织关系转出）"
    )


class MemberRead(BaseModel):
    id: int
    county_code: str
    party_org_id: int
    party_org_name: str
    village_code: str
    village_name: str
    grid_code: str | None
    name: str
    gender: str | None
    phone: str | None
    id_number: str | None
    status: MemberStatus
    flowing: bool
    is_hub: bool
    capacity: int | None
    joined_year: int | None
    left_at: UtcDatetime | None
    left_reason: str | None
    version: int
    location: dict[str, Any] | None = None
