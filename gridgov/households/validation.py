"""Checks of a household's non-spatial fields, shared by the API schemas and the importers."""

from __future__ import annotations

import re

# 重点人群 tags and their default visit interval in days (DESIGN §6); counties may override.
TAG_INTERVAL_DAYS: dict[str, int] = {
    "高风险老人": 7,
    "防返贫监测户": 30,
    "特困供养": 30,
    "失能失智老人": 30,
    "计生特殊家庭": 30,
    "留守/困境儿童": 30,
    "重度残疾": 30,
    "严重精神障碍": 30,
    "矛盾纠纷户/信访户": 30,
    "社区矫正/刑满释放": 30,
    "低保户": 90,
    "脱贫户": 90,
}
ORDINARY_INTERVAL_DAYS = 180
KNOWN_TAGS = frozenset(TAG_INTERVAL_DAYS)
# Spellings seen in county ledgers, mapped to the canonical tag.
TAG_ALIASES = {
    "留守儿童": "留守/困境儿童",
    "困境儿童": "留守/困境儿童",
    "矛盾纠纷户": "矛盾纠纷户/信访户",
    "信访户": "矛盾纠纷户/信访户",
    "社区矫正": "社区矫正/刑满释放",
    "刑满释放": "社区矫正/刑满释放",
    "刑满释放人员": "社区矫正/刑满释放",
    "特困户": "特困供养",
    "低保": "低保户",
    "脱贫": "脱贫户",
    "监测户": "防返贫监测户",
}

_TAG_SPLIT = re.compile(r"[,，;；、|\s]+")
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_LANDLINE = re.compile(r"^0[0-9]{2,3}-?[0-9]{7,8}$")
_ID18 = re.compile(r"^[0-9]{17}[0-9X]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_number_ok(value: str) -> bool:
    """18-character 居民身份证号 with a correct ISO 7064 MOD 11-2 check character."""
    if not _ID18.match(value):
        return False
    total = sum(int(c) * w for c, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17]


def normalise_phone(value: str) -> str:
    return re.sub(r"[\s()（）]", "", value).removeprefix("+86").removeprefix("86-")


def phone_problem(value: str) -> str | None:
    phone = normalise_phone(value)
    if _MOBILE.match(phone) or _LANDLINE.match(phone):
        return None
    return f"联系电话“{value}”格式不正确（应为 11 位手机号或带区号的固定电话）"


def id_number_problem(value: str) -> str | None:
    value = value.strip().upper()
    if not _ID18.match(value):
        return f"身份证号“{value}”应为 18 位（末位可为 X）"
    if not id_number_ok(value):
        return f"身份证号“{value}”校验位不正确"
    return None


def parse_tags(value: str | list[str] | None) -> tuple[list[str], list[str]]:
    """(canonical tags, unknown tags) from a list or a ledger cell such as “低保户、脱贫户”."""
    if value is None:
        return [], []
    items = value if isinstance(value, list) else _TAG_SPLIT.split(value)
    tags: list[str] = []
    unknown: list[str] = []
    for raw in items:
        tag = raw.strip()
        if not tag or tag in ("无", "-", "/"):
            continue
        tag = TAG_ALIASES.get(tag, tag)
        if tag in KNOWN_TAGS:
            if tag not in tags:
                tags.append(tag)
        else:
            unknown.append(raw.strip())
    return tags, unknown
