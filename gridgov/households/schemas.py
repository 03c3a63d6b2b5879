from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from gridgov.geojson import PointGeometry
from gridgov.households.models import Household
from gridgov.households.validation import parse_tags
from gridgov.inputs import InputModel, PatchModel
from gridgov.privacy import IdNumberIn, PhoneIn
from gridgov.wire import UtcDatetime


def _invalid(code: str, message: str) -> PydanticCustomError:
    """A field error with our own code (same as the importers'), its Chinese message verbatim."""
    return PydanticCustomError(code, "{detail}", {"detail": message})


class _HouseholdFields(InputModel):
    @field_validator("tags", check_fields=False)
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        tags, unknown = parse_tags(value)
        if unknown:
            raise _invalid("unknown_tag", f"未知的重点人群标签：{'、'.join(unknown)}")
        return tags


class HouseholdCreate(_HouseholdFields):
    head_name: str = Field(min_length=1, max_length=50, description="户主姓名")
    location: PointGeometry = Field(description="户的位置（GeoJSON 点）")
    village_code: str | None = Field(
        None, pattern=r"^[0-9]{12}$", description="所属村；省略时按位置推定"
    )
    external_id: str | None = Field(None, min_length=1, max_length=64, description="台账编号")
    phone: PhoneIn | None = None  # personal data: checked and masked by gridgov.privacy
    id_number: IdNumberIn | None = None
    address: str | None = Field(None, max_length=200)
    hamlet: str | None = Field(None, max_length=50, description="村民小组")
    size: int = Field(1, ge=1, le=30, description="人口数")
    tags: list[str] = Field(default_factory=list, description="重点人群标签")


class HouseholdUpdate(_HouseholdFields, PatchModel):
    orm_model = Household
    columns = {"location": "geom"}

    head_name: str | None = Field(None, min_length=1, max_length=50)
    location: PointGeometry | None = None
    phone: PhoneIn | None = None  # personal data: checked and masked by gridgov.privacy
    id_number: IdNumberIn | None = None
    address: str | None = Field(None, max_length=200)
    hamlet: str | None = Field(None, max_length=50)
    size: int | None = Field(None, ge=1, le=30)
    tags: list[str] | None = None
    version: int | None = None


class HouseholdRemove(InputModel):
    reason: str = Field(min_length=1, max_length=200, description="注销原因（迁出、合户等）")


class HouseholdRead(BaseModel):
    id: int
    external_id: str | None
    county_code: str
    village_code: str
    village_name: str
    grid_code: str | None
    grid_name: str | None
    head_name: str
    phone: str | None
    id_number: str | None
    address: str | None
    hamlet: str | None
    size: int
    tags: list[str]
    flags: list[str] = Field(
        description="outside_grid：位置不在本村任何网格内；"
        "village_without_boundary：所属村尚无边界（按台账登记）"
    )
    removed_at: UtcDatetime | None
    version: int
    updated_at: UtcDatetime
    location: dict[str, Any] | None = None
