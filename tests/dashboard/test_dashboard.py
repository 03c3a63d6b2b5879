"""The dashboard's figures against independent SQL over the raw tables, for every level, before
and after new visits and issue transitions arrive; scope; scores; the household file."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.auth.models import User
from gridgov.dashboard import rollups
from gridgov.households.validation import ORDINARY_INTERVAL_DAYS
from gridgov.visits.service import intervals_for
from tests.fixtures.world import (
    COUNTY,
    GRID_A1,
    HOUSEHOLDS,
    TOWN_A,
    TOWN_B,
    VILLAGE_A,
    VILLAGE_B,
    VILLAGE_C,
    World,
)

POSITION = {h[0]: (h[2], h[3]) for h in HOUSEHOLDS}
TODAY = rollups.today()


def visit(world: World, household: str, hours_ago: float, **fields: Any) -> dict[str, Any]:
    lon, lat = POSITION[household]
    payload: dict[str, Any] = {
        "client_uuid": str(uuid.uuid4()),
        "household_id": world.households[household],
        "visited_at": (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat(),
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "accuracy_m": 10,
        "method": "door",
    }
    payload.update(fields)
    return payload


def issue_body(lon: float, lat: float, category: str = "0101") -> dict[str, Any]:
    return {
        "client_uuid": str(uuid.uuid4()),
        "category_code": category,
        "description": "村道路灯损坏，夜间通行不便",
        "location": {"type": "Point", "coordinates": [lon, lat]},
    }


@pytest.fixture
def activity(client, as_user, session: Session, world: World) -> World:
    """Contacts, visits (one faked and rejected), issues in two villages; rollups refreshed."""
    user = session.get(User, world.users["grid_a1"])
    user.member_id = world.members["党员甲"]
    for household in ("A1-1", "A1-2", "A1-3"):
        session.execute(
            text(
                "INSERT INTO contacts (county_code, village_id, member_id, household_id, role,"
                " valid_from) VALUES (:c, :v, :m, :h, 'primary', current_date - 30)"
            ),
            dict(
                c=COUNTY, v=world.units[VILLAGE_A], m=user.member_id, h=world.households[household]
            ),
        )
    session.commit()
    far = visit(world, "A1-3", 2, location={"type": "Point", "coordinates": [111.09, 26.09]})
    items = [visit(world, "A1-1", 5), visit(world, "A1-1", 4), visit(world, "A1-2", 3), far]
    r = client.post("/api/v1/visits/batch", json={"visits": items}, headers=as_user("grid_a1"))
    assert r.status_code == 200, r.text
    outcomes = r.json()["items"] if "items" in r.json() else r.json()["results"]
    far_id = next(
        o["visit"]["id"] for o in outcomes if o["visit"]["client_uuid"] == far["client_uuid"]
    )
    assert "far_from_household" in next(
        o["visit"]["flags"] for o in outcomes if o["visit"]["id"] == far_id
    )
    review = client.post(
        f"/api/v1/visits/{far_id}/review",
        json={"decision": "reject", "reason": "定位与住户相距过远"},
        headers=as_user("village_a"),
    )
    assert review.status_code == 200, review.text
    for who, (lon, lat), category in (
        ("grid_a1", POSITION["A1-1"], "0101"),
        ("grid_a1", POSITION["A1-2"], "0401"),
        ("village_b", POSITION["B1-1"], "0101"),
    ):
        r = client.post("/api/v1/issues", json=issue_body(lon, lat, category), headers=as_user(who))
        assert r.status_code in (200, 201), r.text
    rollups.refresh(session)
    return world


# -- independent figures -------------------------------------------------------------------------


def expected(
    session: Session, village_codes: list[str], grid_code: str | None = None
) -> dict[str, Any]:
    """The node's figures for this month, computed straight from the raw tables."""
    month = TODAY.replace(day=1)
    nxt = (month + timedelta(days=32)).replace(day=1)
    params = {"codes": village_codes, "grid": grid_code, "lo": month, "hi": nxt}
    grid_filter = "AND (CAST(:grid AS text) IS NULL OR g.code = :grid)"
    households = session.execute(
        text(
            "SELECT h.id, h.tags, h.created_at, EXISTS (SELECT 1 FROM contacts c"
            " WHERE c.household_id = h.id AND c.role = 'primary' AND c.valid_to IS NULL) AS p,"
            " (SELECT max(v.visited_at) FROM visits v WHERE v.household_id = h.id"
            "  AND v.review_status IN ('clean', 'accepted')) AS last"
            " FROM households h JOIN admin_units u ON u.id = h.village_id"
            f" LEFT JOIN grids g ON g.id = h.grid_id WHERE u.code = ANY(:codes) {grid_filter}"
            " AND h.removed_at IS NULL"
        ),
        params,
    ).all()
    intervals = intervals_for(COUNTY)
    overdue = 0
    for h in households:
        days = min((intervals[t] for t in h.tags if t in intervals), default=ORDINARY_INTERVAL_DAYS)
        due = (h.last + timedelta(days=days)) if h.last else h.created_at
        if due.astimezone(rollups.LOCAL).date() < TODAY:
            overdue += 1
    visits = (
        session.execute(
            text(
                "SELECT count(*) AS visits,"
                " count(*) FILTER (WHERE v.review_status IN ('clean', 'accepted')) AS counted,"
                " count(*) FILTER (WHERE v.review_status = 'rejected') AS rejected,"
                " count(*) FILTER (WHERE cardinality(v.flags) > 0) AS flagged,"
                " count(DISTINCT v.household_id)"
                "  FILTER (WHERE v.review_status IN ('clean', 'accepted')) AS households_visited"
                " FROM visits v JOIN admin_units u ON u.id = v.village_id"
                " LEFT JOIN grids g ON g.id = v.grid_id"
                f" WHERE u.code = ANY(:codes) {grid_filter}"
                " AND (v.visited_at AT TIME ZONE 'Asia/Shanghai')::date >= :lo"
                " AND (v.visited_at AT TIME ZONE 'Asia/Shanghai')::date < :hi"
            ),
            params,
        )
        .mappings()
        .one()
    )
    issues = (
        session.execute(
            text(
                "SELECT count(*) FILTER (WHERE i.state NOT IN ('REJECTED', 'MERGED', 'CANCELLED'))"
                "  AS total,"
                " count(*) FILTER (WHERE i.state = 'CLOSED') AS closed,"
                " count(*) FILTER (WHERE i.state NOT IN ('CLOSED', 'REJECTED', 'MERGED',"
                "  'CANCELLED', 'RESOLVED', 'SELF_RESOLVED', 'VERIFIED')) AS open"
                " FROM issues i JOIN admin_units u ON u.id = i.village_id"
                " LEFT JOIN grids g ON g.id = i.grid_id"
                f" WHERE u.code = ANY(:codes) {grid_filter}"
                " AND (i.created_at AT TIME ZONE 'Asia/Shanghai')::date >= :lo"
                " AND (i.created_at AT TIME ZONE 'Asia/Shanghai')::date < :hi"
            ),
            params,
        )
        .mappings()
        .one()
    )
    return {
        "households": len(households),
        "with_primary": sum(1 for h in households if h.p),
        "overdue": overdue,
        **{
            k: visits[k] for k in ("visits", "counted", "rejected", "flagged", "households_visited")
        },
        "issues_total": issues["total"],
        "issues_closed": issues["closed"],
        "issues_open": issues["open"],
    }


def shown(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "households": body["contacts"]["households"],
        "with_primary": body["contacts"]["with_primary"],
        "overdue": body["visits"]["overdue"],
        **{
            k: body["visits"][k]
            for k in ("visits", "counted", "rejected", "flagged", "households_visited")
        },
        "issues_total": body["issues"]["total"],
        "issues_closed": body["issues"]["closed"],
        "issues_open": body["issues"]["open"],
    }


ALL_VILLAGES = [VILLAGE_A, VILLAGE_B, VILLAGE_C]
NODES = [
    (COUNTY, ALL_VILLAGES, None),
    (TOWN_A, [VILLAGE_A, VILLAGE_B], None),
    (VILLAGE_A, [VILLAGE_A], None),
    (GRID_A1, [VILLAGE_A], GRID_A1),
]


def summary(client, headers, code: str, **params: Any) -> dict[str, Any]:
    r = client.get(f"/api/v1/dashboard/{code}/summary", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(("code", "villages", "grid"), NODES)
def test_summary_equals_independent_sql(client, as_user, session, activity, code, villages, grid):
    body = summary(client, as_user("county"), code, period="month", date=TODAY.isoformat())
    assert body["unit"]["code"] == code and body["period"]["kind"] == "month"
    assert shown(body) == expected(session, villages, grid)


def test_figures_are_not_trivial(client, as_user, activity):
    body = summary(client, as_user("county"), VILLAGE_A)
    assert body["visits"]["counted"] == 3 and body["visits"]["rejected"] == 1
    assert body["visits"]["households_visited"] == 2
    assert body["contacts"]["with_primary"] == 3
    assert body["issues"]["total"] == 2 and body["issues"]["open"] == 2
    assert body["warning"]["colour"] in ("yellow", "red")  # most households have no contact


def test_children_rows_equal_independent_sql(client, as_user, session, activity):
    county = client.get(f"/api/v1/dashboard/{COUNTY}/children", headers=as_user("county")).json()
    assert county["level"] == "township"
    rows = {r["code"]: r for r in county["items"]}
    assert set(rows) == {TOWN_A, TOWN_B}
    assert shown(rows[TOWN_A]) == expected(session, [VILLAGE_A, VILLAGE_B])
    assert shown(rows[TOWN_B]) == expected(session, [VILLAGE_C])
    village = client.get(
        f"/api/v1/dashboard/{VILLAGE_A}/children", headers=as_user("county")
    ).json()
    assert village["level"] == "grid"
    grids = {r["code"]: r for r in village["items"]}
    assert shown(grids[GRID_A1]) == expected(session, [VILLAGE_A], GRID_A1)
    total = summary(client, as_user("county"), VILLAGE_A)
    assert (
        sum(r["contacts"]["households"] for r in village["items"])
        == total["contacts"]["households"]
    )


def test_new_visits_and_transitions_arrive(client, as_user, session, activity):
    world = activity
    before = summary(client, as_user("county"), VILLAGE_A)
    r = client.post(
        "/api/v1/visits/batch",
        json={"visits": [visit(world, "A1-4", 1), visit(world, "A2-1", 1.5)]},
        headers=as_user("village_a"),
    )
    assert r.status_code == 200, r.text
    issue = client.get("/api/v1/issues", headers=as_user("village_a")).json()["items"][0]
    r = client.post(
        f"/api/v1/issues/{issue['id']}/transitions",
        json={"action": "reject", "version": issue["version"], "note": "重复上报"},
        headers=as_user("village_a"),
    )
    assert r.status_code == 200, r.text
    stale = summary(client, as_user("county"), VILLAGE_A)
    assert stale["visits"]["counted"] == before["visits"]["counted"]  # until the refresher runs
    result = rollups.refresh(session)
    assert result.ran and result.notes >= 1
    after = summary(client, as_user("county"), VILLAGE_A)
    assert after["visits"]["counted"] == before["visits"]["counted"] + 2
    assert after["issues"]["total"] == before["issues"]["total"] - 1
    for code, villages, grid in NODES:
        assert shown(summary(client, as_user("county"), code)) == expected(session, villages, grid)


def test_day_week_and_range_periods(client, as_user, session, activity):
    month = summary(client, as_user("county"), VILLAGE_A, period="month")
    day = summary(client, as_user("county"), VILLAGE_A, period="day")
    week = summary(client, as_user("county"), VILLAGE_A, period="week")
    start = TODAY.replace(day=1)
    end = ((start + timedelta(days=32)).replace(day=1)) - timedelta(days=1)
    custom = summary(
        client,
        as_user("county"),
        VILLAGE_A,
        period="range",
        **{"from": start.isoformat(), "to": end.isoformat()},
    )
    assert shown(custom) == shown(month)
    assert custom["period"]["kind"] == "range"
    for body, lo, hi in (
        (day, TODAY, TODAY + timedelta(days=1)),
        (
            week,
            TODAY - timedelta(days=TODAY.weekday()),
            TODAY - timedelta(days=TODAY.weekday() - 7),
        ),
    ):
        raw = session.scalar(
            text(
                "SELECT count(*) FROM visits WHERE village_id = :v"
                " AND (visited_at AT TIME ZONE 'Asia/Shanghai')::date >= :lo"
                " AND (visited_at AT TIME ZONE 'Asia/Shanghai')::date < :hi"
            ),
            {"v": activity.units[VILLAGE_A], "lo": lo, "hi": hi},
        )
        assert body["visits"]["visits"] == raw
    bad = client.get(
        f"/api/v1/dashboard/{VILLAGE_A}/summary",
        params={"period": "range"},
        headers=as_user("county"),
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["query", "from"]


def test_trend_adds_up_to_the_month(client, as_user, activity):
    start = TODAY.replace(day=1)
    end = ((start + timedelta(days=32)).replace(day=1)) - timedelta(days=1)
    r = client.get(
        f"/api/v1/dashboard/{VILLAGE_A}/trend",
        params={"from": start.isoformat(), "to": end.isoformat(), "kind": "day"},
        headers=as_user("county"),
    )
    assert r.status_code == 200, r.text
    series = r.json()["series"]
    assert len(series) == (end - start).days + 1
    month = summary(client, as_user("county"), VILLAGE_A)
    assert sum(p["counted"] for p in series) == month["visits"]["counted"]
    assert sum(p["issues_reported"] for p in series) >= month["issues"]["total"]


def test_flags_and_issue_breakdowns(client, as_user, activity):
    flags = client.get(f"/api/v1/dashboard/{VILLAGE_A}/flags", headers=as_user("county")).json()
    far = next(f for f in flags["items"] if f["flag"] == "far_from_household")
    assert (far["rejected"], far["pending"], far["reviewed"]) == (1, 0, 1)
    issues = client.get(f"/api/v1/dashboard/{COUNTY}/issues", headers=as_user("county")).json()
    categories = {c["key"]: c for c in issues["by_category"]}
    assert categories["0101"]["issues"] == 2 and categories["0101"]["name"]
    assert {s["key"] for s in issues["by_state"]} == {"REPORTED"}
    assert sum(level["issues"] for level in issues["by_level"]) == 3


# -- scope ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "code", "status"),
    [
        ("village_a", VILLAGE_B, 404),
        ("village_a", TOWN_A, 404),
        ("village_a", VILLAGE_A, 200),
        ("town_a", COUNTY, 404),
        ("town_a", VILLAGE_B, 200),
        ("grid_a1", VILLAGE_A, 404),
        ("grid_a1", GRID_A1, 200),
        ("county", "439902999999", 404),
    ],
)
def test_scope(client, as_user, activity, user, code, status):
    for part in ("summary", "children", "flags", "issues", "scores"):
        r = client.get(f"/api/v1/dashboard/{code}/{part}", headers=as_user(user))
        assert r.status_code == status, (part, r.text)
        if status == 404:
            assert r.json()["code"] == "not_found"


def test_anonymous_is_401(client):
    assert client.get(f"/api/v1/dashboard/{COUNTY}/summary").status_code == 401


# -- 积分 -----------------------------------------------------------------------------------------


def test_member_scores_come_from_data_with_their_parts(client, as_user, session, activity):
    r = client.get(
        f"/api/v1/dashboard/{VILLAGE_A}/scores", params={"of": "member"}, headers=as_user("county")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    (row,) = [i for i in body["items"] if i["id"] == activity.members["党员甲"]]
    parts = row["parts"]
    assert (parts["assigned"], parts["households_visited"], parts["rejected_visits"]) == (3, 2, 1)
    assert parts["issues_reported"] == 2
    w = body["formula"]["weights"]
    score = (
        w["coverage"] * 100 * parts["coverage"]
        + w["issue_reported"] * min(parts["issues_reported"], w["issue_cap"])
        + w["issue_on_time"] * parts["issues_closed_on_time"]
        - w["overdue"] * parts["overdue"]
        - w["rejected_visit"] * parts["rejected_visits"]
    )
    assert row["score"] == pytest.approx(round(score, 2))
    assert row["name"] == "党**"  # masked without pii=true
    grids = client.get(
        f"/api/v1/dashboard/{VILLAGE_A}/scores", params={"of": "grid"}, headers=as_user("county")
    )
    assert {g["grid_code"] for g in grids.json()["items"]} >= {GRID_A1}
    auditor = client.get(
        f"/api/v1/dashboard/{VILLAGE_A}/scores", params={"pii": "true"}, headers=as_user("auditor")
    )
    assert auditor.status_code == 403


# -- 一户一档 -------------------------------------------------------------------------------------


def test_household_file_is_one_timeline(client, as_user, activity):
    household = activity.households["A1-1"]
    r = client.get(f"/api/v1/households/{household}/file", headers=as_user("village_a"))
    assert r.status_code == 200, r.text
    body = r.json()
    kinds = [e["kind"] for e in body["events"]]
    assert kinds.count("visit") == 2 and "contact_start" in kinds
    assert body["events"] == sorted(body["events"], key=lambda e: e["at"], reverse=True)
    assert body["household"]["head_name"] == "王**"
    other = client.get(f"/api/v1/households/{household}/file", headers=as_user("village_b"))
    assert other.status_code == 404


def test_period_helper():
    from gridgov.dashboard.service import period

    wed = date(2026, 12, 2)
    assert period("week", on=wed).start == date(2026, 11, 30)
    assert period("month", on=wed).end == date(2027, 1, 1)
    assert period("range", start=wed, end=wed).end == date(2026, 12, 3)


# -- 台账 -----------------------------------------------------------------------------------------


def test_ledger_matches_the_api_cell_by_cell(client, as_user, activity):
    import io

    import openpyxl

    r = client.get(f"/api/v1/dashboard/{COUNTY}/ledger.xlsx", headers=as_user("county"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["汇总", "走访标记", "事件类别", "党员积分", "网格积分"]
    ws = book["汇总"]
    assert ws.freeze_panes == "A3"
    header = [c.value for c in ws[2]]
    assert header[:3] == ["代码", "名称", "在册户数"]
    children = client.get(f"/api/v1/dashboard/{COUNTY}/children", headers=as_user("county")).json()
    total = summary(client, as_user("county"), COUNTY)
    rows = list(ws.iter_rows(min_row=3, values_only=True))
    assert [row[0] for row in rows] == [*(i["code"] for i in children["items"]), COUNTY]
    col = {title: i for i, title in enumerate(header)}
    for row, api in zip(rows, [*children["items"], total], strict=True):
        assert row[col["在册户数"]] == api["contacts"]["households"]
        assert row[col["计入走访"]] == api["visits"]["counted"]
        assert row[col["走访户数"]] == api["visits"]["households_visited"]
        assert row[col["超期未访户数"]] == api["visits"]["overdue"]
        assert row[col["上报事件"]] == api["issues"]["total"]
        assert row[col["联系户覆盖率"]] == api["contacts"]["coverage"]
        assert (
            row[col["预警"]]
            == {"green": "绿", "yellow": "黄", "red": "红"}[api["warning"]["colour"]]
        )
    assert ws.cell(row=3, column=col["联系户覆盖率"] + 1).number_format == "0.0%"
    assert ws.column_dimensions["B"].width == 18
    flags = list(book["走访标记"].iter_rows(min_row=3, values_only=True))
    assert ("距住户过远", "far_from_household", 0, 0, 1, 1) in flags
    scores = client.get(f"/api/v1/dashboard/{COUNTY}/scores", headers=as_user("county")).json()
    sheet = list(book["党员积分"].iter_rows(min_row=3, values_only=True))
    assert [(r[0], r[3]) for r in sheet] == [(i["name"], i["score"]) for i in scores["items"]]


def test_open_issues_follow_their_deadlines(client, as_user, session, activity):
    """Open, overdue and due-soon issues come from the status rows, for every level, and a
    village whose issue reaches a deadline is recomputed without any write."""
    open_a = (
        session.execute(
            text(
                "SELECT i.id FROM issues i JOIN admin_units u ON u.id = i.village_id"
                " WHERE u.code = :v ORDER BY i.id"
            ),
            {"v": VILLAGE_A},
        )
        .scalars()
        .all()
    )
    assert len(open_a) == 2
    # One overdue an hour ago; one with 10 % of a day's SLA left (due soon at share 0.25).
    session.execute(
        text(
            "UPDATE issues SET sla_started_at = now() - interval '1 day',"
            " due_at = CASE id WHEN :late THEN now() - interval '1 hour'"
            " ELSE now() + interval '144 minutes' END WHERE id IN (:late, :soon)"
        ),
        {"late": open_a[0], "soon": open_a[1]},
    )
    rollups.refresh(session)
    counts = {}
    for code in (COUNTY, TOWN_A, VILLAGE_A, TOWN_B):
        issues = summary(client, as_user("county"), code)["issues"]
        counts[code] = (issues["open"], issues["open_overdue"], issues["open_due_soon"])
    b_open = 1  # VILLAGE_B's issue, still far from its deadline
    assert counts == {
        COUNTY: (2 + b_open, 1, 1),
        TOWN_A: (2 + b_open, 1, 1),
        VILLAGE_A: (2, 1, 1),
        TOWN_B: (0, 0, 0),
    }
    village = summary(client, as_user("county"), VILLAGE_A)
    assert village["warning"]["parts"]["issues"] == "red"

    # A deadline reached at this very moment (the transaction's now()): the next refresh
    # recomputes the village although nothing was written.
    session.execute(text("UPDATE issues SET due_at = now() WHERE id = :id"), {"id": open_a[1]})
    rollups.refresh(session)
    again = rollups.refresh(session)
    assert again.ran and again.villages == 1
    noted = session.scalar(
        text("SELECT count(*) FROM dash_dirty WHERE village_id = :v"),
        {"v": activity.units[VILLAGE_A]},
    )
    assert noted == 0  # picked up by its deadline, not by a note


@pytest.mark.parametrize(
    ("part", "model"),
    [
        ("summary", "DashboardSummary"),
        ("children", "DashboardChildren"),
        ("flags", "FlagBreakdown"),
        ("issues", "IssueBreakdown"),
    ],
)
@pytest.mark.parametrize("code", [COUNTY, TOWN_A, VILLAGE_A, GRID_A1])
def test_bytes_bodies_are_their_response_model(client, as_user, activity, part, model, code):
    """These routes send JSON the service built (no pass through pydantic): the body must be
    exactly what the declared response_model would send — no key missing, none extra, the
    same types — so the OpenAPI document stays true to the wire."""
    from gridgov.dashboard import schemas

    start = (TODAY - timedelta(days=40)).isoformat()
    for query in ("period=month", f"period=range&from={start}&to={TODAY.isoformat()}"):
        r = client.get(f"/api/v1/dashboard/{code}/{part}?{query}", headers=as_user("county"))
        assert r.status_code == 200, r.text
        body = r.json()
        typed = getattr(schemas, model).model_validate(body)
        assert typed.model_dump(mode="json", by_alias=True) == body, query
