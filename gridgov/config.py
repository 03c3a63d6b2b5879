"""Settings, read from GRIDGOV_* environment variables (nested groups use ``__``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-secret-change-me-0123456789abcdef"


class DatabaseSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "gridgov"
    password: str = ""
    name: str = "gridgov"
    # A full URL wins over the parts; any postgres:// spelling is normalised to psycopg 3.
    url: str | None = None
    pool_size: int = Field(10, ge=1, le=200)
    max_overflow: int = Field(10, ge=0, le=200)
    stream_pool_size: int = Field(4, ge=1, le=100)
    statement_timeout_ms: int = Field(60_000, ge=100)

    @model_validator(mode="after")
    def _normalise_url(self) -> DatabaseSettings:
        if self.url:
            for prefix in ("postgresql+psycopg2://", "postgres://", "postgresql://"):
                if self.url.startswith(prefix):
                    self.url = "postgresql+psycopg://" + self.url[len(prefix) :]
                    break
        return self

    @property
    def sqlalchemy_url(self) -> str:
        if self.url:
            return self.url
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{self.name}"

    @property
    def libpq_url(self) -> str:
        """The same database as a plain libpq URL, for psycopg and GDAL."""
        return self.sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


class AuthSettings(BaseModel):
    secret_key: str = DEV_SECRET
    access_token_minutes: int = Field(15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(14, ge=1, le=365)
    # Failed logins allowed per username and per client address within the window.
    login_max_failures: int = Field(5, ge=1, le=1000)
    login_window_seconds: int = Field(300, ge=10)


class RuleSettings(BaseModel):
    """Spatial write-rule tolerances (DESIGN §2)."""

    grid_outside_village_m: float = Field(3.0, ge=0, le=1000)
    sibling_overlap_m2: float = Field(1.0, ge=0)
    unit_outside_parent_m: float = Field(5.0, ge=0, le=5000)


class LimitSettings(BaseModel):
    page_default: int = Field(100, ge=1)
    page_max: int = Field(1000, ge=1, le=10_000)
    upload_max_bytes: int = Field(200 * 1024 * 1024, ge=1024)
    # Imports bigger than this many rows/features run as a background job.
    import_inline_max_rows: int = Field(5000, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GRIDGOV_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    env: Literal["dev", "test", "prod"] = "dev"
    db: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    rules: RuleSettings = RuleSettings()
    limits: LimitSettings = LimitSettings()
    log_level: str = "INFO"
    log_json: bool = True
    public_url: str = "http://127.0.0.1:8000"
    data_dir: str = "var"

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.env == "prod" and self.auth.secret_key == DEV_SECRET:
            raise ValueError("GRIDGOV_AUTH__SECRET_KEY must be set in production")
        if len(self.auth.secret_key) < 32:
            raise ValueError("GRIDGOV_AUTH__SECRET_KEY must be at least 32 characters")
        if self.limits.page_default > self.limits.page_max:
            raise ValueError("limits.page_default cannot exceed limits.page_max")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
