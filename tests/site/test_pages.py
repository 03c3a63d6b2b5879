"""The home page / and the API docs /docs (Swagger UI) and /redoc (ReDoc), served by the app
itself: every URL they reference is on this server, the vendored assets answer with the right
types, and in a real browser with every other host blocked the docs render all operations,
log in and call the API ("Try it out") without a single CSP violation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from gridgov.site import pages
from tests.fixtures.browser import launch
from tests.fixtures.served import serve_world
from tests.fixtures.world import PASSWORD, World

VENDOR = Path(pages.VENDOR_DIR)


class _Links(HTMLParser):
    """Every URL an HTML page refers to (src, href, spec-url, content of meta URLs)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url", "action") and value is not None:
                self.urls.append((tag, name, value))


def links(page: str) -> list[tuple[str, str, str]]:
    parser = _Links()
    parser.feed(page)
    return parser.urls


@pytest.fixture
def plain_client() -> Iterator[TestClient]:
    """The app without a database: none of these pages needs one."""
    from gridgov.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("path", ["/", "/docs", "/redoc"])
def test_pages_refer_only_to_this_server(plain_client: TestClient, path: str) -> None:
    r = plain_client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-security-policy"] == pages.csp(path.strip("/") or "home")
    assert "cdn" not in r.text.lower() and "googleapis" not in r.text
    found = links(r.text)
    assert found, "the page links something"
    for tag, _, url in found:
        # Same origin: an absolute path on this server (or a data: favicon), never a host.
        assert url.startswith("/") and not url.startswith("//") or url == "data:,", (tag, url)
        if url.startswith("/"):
            target = plain_client.get(url.split("?")[0].split("#")[0])
            if tag in ("script", "link") and url != "data:,":
                assert target.status_code == 200, url
    assert "<script>" not in r.text  # no inline script (the CSP would refuse it)


def test_home_page_links_the_services(plain_client: TestClient) -> None:
    r = plain_client.get("/")
    assert '<html lang="zh-CN">' in r.text and "<title>网格治理服务</title>" in r.text
    hrefs = {url for tag, _, url in links(r.text) if tag == "a"}
    assert {
        "/dashboard/",
        "/docs",
        "/redoc",
        "/openapi.json",
        "/ogc?f=html",
        "/open311/v2/discovery.json",
    } <= hrefs
    styles = [url for tag, _, url in links(r.text) if tag == "link" and url.endswith(".css")]
    assert styles == ["/dashboard/style.css", "/site/home.css"]  # the dashboard's look
    # No script at all, and the CSP says so.
    assert "<script" not in r.text and "script-src" not in r.headers["content-security-policy"]
    assert plain_client.head("/").status_code == 200


def test_assets_answer_with_their_types(plain_client: TestClient) -> None:
    for path, kind in [
        (f"/site/{pages.SWAGGER_UI}/swagger-ui-bundle.js", "text/javascript"),
        (f"/site/{pages.SWAGGER_UI}/swagger-ui.css", "text/css"),
        (f"/site/{pages.REDOC}/redoc.standalone.js", "text/javascript"),
        ("/site/swagger-init.js", "text/javascript"),
        ("/site/docs.css", "text/css"),
        ("/site/home.css", "text/css"),
    ]:
        r = plain_client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"] == f"{kind}; charset=utf-8", path
        assert r.content, path
        if "/vendor/" in path:
            assert "immutable" in r.headers["cache-control"], path
            # The maps are not vendored: no trailing comment points at one.
            assert not re.search(rb"^(//|/\*)# sourceMappingURL=", r.content, re.M), path
    bundle = plain_client.get(f"/site/{pages.SWAGGER_UI}/swagger-ui-bundle.js").content
    assert b"SwaggerUIBundle" in bundle
    # A Range header is ignored (the whole file), never Starlette's plain-text 416/400.
    for value in ("bytes=999999999-", "nonsense"):
        r = plain_client.get("/site/docs.css", headers={"range": value})
        assert r.status_code == 200 and r.content.startswith(b"/*"), value
    missing = plain_client.get("/site/nothing.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["detail"] == "地址 /site/nothing.js 不存在（接口说明见 /docs）"


def test_vendored_versions_are_the_ones_served() -> None:
    """The directories the pages use are the ones `make vendor` wrote, with their licences."""
    for directory, package, licence in [
        (pages.SWAGGER_UI, "swagger-ui-dist", "Apache-2.0"),
        (pages.REDOC, "redoc", "MIT"),
    ]:
        base = VENDOR.parent / directory
        version = (base / "VERSION").read_text()
        assert f"package: {package} (npm registry)" in version
        assert f"version: {base.name}" in version and f"licence: {licence}" in version
        assert (base / "LICENSE").stat().st_size > 500
    readme = (VENDOR / "README.md").read_text()
    assert "`swagger-ui-dist` | 5.35.0" in readme and "`redoc` | 2.5.4" in readme


def test_pages_follow_the_root_path() -> None:
    """Behind a proxy under a prefix every reference keeps the prefix."""
    from gridgov.app import create_app

    with TestClient(create_app(), root_path="/grid") as c:
        for path in ("/", "/docs", "/redoc"):
            r = c.get(path)
            assert r.status_code == 200
            for _, _, url in links(r.text):
                assert url.startswith("/grid/") or url == "data:,", (path, url)
        assert "/grid/openapi.json" in c.get("/docs").text


def test_builtin_docs_are_off(plain_client: TestClient) -> None:
    document = plain_client.get("/openapi.json").json()
    assert not {"/", "/docs", "/redoc", "/docs/oauth2-redirect"} & set(document["paths"])
    assert plain_client.get("/docs/oauth2-redirect").status_code == 404


# -- in the browser, with every other host blocked ------------------------------------------------


@pytest.fixture(scope="module")
def site(template_db: str) -> Iterator[tuple[str, World]]:
    with serve_world(template_db) as (address, world, _):
        yield f"http://{address}", world


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch() as chromium:
        yield chromium


class Offline:
    """A browser page on a closed network: requests to any other host are aborted and noted,
    CSP violations and script errors collected."""

    def __init__(self, browser: Any, base: str) -> None:
        self.context = browser.new_context(viewport={"width": 1300, "height": 900})
        self.outside: list[str] = []
        self.errors: list[str] = []

        def route(r: Any) -> None:
            url = r.request.url
            if url.startswith((base + "/", "data:", "blob:")):
                r.continue_()
            else:
                self.outside.append(url)
                r.abort()

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.add_init_script(
            "window.__csp = []; document.addEventListener('securitypolicyviolation',"
            " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def check_clean(self) -> None:
        assert self.outside == [], self.outside
        assert self.errors == [], self.errors
        assert self.page.evaluate("window.__csp") == []

    def close(self) -> None:
        self.context.close()


def operations(base: str) -> list[tuple[str, str]]:
    document = httpx.get(f"{base}/openapi.json").json()
    return [
        (method, path)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    ]


def test_swagger_ui_offline(site: tuple[str, World], browser: Any, tmp_path: Path) -> None:
    base, _ = site
    offline = Offline(browser, base)
    page = offline.page
    try:
        page.goto(f"{base}/docs")
        expected = operations(base)
        # An operation with two tags is shown under each: at least one block per operation.
        page.wait_for_function(
            "n => document.querySelectorAll('.opblock').length >= n",
            arg=len(expected),
            timeout=90_000,
        )
        assert page.text_content(".info .title").startswith("gridgov 网格治理")
        shown = page.eval_on_selector_all(
            ".opblock",
            "els => els.map(e => [e.querySelector('.opblock-summary-method').textContent"
            ".toLowerCase(), e.querySelector('.opblock-summary-path').dataset.path])",
        )
        assert set(map(tuple, shown)) == set(expected)

        # Log in through the OAuth2 password flow, then call GET /api/v1/me ("Try it out").
        page.click(".auth-wrapper button.authorize")
        oauth = page.locator(".auth-container:has(#oauth_username)")
        oauth.locator("#oauth_username").fill("village_a")
        oauth.locator("#oauth_password").fill(PASSWORD)
        oauth.locator("button.authorize").click()
        # Logged in: the form gives way to "Authorized" and a logout button.
        page.locator(".auth-container button", has_text="Logout").wait_for(timeout=30_000)
        page.locator(".modal-ux button.close-modal").click()
        me = page.locator(".opblock:has(.opblock-summary-path[data-path='/api/v1/me'])").first
        me.locator(".opblock-summary").click()
        me.locator("button.try-out__btn").click()
        me.locator("button.execute").click()
        status = me.locator(".live-responses-table tr.response .response-col_status").first
        status.wait_for(timeout=15_000)
        assert status.text_content().strip() == "200"
        assert '"username": "village_a"' in me.locator(".live-responses-table").text_content()
        page.screenshot(path=str(tmp_path / "swagger-ui.png"))
        offline.check_clean()
    finally:
        offline.close()


def test_redoc_offline(site: tuple[str, World], browser: Any) -> None:
    base, _ = site
    offline = Offline(browser, base)
    page = offline.page
    try:
        page.goto(f"{base}/redoc")
        expected = operations(base)
        page.wait_for_function(
            "n => document.querySelectorAll('[data-section-id^=\"operation/\"]').length >= n",
            arg=len(expected),
            timeout=90_000,
        )
        assert "gridgov 网格治理" in page.text_content("h1")
        shown = page.eval_on_selector_all(
            "[data-section-id^='operation/'] h2",
            "els => els.map(e => e.textContent.trim())",
        )
        document = httpx.get(f"{base}/openapi.json").json()
        summaries = {
            op.get("summary") or op["operationId"]
            for item in document["paths"].values()
            for op in item.values()
            if isinstance(op, dict) and "operationId" in op
        }
        assert summaries <= set(shown)
        # The search box works: its index lives in a worker started from a blob: URL.
        page.fill("[role='search'] input[aria-label='Search']", "Open311")
        result = page.locator("[data-role='search:results'] li[role='menuitem']").first
        result.wait_for(timeout=30_000)
        assert "Open311" in result.text_content()
        assert any(w.url.startswith(f"blob:{base}/") for w in page.workers)
        offline.check_clean()
    finally:
        offline.close()


def test_home_page_in_the_browser(site: tuple[str, World], browser: Any) -> None:
    base, _ = site
    offline = Offline(browser, base)
    page = offline.page
    try:
        page.goto(f"{base}/")
        # The dashboard's stylesheet applies: its red header bar.
        colour = page.eval_on_selector(".top", "e => getComputedStyle(e).backgroundColor")
        assert colour == "rgb(142, 0, 0)"
        page.click("#docs a[href='/docs']")
        page.wait_for_selector(".opblock", timeout=90_000)
        page.go_back()
        page.click("#dashboard a")
        page.wait_for_selector("#login-form", state="visible")
        offline.check_clean()
    finally:
        offline.close()
