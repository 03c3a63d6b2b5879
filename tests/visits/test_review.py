"""POST /api/v1/visits/{id}/review: accept or reject, with a reason, audited."""

from __future__ import annotations

from sqlalchemy import select

from gridgov.audit.models import AuditEntry


def flagged(upload, visit) -> dict:
    far = {"type": "Point", "coordinates": [111.02, 26.01]}
    stored = upload([visit("A1-1", location=far)])["items"][0]["visit"]
    assert stored["review_status"] == "pending"
    return stored


def review(client, headers, visit_id, **body):
    return client.post(f"/api/v1/visits/{visit_id}/review", json=body, headers=headers)


def test_accept_is_recorded_and_audited(client, as_user, upload, visit, session):
    stored = flagged(upload, visit)
    r = review(client, as_user("village_a"), stored["id"], decision="accept", reason="电话核实属实")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["review_status"] == "accepted" and body["review_reason"] == "电话核实属实"
    assert body["flags"] == ["far_from_household"]  # the flag stays; the decision is recorded
    entry = session.scalar(
        select(AuditEntry).where(
            AuditEntry.entity == "visit", AuditEntry.entity_id == str(stored["id"])
        )
    )
    assert entry.action == "review_accept" and entry.username == "village_a"
    assert entry.before["review_status"] == "pending"
    assert entry.after["review_status"] == "accepted"


def test_reject(client, as_user, upload, visit):
    stored = flagged(upload, visit)
    r = review(client, as_user("town_a"), stored["id"], decision="reject", reason="位置不符")
    assert r.status_code == 200 and r.json()["review_status"] == "rejected"
    pending = client.get("/api/v1/visits?review_status=pending", headers=as_user("grid_a1"))
    assert pending.json()["items"] == []


def test_reason_is_required(client, as_user, upload, visit):
    stored = flagged(upload, visit)
    r = review(client, as_user("village_a"), stored["id"], decision="accept", reason="")
    assert r.status_code == 422


def test_out_of_scope_is_404_and_grid_member_403(client, as_user, upload, visit):
    stored = flagged(upload, visit)
    r = review(client, as_user("village_b"), stored["id"], decision="accept", reason="x")
    assert r.status_code == 404
    r = review(client, as_user("grid_a1"), stored["id"], decision="accept", reason="x")
    assert r.status_code == 403


def test_nobody_reviews_their_own_visit(client, as_user, upload, visit):
    stored = upload([visit("A1-1", location=None, accuracy_m=None)], user="county")
    visit_id = stored["items"][0]["visit"]["id"]
    r = review(client, as_user("county"), visit_id, decision="accept", reason="本人")
    assert r.status_code == 403 and r.json()["code"] == "own_visit"
