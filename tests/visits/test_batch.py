"""POST /api/v1/visits/batch: every outcome, each item on its own; GET /api/v1/visits."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from gridgov.audit.models import AuditEntry
from gridgov.visits.models import Visit
from tests.fixtures.world import GRID_A1


def test_anonymous_is_401_and_auditor_403(client, as_user, visit):
    r = client.post("/api/v1/visits/batch", json={"visits": [visit()]})
    assert r.status_code == 401
    r = client.post("/api/v1/visits/batch", json={"visits": [visit()]}, headers=as_user("auditor"))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_created_then_duplicate_returns_the_stored_record(upload, visit, session, world):
    item = visit("A1-1", needs=["希望修缮屋顶"])
    first = upload([item])
    assert (first["created"], first["duplicate"], first["rejected"]) == (1, 0, 0)
    (outcome,) = first["items"]
    assert outcome["status"] == "created" and outcome["index"] == 0
    stored = outcome["visit"]
    assert stored["client_uuid"] == item["client_uuid"]
    assert stored["household_id"] == world.households["A1-1"]
    assert stored["grid_id"] == world.grids[GRID_A1] and stored["user_id"] == world.users["grid_a1"]
    assert stored["needs"] == ["希望修缮屋顶"] and stored["flags"] == []
    assert stored["review_status"] == "clean"
    assert stored["location"]["coordinates"] == [111.01, 26.01]

    again = upload([item])
    assert again["duplicate"] == 1 and again["created"] == 0
    assert again["items"][0]["status"] == "duplicate"
    assert again["items"][0]["visit"] == stored
    count = session.scalar(
        select(func.count()).where(Visit.client_uuid == uuid.UUID(item["client_uuid"]))
    )
    assert count == 1
    audit = session.scalar(
        select(func.count()).where(AuditEntry.entity == "visit", AuditEntry.action == "upload")
    )
    assert audit == 1  # the duplicate wrote nothing


def test_same_uuid_different_content_is_conflict(upload, visit):
    item = visit("A1-1")
    upload([item])
    r = upload([{**item, "notes": "改过的内容"}])
    (outcome,) = r["items"]
    assert outcome["status"] == "conflict" and outcome["visit"] is None
    assert outcome["errors"][0]["code"] == "uuid_conflict"
    assert r["conflict"] == 1


def test_same_visit_in_another_coordinate_system_is_a_duplicate(upload, visit):
    from gridgov.geo import CoordSys, convert

    item = visit("A1-2")
    upload([item])
    lon, lat = convert(111.02, 26.02, CoordSys.wgs84, CoordSys.gcj02)
    gcj = {**item, "location": {"type": "Point", "coordinates": [lon, lat]}}
    r = upload([gcj], coord_sys="gcj02")
    assert r["items"][0]["status"] == "duplicate", r


def test_bad_items_are_rejected_alone(upload, visit, world, session):
    good = visit("A1-1")
    out_of_scope = visit("B1-1")  # 西村: not in grid_a1's grid
    no_such = visit("A1-2", household_id=999_999_999)
    naive_time = visit("A1-3", visited_at="2026-11-20T10:00:00")  # no offset
    bad_point = visit("A1-4", location={"type": "Point", "coordinates": [26.01, 111.01]})
    ancient = visit("A1-1", visited_at="0001-01-01T00:00:00+14:00")
    r = upload([good, out_of_scope, "not an object", no_such, naive_time, bad_point, ancient])
    statuses = [i["status"] for i in r["items"]]
    assert statuses == ["created"] + ["rejected"] * 6
    assert r["created"] == 1 and r["rejected"] == 6
    by_index = {i["index"]: i for i in r["items"]}
    assert by_index[1]["errors"][0]["code"] == "household_not_found"
    assert by_index[1]["errors"][0]["loc"] == ["body", "visits", 1, "household_id"]
    assert by_index[1]["client_uuid"] == out_of_scope["client_uuid"]
    assert by_index[2]["client_uuid"] is None
    assert by_index[3]["errors"][0]["code"] == "household_not_found"
    assert by_index[4]["errors"][0]["loc"][-1] == "visited_at"
    assert by_index[5]["errors"][0]["loc"][-1] == "location"
    assert by_index[6]["errors"][0]["code"] == "visited_at_out_of_range"
    for item in r["items"][1:]:
        assert all(e["msg"] and e["code"] for e in item["errors"])
    assert session.scalar(select(func.count()).select_from(Visit)) == 1


def test_repeated_uuid_inside_one_batch(upload, visit):
    item = visit("A1-1")
    r = upload([item, item, {**item, "notes": "不同"}])
    assert [i["status"] for i in r["items"]] == ["created", "duplicate", "conflict"]
    assert r["items"][1]["visit"]["id"] == r["items"][0]["visit"]["id"]


def test_batch_size_limits(client, as_user, visit):
    headers = as_user("grid_a1")
    too_many = [visit() for _ in range(501)]
    r = client.post("/api/v1/visits/batch", json={"visits": too_many}, headers=headers)
    assert r.status_code == 422
    r = client.post("/api/v1/visits/batch", json={"visits": []}, headers=headers)
    assert r.status_code == 422


def test_a_full_batch_of_500(upload, visit, session):
    # One household, an hour apart going back three weeks: the point is size, not the checks.
    items = [visit("A1-1") for _ in range(500)]
    r = upload(items)
    assert r["created"] == 500
    assert session.scalar(select(func.count()).select_from(Visit)) == 500


def test_visit_shows_missing_photos(upload, visit):
    photo = str(uuid.uuid4())
    r = upload([visit("A1-1", attachment_ids=[photo])])
    stored = r["items"][0]["visit"]
    assert stored["attachment_ids"] == [photo] and stored["missing_attachments"] == [photo]


def test_list_is_scoped_and_paged(client, as_user, upload, visit, world):
    items = [visit("A1-1"), visit("A1-2"), visit("A1-3")]
    upload(items)
    upload([visit("B1-1")], user="village_b")
    grid = as_user("grid_a1")
    page = client.get("/api/v1/visits?limit=2", headers=grid).json()
    assert len(page["items"]) == 2 and page["next"]
    rest = client.get(page["next"], headers=grid).json()
    assert rest["next"] is None
    seen = [v["client_uuid"] for v in page["items"] + rest["items"]]
    # newest first: the helper spaces visits an hour apart going back in time
    assert seen == [i["client_uuid"] for i in items]
    village_b = client.get("/api/v1/visits", headers=as_user("village_b")).json()
    assert [v["household_id"] for v in village_b["items"]] == [world.households["B1-1"]]
    by_household = client.get(
        f"/api/v1/visits?household_id={world.households['A1-2']}", headers=grid
    ).json()
    assert [v["client_uuid"] for v in by_household["items"]] == [items[1]["client_uuid"]]
    one = by_household["items"][0]
    assert client.get(f"/api/v1/visits/{one['id']}", headers=grid).json()["id"] == one["id"]
    r = client.get(f"/api/v1/visits/{one['id']}", headers=as_user("village_b"))
    assert r.status_code == 404


def test_bad_cursor_is_422(client, as_user):
    r = client.get("/api/v1/visits?cursor=garbage", headers=as_user("grid_a1"))
    assert r.status_code == 422
