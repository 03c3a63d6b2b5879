from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from gridgov.auth.permissions import Role


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="访问令牌有效期（秒）")


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=10, max_length=2000)


class MeRead(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    role_label: str
    county_code: str
    unit_code: str | None = Field(None, description="绑定的行政单位代码")
    grid_code: str | None = Field(None, description="绑定的网格代码（网格员）")
    unit_count: int = Field(description="权限范围内的行政单位数")
    village_count: int
    permissions: list[str]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    display_name: str = Field(min_length=1, max_length=50)
    password: str = Field(min_length=8, max_length=200)
    role: Role
    unit_code: str | None = Field(None, pattern=r"^[0-9]{6}([0-9]{3}){0,2}$")
    grid_code: str | None = Field(None, pattern=r"^[0-9]{15}$")


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role
    county_code: str
    unit_id: int | None
    grid_id: int | None
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None
