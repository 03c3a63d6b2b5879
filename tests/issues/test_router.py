"""事件 over HTTP: access, idempotent reporting, grid derivation, duplicates, transitions."""

from __future__ import annotations

import uuid

from tests.auth.helpers import assert_problem, walk
from tests.fixtures.world import GRID_A1, GRID_A2, VILLAGE_A
from tests.issues.conftest import body


def test_anonymous_is_401_and_out_of_scope_is_404(client, as_user) -> None:
    assert_problem(client.post("/api/v1/issues", json=body()), 401, "unauthenticated")
    r = client.post("/api/v1/issues", json=body(), headers=as_user("grid_a1"))
    assert r.status_code == 201, r.text
    issue_id = r.json()["id"]
    assert_problem(
        client.get(f"/api/v1/issues/{issue_id}", headers=as_user("village_b")), 404, "not_found"
    )
    move = {"action": "reject", "version": 1, "note": "不受理"}
    assert_problem(
        client.post(
            f"/api/v1/issues/{issue_id}/transitions", json=move, headers=as_user("village_b")
        ),
        404,
        "not_found",
    )
    listed = client.get("/api/v1/issues", headers=as_user("village_b")).json()["items"]
    assert issue_id not in [i["id"] for i in listed]
    assert client.get(f"/api/v1/issues/{issue_id}", headers=as_user("town_a")).status_code == 200


def test_report_is_idempotent_by_client_uuid(client, as_user) -> None:
    headers = as_user("grid_a1")
    payload = body()
    first = client.post("/api/v1/issues", json=payload, headers=headers)
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/issues", json=payload, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    # The same UUID and content from another account is not a resubmission.
    assert_problem(
        client.post("/api/v1/issues", json=payload, headers=as_user("village_a")),
        409,
        "client_uuid_reused",
    )
    changed = {**payload, "description": "另一件事"}
    assert_problem(
        client.post("/api/v1/issues", json=changed, headers=headers), 409, "client_uuid_reused"
    )
    got = first.json()
    assert (got["state"], got["level"], got["grid_code"], got["village_code"]) == (
        "REPORTED",
        1,
        GRID_A1,
        VILLAGE_A,
    )
    assert got["location"] == [111.01, 26.01]
    assert [e["action"] for e in got["timeline"]] == ["report"]
    assert got["allowed_actions"] == ["self_resolve", "cancel", "escalate"]


def test_the_document_states_both_answers_of_a_report(client) -> None:
    """201 for a new issue, 200 for a resubmission (the stored one): both in the OpenAPI
    document, with the same body, so clients and schemathesis expect the 200 (the stateful run
    found it undocumented)."""
    responses = client.get("/openapi.json").json()["paths"]["/api/v1/issues"]["post"]["responses"]
    assert {"200", "201"} <= set(responses)
    schema = {"$ref": "#/components/schemas/IssueRead"}
    for status in ("200", "201"):
        assert responses[status]["content"]["application/json"]["schema"] == schema
    assert "已存" in responses["200"]["description"]


def test_grid_at_a_boundary_is_derived_and_may_be_corrected(client, as_user) -> None:
    headers = as_user("village_a")
    # On the line between 东村-001 and 东村-002: covered by both, the lower code is taken.
    on_line = client.post("/api/v1/issues", json=body(lon=111.05, lat=26.05), headers=headers)
    assert on_line.status_code == 201 and on_line.json()["grid_code"] == GRID_A1
    # 10 m west of the line, the reporter says it belongs to 东村-002.
    corrected = client.post(
        "/api/v1/issues", json=body(lon=111.0499, lat=26.05, grid_code=GRID_A2), headers=headers
    )
    assert corrected.status_code == 201 and corrected.json()["grid_code"] == GRID_A2
    # A grid kilometres away is not a correction.
    far = client.post(
        "/api/v1/issues", json=body(lon=111.01, lat=26.05, grid_code=GRID_A2), headers=headers
    )
    assert_problem(far, 422, "grid_not_near_location")
    # A grid member reports only inside their own grid.
    other = client.post(
        "/api/v1/issues", json=body(lon=111.07, lat=26.05), headers=as_user("grid_a1")
    )
    assert_problem(other, 422, "location_outside_scope")
    outside = client.post("/api/v1/issues", json=body(lon=112.5, lat=26.05), headers=headers)
    assert_problem(outside, 422, "location_outside_county")


def test_point_in_no_grid_is_kept_and_flagged(client, as_user) -> None:
    r = client.post("/api/v1/issues", json=body(lon=111.18, lat=26.05), headers=as_user("county"))
    assert r.status_code == 201, r.text
    assert r.json()["grid_code"] is None and r.json()["flags"] == ["outside_grid"]


def test_duplicates_are_linked_not_merged(client, as_user) -> None:
    headers = as_user("grid_a1")
    first = client.post("/api/v1/issues", json=body(), headers=headers).json()
    # ~11 m north-east, same category: linked to the first.
    near = client.post(
        "/api/v1/issues", json=body(lon=111.0001, lat=26.0101), headers=headers
    ).json()
    assert near["duplicate_ids"] == []  # 0.0099° west is ~1 km: not near
    near = client.post(
        "/api/v1/issues", json=body(lon=111.01007, lat=26.01007), headers=headers
    ).json()
    assert near["duplicate_ids"] == [first["id"]] and near["state"] == "REPORTED"
    other_kind = client.post(
        "/api/v1/issues",
        json=body(lon=111.01007, lat=26.01007, category_code="0400"),
        headers=headers,
    ).json()
    assert other_kind["duplicate_ids"] == []
    # ~80 m away: outside the 50 m radius.
    far = client.post("/api/v1/issues", json=body(lon=111.0108, lat=26.01), headers=headers).json()
    assert far["duplicate_ids"] == []


def test_photo_required_category(client, as_user) -> None:
    headers = as_user("grid_a1")
    r = client.post("/api/v1/issues", json=body(category_code="0201"), headers=headers)
    body_ = assert_problem(r, 422, "photo_required")
    assert body_["errors"][0]["loc"] == ["body", "photo_ids"]
    ok = body(category_code="0201", photo_ids=[str(uuid.uuid4())])
    assert client.post("/api/v1/issues", json=ok, headers=headers).status_code == 201
    unknown = client.post("/api/v1/issues", json=body(category_code="0199"), headers=headers)
    assert_problem(unknown, 422, "unknown_category")


def test_forbidden_transition_lists_the_allowed_ones(client, as_user) -> None:
    issue = client.post("/api/v1/issues", json=body(), headers=as_user("grid_a1")).json()
    url = f"/api/v1/issues/{issue['id']}/transitions"
    r = client.post(url, json={"action": "close", "version": 1}, headers=as_user("village_a"))
    problem = assert_problem(r, 409, "transition_not_allowed")
    assert problem["state"] == "REPORTED"
    assert problem["allowed_actions"] == [
        "accept",
        "self_resolve",
        "reject",
        "merge",
        "cancel",
        "escalate",
    ]
    r = client.post(url, json={"action": "reject", "version": 1}, headers=as_user("village_a"))
    assert_problem(r, 422, "reason_required")
    photo = str(uuid.uuid4())
    accept = {"action": "accept", "version": 1, "note": "立案", "photo_ids": [photo]}
    r = client.post(url, json=accept, headers=as_user("village_a"))
    assert r.status_code == 200 and r.json()["state"] == "ACCEPTED" and r.json()["version"] == 2
    entry = r.json()["timeline"][-1]
    assert (entry["action"], entry["from_state"], entry["to_state"], entry["note"]) == (
        "accept",
        "REPORTED",
        "ACCEPTED",
        "立案",
    )
    assert entry["photo_ids"] == [photo] and entry["user_id"] is not None
    r = client.post(url, json={"action": "assign", "version": 1}, headers=as_user("village_a"))
    assert_problem(r, 409, "version_conflict")
    # Read-only roles never reach the workflow.
    r = client.post(url, json={"action": "assign", "version": 2}, headers=as_user("auditor"))
    assert_problem(r, 403, "forbidden")


def test_queue_and_categories(client, as_user) -> None:
    mine = client.post("/api/v1/issues", json=body(), headers=as_user("grid_a1")).json()
    queue = client.get("/api/v1/issues?mine=true", headers=as_user("grid_a1")).json()["items"]
    assert mine["id"] in [i["id"] for i in queue]
    village_queue = client.get("/api/v1/issues?mine=true", headers=as_user("village_a")).json()
    assert mine["id"] not in [i["id"] for i in village_queue["items"]]  # still at grid level
    more = [
        client.post("/api/v1/issues", json=body(), headers=as_user("grid_a1")).json()["id"]
        for _ in range(4)
    ]
    pages = walk(client, "/api/v1/issues?limit=2&state=REPORTED", as_user("county"))
    assert [i["id"] for i in pages] == sorted([mine["id"], *more], reverse=True)
    cats = client.get("/api/v1/issues/categories", headers=as_user("auditor")).json()
    by_code = {c["code"]: c for c in cats}
    assert by_code["0201"]["photo_required"] and by_code["0201"]["public"]
    assert {c[:2] for c in by_code} == {f"{i:02d}" for i in range(1, 11)} | {"99"}
