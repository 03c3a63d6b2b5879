"""Builders for 联系户 tests: members with a home, limits per test, a helper to read problems."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gridgov.members.models import PartyMember
from tests.fixtures.world import COUNTY, GRID_A1, GRID_A2, GRID_B1, VILLAGE_A, VILLAGE_B, World

PROBLEM = "application/problem+json"
CJK = re.compile(r"[\u4e00-\u9fff]")
GRID_OF_VILLAGE = {VILLAGE_A: GRID_A1, VILLAGE_B: GRID_B1}


@pytest.fixture
def make_member(session: Session, world: World) -> Callable[..., PartyMember]:
    """``make_member(lon, lat, village=…, grid=…, **fields)`` → a member living there."""
    counter = iter(range(1, 10_000))

    def make(
        lon: float = 111.02,
        lat: float = 26.02,
        *,
        village: str = VILLAGE_A,
        grid: str | None = "auto",
        **fields: Any,
    ) -> PartyMember:
        if grid == "auto":
            grid = (
                GRID_A2 if village == VILLAGE_A and lon >= 111.05 else GRID_OF_VILLAGE.get(village)
            )
        member = PartyMember(
            county_code=COUNTY,
            party_org_id=fields.pop("party_org_id", world.orgs[village]),
            village_id=world.units[village],
            grid_id=world.grids[grid] if grid else None,
            name=fields.pop("name", f"测试党员{next(counter)}"),
            geom=f"SRID=4326;POINT({lon} {lat})",
            **fields,
        )
        session.add(member)
        # Committed (to the test's savepoint): a request that fails rolls its own work back,
        # and must not take the test's setup with it.
        session.commit()
        return member

    return make


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``limits(hard_max=2, …)``: this test's county limits (the settings object is patched)."""
    from gridgov.config import get_settings

    settings = get_settings().contacts

    def set_(**overrides: Any) -> None:
        monkeypatch.setattr(settings, "counties", {COUNTY: overrides})

    return set_


def assert_problem(r: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    """A problem+json answer with ``code`` (in ``errors`` when a field is named)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status and CJK.search(body["title"])
    if field is None:
        assert body["code"] == code, body
        assert CJK.search(body["detail"])
        return body
    matching = [e for e in body.get("errors", []) if e["code"] == code]
    assert matching, body
    for e in matching:
        assert field in e["loc"] and CJK.search(e["msg"]), e
    return body
