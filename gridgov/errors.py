"""Domain errors. No HTTP here: app.py maps each class to a status in one table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FieldError:
    """One broken rule: where (``loc``), what (Chinese ``msg``), and an English ``code``."""

    loc: list[str | int]
    msg: str
    code: str
    index: int | None = None  # row/feature index in an import
    id: str | None = None  # the row's own id (code, external id) when it has one
    # A library's own words (GEOS, GDAL), in English, when they help a technician; never in msg.
    detail_en: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"loc": self.loc, "msg": self.msg, "code": self.code}
        if self.index is not None:
            out["index"] = self.index
        if self.id is not None:
            out["id"] = self.id
        if self.detail_en is not None:
            out["detail_en"] = self.detail_en
        return out


@dataclass
class DomainError(Exception):
    code: str = "error"
    title: str = "请求无法处理"
    detail: str | None = None
    errors: list[FieldError] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # Keep the transaction's writes although the request fails (a failed login is recorded).
    commit: bool = False

    def __str__(self) -> str:
        return f"{self.code}: {self.detail or self.title}"


class NotFound(DomainError):
    def __init__(self, what: str = "资源", code: str = "not_found") -> None:
        super().__init__(code=code, title="未找到", detail=f"{what}不存在或不在您的权限范围内")


class Conflict(DomainError):
    def __init__(self, detail: str, code: str = "conflict", **extra: Any) -> None:
        super().__init__(code=code, title="冲突", detail=detail, extra=extra)


class RuleViolation(DomainError):
    """A write rule of DESIGN §2 is broken; ``errors`` names every field and reason."""

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        first = errors[0].msg if errors else ""
        super().__init__(
            code=errors[0].code if len(errors) == 1 else "rule_violation",
            title="数据不符合规则",
            detail=detail or (first if len(errors) == 1 else f"共 {len(errors)} 处不符合规则"),
            errors=errors,
        )


class InvalidGeometry(RuleViolation):
    pass


class PayloadInvalid(RuleViolation):
    pass


class Unauthenticated(DomainError):
    def __init__(self, detail: str = "请先登录", code: str = "unauthenticated") -> None:
        super().__init__(code=code, title="未登录", detail=detail)


class Forbidden(DomainError):
    def __init__(self, detail: str = "您的角色无权执行此操作", code: str = "forbidden") -> None:
        super().__init__(code=code, title="无权操作", detail=detail)


class TooManyRequests(DomainError):
    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(
            code="rate_limited",
            title="请求过于频繁",
            detail=detail,
            extra={"retry_after": retry_after},
        )


class PayloadTooLarge(DomainError):
    def __init__(self, detail: str) -> None:
        super().__init__(code="payload_too_large", title="文件过大", detail=detail)


class UnsupportedMedia(DomainError):
    def __init__(self, detail: str, code: str = "unsupported_media_type") -> None:
        super().__init__(code=code, title="不支持的文件格式", detail=detail)
