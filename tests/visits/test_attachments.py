"""PUT/GET /api/v1/attachments/{uuid}: magic numbers, size, hash, idempotence, scope."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from tests.visits.conftest import JPEG, PNG, WEBP


def put(client, headers, data, attachment_id=None):
    attachment_id = attachment_id or uuid.uuid4()
    return client.put(
        f"/api/v1/attachments/{attachment_id}",
        content=data,
        headers={**headers, "Content-Type": "application/octet-stream"},
    )


@pytest.mark.parametrize(
    ("data", "media_type"),
    [(JPEG, "image/jpeg"), (PNG, "image/png"), (WEBP, "image/webp")],
    ids=["jpeg", "png", "webp"],
)
def test_each_image_type_is_stored_by_hash(client, as_user, blob_dir, data, media_type):
    r = put(client, as_user("grid_a1"), data)
    assert r.status_code == 201, r.text
    body = r.json()
    digest = hashlib.sha256(data).hexdigest()
    assert body["media_type"] == media_type and body["sha256"] == digest
    assert body["size"] == len(data)
    assert (blob_dir / digest[:2] / digest[2:4] / digest).read_bytes() == data


def test_same_uuid_same_bytes_is_a_no_op_other_bytes_a_conflict(client, as_user, blob_dir):
    headers = as_user("grid_a1")
    attachment_id = uuid.uuid4()
    assert put(client, headers, JPEG, attachment_id).status_code == 201
    again = put(client, headers, JPEG, attachment_id)
    assert again.status_code == 200 and again.json()["id"] == str(attachment_id)
    other = put(client, headers, PNG, attachment_id)
    assert other.status_code == 409 and other.json()["code"] == "attachment_conflict"


@pytest.mark.parametrize(
    "data",
    [b"", b"GIF89a" + b"\x00" * 20, b"%PDF-1.7 ...", b"RIFF\x00\x00\x00\x00WAVE"],
    ids=["empty", "gif", "pdf", "wav"],
)
def test_other_content_is_415(client, as_user, blob_dir, data):
    r = put(client, as_user("grid_a1"), data)
    assert r.status_code == 415 and r.json()["code"] == "unsupported_image"
    assert not blob_dir.exists() or not any(blob_dir.rglob("*"))


def test_too_large_is_413(client, as_user, blob_dir, monkeypatch):
    from gridgov.config import get_settings

    monkeypatch.setattr(get_settings().visits, "attachment_max_bytes", 2048)
    r = put(client, as_user("grid_a1"), JPEG + b"\x00" * 2048)
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert put(client, as_user("grid_a1"), JPEG).status_code == 201


def test_visit_before_photo_then_photo_arrives(client, as_user, upload, visit, blob_dir):
    photo = uuid.uuid4()
    stored = upload([visit("A1-1", attachment_ids=[str(photo)])])["items"][0]["visit"]
    assert stored["missing_attachments"] == [str(photo)]
    assert put(client, as_user("grid_a1"), JPEG, photo).status_code == 201
    now = client.get(f"/api/v1/visits/{stored['id']}", headers=as_user("grid_a1")).json()
    assert now["missing_attachments"] == []


def test_get_is_scoped(client, as_user, upload, visit, blob_dir):
    photo = uuid.uuid4()
    put(client, as_user("grid_a1"), PNG, photo)
    # the uploader sees it at once; others only once a visit in their scope refers to it
    r = client.get(f"/api/v1/attachments/{photo}", headers=as_user("grid_a1"))
    assert r.status_code == 200 and r.content == PNG
    assert r.headers["content-type"] == "image/png"
    assert (
        client.get(f"/api/v1/attachments/{photo}", headers=as_user("village_a")).status_code == 404
    )
    upload([visit("A1-1", attachment_ids=[str(photo)])])
    assert (
        client.get(f"/api/v1/attachments/{photo}", headers=as_user("village_a")).status_code == 200
    )
    assert (
        client.get(f"/api/v1/attachments/{photo}", headers=as_user("village_b")).status_code == 404
    )
    assert (
        client.get(f"/api/v1/attachments/{uuid.uuid4()}", headers=as_user("grid_a1")).status_code
        == 404
    )
