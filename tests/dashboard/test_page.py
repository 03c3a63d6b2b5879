"""The web dashboard /dashboard/ in a real browser: Playwright (PyPI) driving Debian's Chromium
(deploy/bootstrap-browser.sh installs it; `make test` runs it) against the app served by uvicorn
on a database of its own, with visits and issues made through the API and rollups refreshed.

Logs in as a township administrator, sees the map's vector tiles rendered (queryRenderedFeatures
on the grids and villages layers, coloured by feature-state), drills down township → village (a
click on the map) → grid (a click in the children table), opens a household's file (一户一档)
and an issue's timeline, compares figures on the page with the API's, switches the period,
downloads the ledger, survives an expired token (refresh), logs out. Every request stays on
this server and the page's CSP is never violated. A screenshot is kept as an artifact
(the test's tmp dir, and $GRIDGOV_TEST_ARTIFACTS if set).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gridgov.auth.models import User
from gridgov.config import Settings
from gridgov.dashboard import page as dashboard_page
from gridgov.dashboard import rollups
from tests.fixtures.browser import launch
from tests.fixtures.served import serve_world
from tests.fixtures.world import (
    COUNTY,
    GRID_A1,
    HOUSEHOLDS,
    PASSWORD,
    TOWN_A,
    VILLAGE_A,
    VILLAGE_B,
    World,
)

POSITION = {h[0]: (h[2], h[3]) for h in HOUSEHOLDS}


# -- without a browser: routes, headers, configuration ------------------------------------------


def test_csp_allows_tianditu_only_when_configured() -> None:
    plain = dashboard_page.csp(Settings())
    assert "script-src 'self';" in plain and "worker-src 'self' blob:" in plain
    assert "connect-src 'self';" in plain and "tianditu" not in plain
    keyed = dashboard_page.csp(Settings(dashboard={"tianditu_key": "0123456789abcdef"}))
    assert "connect-src 'self' https://*.tianditu.gov.cn" in keyed
    assert "img-src 'self' data: blob: https://*.tianditu.gov.cn" in keyed
    with pytest.raises(ValueError):
        Settings(dashboard={"tianditu_key": '"><script>'})


def test_page_routes_and_headers(app: Any) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(app)
    r = client.get("/dashboard", follow_redirects=False)
    assert r.status_code == 308 and r.headers["location"] == "/dashboard/"
    r = client.get("/dashboard/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == dashboard_page.csp()
    assert 'name="gridgov-config"' in r.text and "{{config}}" not in r.text
    for path, kind in [
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
        ("/dashboard/vendor/maplibre-gl/6.20.0/maplibre-gl.mjs", "text/javascript"),
        ("/dashboard/vendor/maplibre-gl/6.20.0/maplibre-gl-worker.mjs", "text/javascript"),
        ("/dashboard/vendor/echarts/6.1.0/echarts.esm.min.mjs", "text/javascript"),
    ]:
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith(kind), path
        # The worker's own CSP governs what it may fetch: the page's, not the API's 'none'.
        assert r.headers["content-security-policy"] == dashboard_page.csp(), path
    assert (
        "immutable"
        in client.get("/dashboard/vendor/echarts/6.1.0/VERSION").headers["cache-control"]
    )
    assert client.get("/dashboard/nothing.js").status_code == 404
    # The rest of the app keeps its own policy.
    assert client.get("/healthz").headers["content-security-policy"].startswith("default-src")
    assert "/dashboard/" not in client.get("/openapi.json").json()["paths"]


# -- in the browser -------------------------------------------------------------------------------


def _visit(world: World, household: str, minutes_ago: float, **fields: Any) -> dict[str, Any]:
    lon, lat = POSITION[household]
    payload: dict[str, Any] = {
        "client_uuid": str(uuid.uuid4()),
        "household_id": world.households[household],
        "visited_at": (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(),
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "accuracy_m": 10,
        "method": "door",
        "notes": "入户走访，了解近况",
    }
    payload.update(fields)
    return payload


def _token(http: httpx.Client, username: str) -> dict[str, str]:
    r = http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
def site(template_db: str) -> Iterator[tuple[str, World]]:
    """The app served on a world with activity: contacts, visits (one faked and rejected) and
    issues made through the API, the rollups refreshed and committed."""
    with serve_world(template_db) as (address, world, makers):
        with makers() as s, s.begin():
            user = s.get(User, world.users["grid_a1"])
            assert user is not None
            user.member_id = world.members["党员甲"]
            for household in ("A1-1", "A1-2", "A1-3"):
                s.execute(
                    text(
                        "INSERT INTO contacts (county_code, village_id, member_id, household_id,"
                        " role, valid_from) VALUES (:c, :v, :m, :h, 'primary', current_date - 30)"
                    ),
                    dict(
                        c=COUNTY,
                        v=world.units[VILLAGE_A],
                        m=user.member_id,
                        h=world.households[household],
                    ),
                )
        base = f"http://{address}"
        with httpx.Client(base_url=base, timeout=30) as http:
            member = _token(http, "grid_a1")
            far = _visit(
                world, "A1-3", 40, location={"type": "Point", "coordinates": [111.09, 26.09]}
            )
            items = [
                _visit(world, "A1-1", 100),
                _visit(world, "A1-1", 70),
                _visit(world, "A1-2", 55),
                far,
            ]
            r = http.post("/api/v1/visits/batch", json={"visits": items}, headers=member)
            assert r.status_code == 200, r.text
            far_id = next(
                o["visit"]["id"]
                for o in r.json()["items"]
                if o["visit"]["client_uuid"] == far["client_uuid"]
            )
            r = http.post(
                f"/api/v1/visits/{far_id}/review",
                json={"decision": "reject", "reason": "定位与住户相距过远"},
                headers=_token(http, "village_a"),
            )
            assert r.status_code == 200, r.text
            for who, household, category in (
                ("grid_a1", "A1-1", "0101"),
                ("grid_a1", "A1-2", "0401"),
                ("village_b", "B1-1", "0101"),
            ):
                lon, lat = POSITION[household]
                body = {
                    "client_uuid": str(uuid.uuid4()),
                    "category_code": category,
                    "description": "村道路灯损坏，夜间通行不便",
                    "location": {"type": "Point", "coordinates": [lon, lat]},
                    "household_id": world.households[household],
                }
                r = http.post("/api/v1/issues", json=body, headers=_token(http, who))
                assert r.status_code in (200, 201), r.text
        with makers() as s, s.begin():
            rollups.refresh(s)
        yield base, world


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch() as chromium:
        yield chromium


def _ready(page: Any, code: str) -> None:
    page.wait_for_function(
        "code => document.body.dataset.state === 'ready' && document.body.dataset.unit === code",
        arg=code,
        timeout=20_000,
    )


def _api(http: httpx.Client, headers: dict[str, str], path: str, **params: Any) -> Any:
    r = http.get(path, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _click_map(page: Any, lon: float, lat: float) -> None:
    """A real mouse click on the map canvas where (lon, lat) is drawn."""
    page.locator("#map").scroll_into_view_if_needed()
    point = page.evaluate("([lon, lat]) => dashboard.map.project([lon, lat])", [lon, lat])
    box = page.locator("#map canvas").bounding_box()
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])


def _rendered(page: Any, layer: str) -> list[str]:
    return page.evaluate(
        "layer => [...new Set(dashboard.map.queryRenderedFeatures({layers: [layer]})"
        ".map(f => f.properties.code))]",
        layer,
    )


def test_township_user_in_the_browser(
    site: tuple[str, World], browser: Any, tmp_path: Path
) -> None:
    base, world = site
    started = time.monotonic()
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    # Every CSP violation and script error is collected; every request must stay on this server.
    page.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    errors: list[str] = []
    outside: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "request",
        lambda req: (
            None if req.url.startswith((base, "blob:", "data:")) else outside.append(req.url)
        ),
    )
    http = httpx.Client(base_url=base, timeout=30)
    try:
        headers = _token(http, "town_a")

        # /dashboard redirects to the page, which asks for a login.
        page.goto(f"{base}/dashboard")
        assert page.url == f"{base}/dashboard/"
        page.wait_for_selector("#login-form", state="visible")
        page.fill("#username", "town_a")
        page.fill("#password", "wrong-password")
        page.click("#login-submit")
        page.wait_for_function("() => document.getElementById('login-error').textContent !== ''")
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        _ready(page, TOWN_A)
        assert page.evaluate("JSON.parse(sessionStorage.getItem('gridgov.dashboard.tokens'))")[
            "refresh"
        ]

        # The township's figures on the page are the API's.
        summary = _api(http, headers, f"/api/v1/dashboard/{TOWN_A}/summary", period="month")
        assert summary["visits"]["counted"] > 0 and summary["contacts"]["with_primary"] == 3
        for key in ("visits.counted", "visits.rejected", "contacts.households", "issues.total"):
            group, name = key.split(".")
            shown = page.text_content(f"#kpi-cards [data-figure='{key}']")
            assert shown == f"{summary[group][name]:,}", key
        children = _api(http, headers, f"/api/v1/dashboard/{TOWN_A}/children", period="month")
        east = next(i for i in children["items"] if i["code"] == VILLAGE_A)
        row = page.locator(f"#children tr[data-code='{VILLAGE_A}']")
        assert row.locator("[data-figure='visits.counted']").text_content() == str(
            east["visits"]["counted"]
        )
        assert (
            row.locator(".badge").text_content()
            == {"green": "绿", "yellow": "黄", "red": "红"}[east["warning"]["colour"]]
        )

        # The map drew our vector tiles: grid and village features are rendered, the villages
        # (the township's children) coloured by the chosen figure through feature-state.
        assert {GRID_A1} <= set(_rendered(page, "grids-line"))
        assert {VILLAGE_A, VILLAGE_B} <= set(_rendered(page, "villages-fill"))
        colour = page.evaluate(
            "code => dashboard.map.getFeatureState("
            "{source: 'villages', sourceLayer: 'villages', id: code}).colour",
            VILLAGE_A,
        )
        assert colour and colour.startswith("#")
        assert page.evaluate(
            "dashboard.map.queryRenderedFeatures({layers: ['households-cluster',"
            " 'households-point']}).length"
        ), "households are drawn"
        assert (
            page.evaluate("dashboard.map.queryRenderedFeatures({layers: ['issues-point']}).length")
            == 3
        )  # the open issues of 东村 and 西村, both villages of 甲镇
        # ... and the pixels: the canvas is not blank.
        assert len(set(page.locator("#map canvas").screenshot())) > 50

        # Drill down: township → village by clicking 东村 on the map (away from points).
        _click_map(page, 111.08, 26.05)
        _ready(page, VILLAGE_A)
        assert page.text_content("#crumbs .current") == "东村"
        assert set(_rendered(page, "grids-fill")) >= {GRID_A1, VILLAGE_A + "002"}
        village = _api(http, headers, f"/api/v1/dashboard/{VILLAGE_A}/summary", period="month")
        assert page.text_content("#kpi-cards [data-figure='visits.counted']") == str(
            village["visits"]["counted"]
        )

        # village → grid by clicking its row in the children table.
        page.click(f"#children tr[data-code='{GRID_A1}'] td:nth-child(3)")
        _ready(page, GRID_A1)
        grid = _api(http, headers, f"/api/v1/dashboard/{GRID_A1}/summary", period="month")
        assert page.text_content("#kpi-cards [data-figure='visits.coverage']") == (
            f"{grid['visits']['coverage'] * 100:.1f}%"
        )

        # 一户一档 from the households table: the timeline shows the household's visits,
        # its contact and its issue, as the API's file has them.
        household = world.households["A1-1"]
        file = _api(http, headers, f"/api/v1/households/{household}/file")
        page.click(f"#households button[data-household='{household}']")
        page.wait_for_selector("#household-timeline li")
        assert page.locator("#household-timeline li").count() == len(file["events"])
        assert (
            page.locator("#household-timeline li[data-kind='visit']").count()
            == sum(1 for e in file["events"] if e["kind"] == "visit")
            == 2
        )
        assert (
            page.text_content("#drawer [data-field='head_name']") == file["household"]["head_name"]
        )
        # ... and from the file to the issue's timeline (GET /api/v1/issues/{id}).
        page.click("#household-timeline li[data-kind='issue'] button")
        page.wait_for_selector("#issue-timeline li")
        issue_id = next(e["ref"]["issue_id"] for e in file["events"] if e["kind"] == "issue")
        issue = _api(http, headers, f"/api/v1/issues/{issue_id}")
        assert page.locator("#issue-timeline li").count() == len(issue["timeline"])
        page.screenshot(path=str(tmp_path / "dashboard-household.png"))
        page.click("#drawer-close")

        # ... and from a household's point on the map (zoomed in, points are not clustered).
        lon, lat = POSITION["A1-3"]
        page.evaluate(
            "([lon, lat]) => new Promise(done => { dashboard.map.once('idle', done);"
            " dashboard.map.jumpTo({center: [lon, lat], zoom: 15}); })",
            [lon, lat],
        )
        _click_map(page, lon, lat)
        page.wait_for_selector("#household-timeline")
        other = _api(http, headers, f"/api/v1/households/{world.households['A1-3']}/file")
        assert (
            page.text_content("#drawer [data-field='head_name']")
            == (other["household"]["head_name"])
        )
        assert page.locator("#household-timeline li[data-kind='visit']").count() == 1
        page.click("#drawer-close")

        # Breadcrumbs lead back up; the period selector changes every panel.
        page.click(f"#crumbs a[data-code='{TOWN_A}']")
        _ready(page, TOWN_A)
        page.select_option("#period-kind", "day")
        page.click("#period-form button[type='submit']")
        page.wait_for_function("() => location.hash.includes('period=day')")
        _ready(page, TOWN_A)
        today = _api(http, headers, f"/api/v1/dashboard/{TOWN_A}/summary", period="day")
        assert page.text_content("#kpi-cards [data-figure='visits.counted']") == str(
            today["visits"]["counted"]
        )
        assert today["period"]["label"] in page.text_content("#period-label")

        # The ledger (台账) downloads as XLSX.
        with page.expect_download() as download:
            page.click("#ledger")
        path = tmp_path / "ledger.xlsx"
        download.value.save_as(path)
        assert download.value.suggested_filename.endswith(".xlsx")
        assert path.read_bytes()[:2] == b"PK"

        # An expired access token is refreshed on the next request, and the page goes on.
        page.evaluate(
            "() => { const t = JSON.parse(sessionStorage.getItem('gridgov.dashboard.tokens'));"
            " t.access = 'expired.token.value';"
            " sessionStorage.setItem('gridgov.dashboard.tokens', JSON.stringify(t)); }"
        )
        page.select_option("#period-kind", "week")
        page.click("#period-form button[type='submit']")
        page.wait_for_function("() => location.hash.includes('period=week')")
        _ready(page, TOWN_A)
        assert (
            page.evaluate("JSON.parse(sessionStorage.getItem('gridgov.dashboard.tokens')).access")
            != "expired.token.value"
        )

        screenshot = tmp_path / "dashboard-township.png"
        page.screenshot(path=str(screenshot), full_page=True)
        artifacts = os.environ.get("GRIDGOV_TEST_ARTIFACTS")
        if artifacts:
            Path(artifacts).mkdir(parents=True, exist_ok=True)
            for shot in tmp_path.glob("*.png"):
                shutil.copy(shot, Path(artifacts) / shot.name)

        # Logout ends the session.
        page.click("#logout")
        page.wait_for_selector("#login-form", state="visible")
        assert page.evaluate("sessionStorage.getItem('gridgov.dashboard.tokens')") is None

        assert page.evaluate("window.__csp") == []
        assert errors == []
        assert outside == [], "the page fetched something from outside the server"
        assert time.monotonic() - started < 60
    finally:
        http.close()
        context.close()


def test_tianditu_key_reaches_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    from gridgov.config import get_settings

    monkeypatch.setattr(get_settings().dashboard, "tianditu_key", "0123456789abcdef0123")
    html = dashboard_page.render()
    assert "&quot;tianditu_key&quot;: &quot;0123456789abcdef0123&quot;" in html
    assert "https://*.tianditu.gov.cn" in dashboard_page.csp()
