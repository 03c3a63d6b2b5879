"""Checks of a household's non-spatial fields, shared by the API schemas and the importers.

Phone numbers and ID numbers are personal data: their formats are checked in the one module
that rules them (``gridgov.privacy``), re-exported here for the household writes."""

from __future__ import annotations

import re

from gridgov.privacy import id_number_ok, id_number_problem, normalise_phone, phone_problem

__all__ = [
    "KNOWN_TAGS",
    "ORDINARY_INTERVAL_DAYS",
    "TAG_ALIASES",
    "TAG_INTERVAL_DAYS",
    "id_number_ok",
    "id_number_problem",
    "normalise_phone",
    "parse_tags",
    "phone_problem",
]

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
