"""Settings, read from GRIDGOV_* environment variables (nested groups use ``__``)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
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
    # Failed logins allowed per (username, client address) within the window (× 4 per address
    # over all usernames); past login_user_max_failures for a username from all addresses,
    # addresses that have not logged in as it within login_known_client_days back off
    # exponentially (gridgov/auth/service.py, README "Security").
    login_max_failures: int = Field(5, ge=1, le=1000)
    login_window_seconds: int = Field(300, ge=10)
    login_user_max_failures: int = Field(20, ge=1, le=100_000)
    login_known_client_days: int = Field(30, ge=0, le=365)
    # How long a process remembers which scope a verified credential stands for (see
    # gridgov/auth/cache.py); 0 turns the memory off.
    scope_cache_seconds: float = Field(30.0, ge=0, le=3600)


class RuleSettings(BaseModel):
    """Spatial write-rule tolerances (DESIGN §2)."""

    grid_outside_village_m: float = Field(3.0, ge=0, le=1000)
    sibling_overlap_m2: float = Field(1.0, ge=0)
    unit_outside_parent_m: float = Field(5.0, ge=0, le=5000)


class LimitSettings(BaseModel):
    page_default: int = Field(100, ge=1)
    page_max: int = Field(1000, ge=1, le=10_000)
    upload_max_bytes: int = Field(200 * 1024 * 1024, ge=1024)
    # Request bodies (gridgov/middleware.py), refused with 413 before they are read: the
    # default for every route, a visit batch (500 visits with full notes and needs in UTF-8
    # stay under 10 MB), area writes with a boundary. Photos: visits.attachment_max_bytes;
    # imports: upload_max_bytes.
    body_max_bytes: int = Field(1024 * 1024, ge=1024)
    visit_batch_max_bytes: int = Field(12 * 1024 * 1024, ge=1024)
    geometry_body_max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    # JSON bodies nesting arrays/objects deeper than this are refused (422) before parsing.
    json_max_depth: int = Field(32, ge=4, le=512)
    # Imports bigger than this many rows/features run as a background job.
    import_inline_max_rows: int = Field(5000, ge=1)


ContactRole = Literal["primary", "secondary"]


class ContactLimits(BaseModel):
    """党员联系户 limits and policy of one county (defaults below, overrides per county)."""

    model_config = ConfigDict(extra="forbid")

    # A member normally contacts normal_min–normal_max households and never more than hard_max.
    normal_min: int = Field(5, ge=0, le=100)
    normal_max: int = Field(10, ge=1, le=100)
    hard_max: int = Field(15, ge=1, le=100)
    # 党员中心户 (is_hub): a hub is expected to serve more households before counting as loaded.
    # Like probationary_max and a member's own capacity, it never lifts anyone past hard_max.
    hub_normal_max: int = Field(15, ge=1, le=100)
    # Which roles flowing (流动) and probationary (预备) members may hold, and the probationary cap.
    flowing_roles: list[ContactRole] = Field(default_factory=lambda: ["secondary"])
    probationary_roles: list[ContactRole] = Field(default_factory=lambda: ["primary", "secondary"])
    probationary_max: int = Field(5, ge=0, le=100)
    max_secondary_per_household: int = Field(2, ge=0, le=10)
    # Automatic assignment: never propose a member farther than this (straight line).
    max_distance_m: float = Field(5000.0, gt=0, le=100_000)
    # What the plan trades against walking distance, in metres: serving another grid or another
    # hamlet, each household beyond the normal load (the k-th one over costs k times this), and
    # — when rebalancing — moving a household away from its current contact.
    grid_penalty_m: float = Field(200.0, ge=0, le=10_000)
    hamlet_penalty_m: float = Field(100.0, ge=0, le=10_000)
    overload_penalty_m: float = Field(150.0, ge=0, le=10_000)
    keep_bonus_m: float = Field(50.0, ge=0, le=10_000)

    @model_validator(mode="after")
    def _ordered(self) -> ContactLimits:
        if not self.normal_min <= self.normal_max <= self.hard_max:
            raise ValueError("contacts: need normal_min <= normal_max <= hard_max")
        return self


class ContactSettings(ContactLimits):
    """Defaults for every county; ``counties`` overrides single fields for one county, e.g.
    ``GRIDGOV_CONTACTS__COUNTIES='{"439902": {"hard_max": 12}}'``."""

    counties: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid_overrides(self) -> ContactSettings:
        for code in self.counties:
            if not (len(code) == 6 and code.isdigit()):
                raise ValueError(f"contacts.counties: {code!r} is not a 6-digit county code")
            self.limits_for(code)  # raises if an override is unknown or out of range
        return self

    def limits_for(self, county_code: str) -> ContactLimits:
        base = self.model_dump(exclude={"counties"})
        return ContactLimits(**(base | self.counties.get(county_code, {})))


class IssueSettings(BaseModel):
    """事件 deadlines: the working day (Asia/Shanghai) and when overdue issues escalate."""

    workday_start_hour: int = Field(9, ge=0, le=23)
    workday_end_hour: int = Field(17, ge=1, le=24)
    # An issue escalates automatically once this multiple of its SLA has passed.
    escalation_factor: float = Field(1.5, ge=1.0, le=10.0)
    # A "due soon" reminder goes out once the working hours left reach this share of the SLA.
    due_soon_share: float = Field(0.25, gt=0.0, lt=1.0)
    reopen_days: int = Field(7, ge=0, le=365)
    duplicate_radius_m: float = Field(50.0, ge=0, le=10_000)
    duplicate_days: int = Field(7, ge=0, le=365)
    # How far (m) a reporter may move an issue into a neighbouring grid when confirming it.
    grid_correction_m: float = Field(200.0, ge=0, le=5000)

    @model_validator(mode="after")
    def _day_order(self) -> IssueSettings:
        if self.workday_start_hour >= self.workday_end_hour:
            raise ValueError("issues: workday_start_hour must be before workday_end_hour")
        return self


class VisitSettings(BaseModel):
    """Thresholds of the server-side visit checks (DESIGN §6) and photo limits."""

    # A visit farther than this from the household, plus its reported GPS accuracy, is flagged.
    distance_m: float = Field(150.0, gt=0, le=10_000)
    # Accuracy worse than this (or none at all with a position) is flagged; it also caps how far
    # a poor fix may stretch the distance threshold.
    accuracy_max_m: float = Field(100.0, gt=0, le=10_000)
    # Faster than this between one person's consecutive visits is impossible on village roads.
    max_speed_kmh: float = Field(120.0, gt=0, le=1000)
    future_tolerance_minutes: int = Field(10, ge=0, le=24 * 60)
    max_upload_delay_days: int = Field(7, ge=1, le=365)
    # burst_count visits (or more) by one person within burst_minutes are flagged.
    burst_count: int = Field(5, ge=2, le=1000)
    burst_minutes: int = Field(10, ge=1, le=24 * 60)
    attachment_max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    # Visit intervals in days per household tag, per county: {"439902": {"低保户": 60}}.
    intervals: dict[str, dict[str, int]] = Field(default_factory=dict)


class MapSettings(BaseModel):
    # Keep the layers' data versions in memory by LISTENing for their changes (one connection
    # per process); off: every tile asks the database (gridgov/gis/versions.py).
    listen_for_changes: bool = True
    # Rendered tiles kept in each process's LRU (gridgov/gis/tiles.py), capped by the memory
    # they take: bodies, keys and per-entry overhead. 0 turns the cache off: every tile request
    # renders its tile (an honest uncached benchmark). 16 MiB: an idle process holds ~210 MB
    # and a 1,000,000-point GeoPackage export ~55 MB more at its peak, so a full cache still
    # leaves it under the 300 MB bound of tests/gis/test_export_memory.py (32 MiB did not).
    tile_cache_bytes: int = Field(16 * 1024 * 1024, ge=0, le=4 * 1024**3)


class SyncSettings(BaseModel):
    """The phones' change log (DESIGN §5)."""

    # Tombstones (deleted, retired, moved away) older than this are pruned; a phone whose
    # cursor is older still is told to reset and download its scope afresh. Superseded changes
    # (an entity logged again later in the same place) are pruned whatever their age.
    tombstone_retention_days: int = Field(90, ge=1, le=3650)


class Open311Settings(BaseModel):
    """The public GeoReport v2 view (README 事件, Open311)."""

    # A household-linked issue's position is published as the centre of the square of this
    # many metres that holds it (the same for every issue in that square); 0 withholds it.
    coord_precision_m: float = Field(100.0, ge=0, le=100_000)
    # Photos one report may carry as multipart ``media`` files (each within
    # visits.attachment_max_bytes); the request body limit follows.
    media_max_files: int = Field(3, ge=1, le=20)


_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")


class CorsSettings(BaseModel):
    """Browsers on other origins — a county's web map, a portal — calling the API, the tiles,
    OGC and Open311 (gridgov/middleware.py ``CorsMiddleware``). Off by default: no origin is
    allowed and no CORS header is ever sent. ``["*"]`` allows every origin (safe enough: the
    API authenticates by header, never by cookie, so a page elsewhere holds no credential of
    its visitor's), otherwise exact origins such as ``https://map.example.gov.cn``."""

    allow_origins: list[str] = Field(default_factory=list)
    # How long a browser may keep a preflight's answer.
    max_age_seconds: int = Field(600, ge=0, le=86_400)

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        out = []
        for origin in value:
            origin = origin.strip().lower()
            if origin == "*":
                out.append(origin)
                continue
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"cors.allow_origins: {origin!r} is not an origin (scheme://host[:port], "
                    "no path, no trailing slash) nor *"
                )
            out.append(origin)
        return out

    def allows(self, origin: str) -> bool:
        return "*" in self.allow_origins or origin.lower() in self.allow_origins


class ScoreWeights(BaseModel):
    """积分 of a member or grid for a period, from data only (never self-reported):
    coverage × 100 × ``coverage`` + reported issues (at most ``issue_cap``) × ``issue_reported``
    + issues closed on time × ``issue_on_time`` − overdue households × ``overdue``
    − rejected (faked) visits × ``rejected_visit``."""

    coverage: float = Field(1.0, ge=0, le=100)
    issue_reported: float = Field(2.0, ge=0, le=100)
    issue_cap: int = Field(10, ge=0, le=1000)
    issue_on_time: float = Field(3.0, ge=0, le=100)
    overdue: float = Field(2.0, ge=0, le=100)
    rejected_visit: float = Field(5.0, ge=0, le=100)


class WarningThresholds(BaseModel):
    """三色预警 of a unit: red when any figure is past its red line, yellow past its yellow
    line, else green. Shares are fractions of the unit's households."""

    overdue_yellow: float = Field(0.10, ge=0, le=1)
    overdue_red: float = Field(0.25, ge=0, le=1)
    contact_yellow: float = Field(0.95, ge=0, le=1)  # households with a primary contact, below
    contact_red: float = Field(0.85, ge=0, le=1)
    # An open issue is yellow when less than this share of its SLA is left, red when overdue.
    issue_due_soon_share: float = Field(0.25, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> WarningThresholds:
        if self.overdue_yellow > self.overdue_red or self.contact_yellow < self.contact_red:
            raise ValueError("dashboard warning thresholds: yellow must come before red")
        return self


class DashboardSettings(BaseModel):
    """The township and county dashboards (README 看板)."""

    # The API's background refresher recomputes noted rollups this often (0 = off; then
    # `gridgov jobs run` keeps them current). Figures are at most this much behind.
    refresh_seconds: float = Field(5.0, ge=0, le=3600)
    scores: ScoreWeights = ScoreWeights()
    warning: WarningThresholds = WarningThresholds()
    # The web page's optional 天地图 basemap (a browser key from lbs.tianditu.gov.cn). Unset,
    # the page loads nothing from outside the server; set, its CSP also allows *.tianditu.gov.cn.
    tianditu_key: str | None = Field(None, pattern=r"^[A-Za-z0-9]{8,128}$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GRIDGOV_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    env: Literal["dev", "test", "prod"] = "dev"
    db: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    rules: RuleSettings = RuleSettings()
    limits: LimitSettings = LimitSettings()
    contacts: ContactSettings = ContactSettings()
    visits: VisitSettings = VisitSettings()
    issues: IssueSettings = IssueSettings()
    sync: SyncSettings = SyncSettings()
    maps: MapSettings = MapSettings()
    open311: Open311Settings = Open311Settings()
    dashboard: DashboardSettings = DashboardSettings()
    cors: CorsSettings = CorsSettings()
    log_level: str = "INFO"
    log_json: bool = True
    # The address clients use to reach this server (behind nginx: https://grid.example.gov.cn),
    # for the documents that name it (Open311 discovery). Unset: the address of the request.
    public_url: str | None = None
    data_dir: str = "var"

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("GRIDGOV_PUBLIC_URL must be an http(s) URL such as https://host/path")
        return value.strip().rstrip("/")

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
