"""KPIs on a hand-built data set; every expected number is worked out by hand below."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from gridgov.errors import NotFound
from gridgov.issues import service as issues_service
from tests.fixtures.world import COUNTY, VILLAGE_A
from tests.issues.conftest import cst

# (state, on_time, rework_count, extended, resolved_level, rating) — all in 东村 unless noted.
DATA = [
    ("CLOSED", True, 0, False, 1, 5),  # 1
    ("CLOSED", False, 1, True, 2, 3),  # 2
    ("CLOSED", True, 0, False, 1, None),  # 3
    ("IN_PROGRESS", None, 0, True, None, None),  # 4
    ("REPORTED", None, 0, False, None, None),  # 5 (reported in January)
    ("REJECTED", None, 0, False, None, None),  # 6 never counts
]


def _build(session: Session, make_issue) -> None:
    for i, (state, on_time, rework, extended, level, rating) in enumerate(DATA):
        issue = make_issue(by="village_a", lon=111.01 + i * 0.002, now=cst(2026, 3, 2, 10))
        issue.state, issue.on_time, issue.rework_count = state, on_time, rework
        issue.extended, issue.resolved_level, issue.rating = extended, level, rating
        if i == 4:
            issue.created_at = cst(2026, 1, 5, 10)
    # 7: 西村, closed on time at township level, rated 1.
    other = make_issue(by="village_b", lon=111.02, lat=26.15, now=cst(2026, 3, 2, 10))
    other.state, other.on_time, other.resolved_level, other.rating = "CLOSED", True, 3, 1
    session.flush()


def test_kpis_of_a_village_and_the_county(session: Session, make_issue, scope_of) -> None:
    _build(session, make_issue)
    county = scope_of("county")

    village = issues_service.kpis(session, county, unit_code=VILLAGE_A)
    # 东村: issues 1–5 count (6 rejected). Closed 1,2,3; on time 1,3; reworked 2;
    # extended 2,4; solved in the grid 1,3; rated 1 (5) and 2 (3).
    assert (village.total, village.closed, village.closed_on_time) == (5, 3, 2)
    assert (village.reworked, village.extended, village.closed_in_grid, village.rated) == (
        1,
        2,
        2,
        2,
    )
    assert village.closure_rate == 0.6  # 3 / 5
    assert village.on_time_rate == 0.6667  # 2 / 3
    assert village.rework_rate == 0.3333  # 1 / 3
    assert village.extension_rate == 0.4  # 2 / 5
    assert village.in_grid_rate == 0.6667  # 2 / 3
    assert village.satisfaction == 4.0  # (5 + 3) / 2

    whole = issues_service.kpis(session, county, unit_code=COUNTY)
    # Adds 7: 6 counted, 4 closed, 3 on time, 1 reworked, 2 extended, 2 in grid, ratings 5, 3, 1.
    assert (whole.total, whole.closed, whole.closed_on_time, whole.closed_in_grid) == (6, 4, 3, 2)
    assert whole.closure_rate == 0.6667  # 4 / 6
    assert whole.on_time_rate == 0.75  # 3 / 4
    assert whole.rework_rate == 0.25  # 1 / 4
    assert whole.extension_rate == 0.3333  # 2 / 6
    assert whole.in_grid_rate == 0.5  # 2 / 4
    assert whole.satisfaction == 3.0  # (5 + 3 + 1) / 3

    # The period counts by report time: without 5 (January), 东村 has 4 issues, 3 closed.
    march = issues_service.kpis(session, county, unit_code=VILLAGE_A, start=cst(2026, 2, 1))
    assert (march.total, march.closure_rate, march.extension_rate) == (4, 0.75, 0.5)

    # A village admin of 西村 sees only 西村, whatever unit they ask for.
    own = issues_service.kpis(session, scope_of("village_b"))
    assert (own.total, own.closed, own.satisfaction, own.in_grid_rate) == (1, 1, 1.0, 0.0)
    with pytest.raises(NotFound):  # another village is not a filter for them: 404, not zeros
        issues_service.kpis(session, scope_of("village_b"), unit_code=VILLAGE_A)


def test_kpis_over_http_and_empty_rates(client, as_user, session, make_issue) -> None:
    r = client.get("/api/v1/issues/kpis", headers=as_user("auditor"))
    assert r.status_code == 200
    assert r.json()["total"] == 0 and r.json()["closure_rate"] is None  # nothing: no rate
    _build(session, make_issue)
    session.commit()
    r = client.get(
        f"/api/v1/issues/kpis?unit_code={VILLAGE_A}&from=2026-02-01T00:00:00%2B08:00",
        headers=as_user("town_a"),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["total"], r.json()["closed"], r.json()["on_time_rate"]) == (4, 3, 0.6667)
