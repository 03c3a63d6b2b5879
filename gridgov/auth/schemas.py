from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from gridgov.auth.permissions import Role
from gridgov.inputs import EntityId, InputModel
from gridgov.wire import UtcDatetime


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="访问令牌有效期（秒）")


class RefreshRequest(InputModel):
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


class UserCreate(InputModel):
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
    created_at: UtcDatetime
    last_login_at: UtcDatetime | None


class ApiKeyCreate(InputModel):
    name: str = Field(min_length=1, max_length=100, description="用途，如“自然资源局 QGIS”")
    username: str | None = Field(
        None, min_length=1, max_length=64, description="密钥代表的用户（与 user_id 二选一）"
    )
    user_id: EntityId | None = Field(None, description="密钥代表的用户编号（与 username 二选一）")
    expires_at: AwareDatetime | None = Field(None, description="过期时间（带时区）；不填则长期有效")

    @model_validator(mode="after")
    def _one_user(self) -> ApiKeyCreate:
        if (self.username is None) == (self.user_id is None):
            raise ValueError("username 与 user_id 须且只能填写一个")
        return self


class ApiKeyRead(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="密钥开头（ggk_ 之后的 8 位），用于区分密钥；不含密钥本身")
    user_id: int
    username: str
    role: Role
    county_code: str
    created_at: UtcDatetime
    expires_at: UtcDatetime | None
    revoked_at: UtcDatetime | None
    last_used_at: UtcDatetime | None = Field(description="最近使用时间（每分钟至多更新一次）")
    active: bool = Field(description="未吊销且未过期")


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="完整密钥：仅此一次显示，请妥善保存")
