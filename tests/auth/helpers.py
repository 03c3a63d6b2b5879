"""Small helpers shared by the auth tests."""

from __future__ import annotations

from typing import Any

PROBLEM = "application/problem+json"


def walk(client: Any, url: str, headers: dict[str, str], *, max_pages: int = 100) -> list[dict]:
    """Every item of a keyset-paginated list, following ``next`` links to the end."""
    items: list[dict] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        r = client.get(next_url, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        next_url = body["next"]
        pages += 1
        assert pages <= max_pages, f"{url}: more than {max_pages} pages (a cursor loop?)"
    return items


def ids(items: list[dict], key: str = "id") -> list[Any]:
    return [i[key] for i in items]


def assert_problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body = r.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["type"] and body["title"], body
    return body
