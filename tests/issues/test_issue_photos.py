"""Issue photos are real attachments: a report (or a transition) may name photo UUIDs before
the phone uploads them; reads list the ones still missing; ``GET /api/v1/attachments/{uuid}``
serves a photo to whoever has an issue (or a timeline entry) referring to it in scope."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.auth.helpers import assert_problem
from tests.issues.conftest import body
from tests.visits.conftest import JPEG, PNG


@pytest.fixture(autouse=True)
def blob_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from gridgov.config import get_settings

    monkeypatch.setattr(get_settings(), "data_dir", str(tmp_path))
    return tmp_path / "attachments"


def put(client, headers, photo: uuid.UUID, data: bytes) -> None:
    r = client.put(
        f"/api/v1/attachments/{photo}",
        content=data,
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert r.status_code in (200, 201), r.text


def test_missing_attachments_before_and_after_upload(client, as_user) -> None:
    grid, village = as_user("grid_a1"), as_user("village_a")
    first, second, later = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # 0201 消防安全隐患 requires a photo: UUIDs not uploaded yet still satisfy it.
    payload = body(category_code="0201", photo_ids=[str(first), str(second)])
    r = client.post("/api/v1/issues", json=payload, headers=grid)
    assert r.status_code == 201, r.text
    issue = r.json()
    assert issue["photo_ids"] == [str(first), str(second)]
    assert issue["missing_attachments"] == [str(first), str(second)]
    assert issue["timeline"][0]["missing_attachments"] == []  # the report's photos are the issue's
    # A transition's photos count too, after the report's.
    move = {"action": "accept", "version": issue["version"], "photo_ids": [str(later)]}
    r = client.post(f"/api/v1/issues/{issue['id']}/transitions", json=move, headers=village)
    assert r.status_code == 200, r.text
    assert r.json()["missing_attachments"] == [str(first), str(second), str(later)]
    assert r.json()["timeline"][1]["missing_attachments"] == [str(later)]

    put(client, grid, second, PNG)
    put(client, village, later, JPEG)
    got = client.get(f"/api/v1/issues/{issue['id']}", headers=grid).json()
    assert got["missing_attachments"] == [str(first)]
    assert got["timeline"][1]["missing_attachments"] == []
    listed = client.get("/api/v1/issues", headers=grid).json()["items"]
    assert [i["missing_attachments"] for i in listed if i["id"] == issue["id"]] == [[str(first)]]
    put(client, grid, first, JPEG)
    got = client.get(f"/api/v1/issues/{issue['id']}", headers=village).json()
    assert got["missing_attachments"] == []


def test_photo_required_still_needs_a_uuid(client, as_user) -> None:
    r = client.post("/api/v1/issues", json=body(category_code="0201"), headers=as_user("grid_a1"))
    assert_problem(r, 422, "photo_required")


def test_attachment_served_through_an_issue_in_scope(client, as_user) -> None:
    grid, village = as_user("grid_a1"), as_user("village_a")
    photo, unused = uuid.uuid4(), uuid.uuid4()
    put(client, grid, photo, PNG)
    put(client, grid, unused, JPEG)
    # Before any issue refers to it, only the uploader sees it.
    assert_problem(client.get(f"/api/v1/attachments/{photo}", headers=village), 404, "not_found")
    r = client.post(
        "/api/v1/issues", json=body(category_code="0201", photo_ids=[str(photo)]), headers=grid
    )
    assert r.status_code == 201, r.text
    for user in ("village_a", "town_a", "county", "auditor"):
        got = client.get(f"/api/v1/attachments/{photo}", headers=as_user(user))
        assert got.status_code == 200, (user, got.text)
        assert got.content == PNG and got.headers["content-type"] == "image/png"
    # 西村's admin and 乙乡's villages do not see 东村's issue, nor its photo.
    assert_problem(
        client.get(f"/api/v1/attachments/{photo}", headers=as_user("village_b")), 404, "not_found"
    )
    # A photo no issue refers to stays the uploader's.
    assert_problem(client.get(f"/api/v1/attachments/{unused}", headers=village), 404, "not_found")


def test_attachment_served_through_a_timeline_entry(client, as_user) -> None:
    grid, village = as_user("grid_a1"), as_user("village_a")
    r = client.post("/api/v1/issues", json=body(), headers=grid)
    assert r.status_code == 201, r.text
    issue = r.json()
    photo = uuid.uuid4()
    put(client, village, photo, JPEG)
    assert_problem(client.get(f"/api/v1/attachments/{photo}", headers=grid), 404, "not_found")
    move = {"action": "accept", "version": issue["version"], "photo_ids": [str(photo)]}
    r = client.post(f"/api/v1/issues/{issue['id']}/transitions", json=move, headers=village)
    assert r.status_code == 200, r.text
    got = client.get(f"/api/v1/attachments/{photo}", headers=grid)
    assert got.status_code == 200 and got.content == JPEG
    assert_problem(
        client.get(f"/api/v1/attachments/{photo}", headers=as_user("village_b")), 404, "not_found"
    )
