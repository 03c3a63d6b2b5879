"""Verification flags, computed by the server (DESIGN §6): each raised once and once not."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from gridgov.contacts.models import Contact
from tests.fixtures.world import COUNTY, VILLAGE_A
from tests.visits.conftest import JPEG, PNG


def flags_of(result: dict) -> list[list[str]]:
    return [item["visit"]["flags"] for item in result["items"]]


def at(minutes: float) -> str:
    """A time ``minutes`` from now (negative: in the past)."""
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def point(lon: float, lat: float) -> dict:
    return {"type": "Point", "coordinates": [lon, lat]}


def test_client_cannot_send_flags(upload, visit):
    r = upload([visit("A1-1", flags=[]), visit("A1-1", review_status="accepted")])
    assert [i["status"] for i in r["items"]] == ["rejected", "rejected"]
    assert r["items"][0]["errors"][0]["code"] == "extra_forbidden"


def test_far_from_household(upload, visit):
    far = visit("A1-1", location=point(111.02, 26.01))  # ~1 km east of the door
    near = visit("A1-1", location=point(111.0103, 26.0103))  # ~45 m
    r = upload([far, near])
    assert flags_of(r) == [["far_from_household"], []]
    assert r["items"][0]["visit"]["review_status"] == "pending"
    assert r["items"][1]["visit"]["review_status"] == "clean"


def test_accuracy_widens_the_distance_threshold_up_to_a_cap(upload, visit):
    # 200 m away: beyond 150 m, within 150 m + 60 m of reported accuracy
    lat_200m = 26.01 + 200 / 111_320
    r = upload(
        [
            visit("A1-1", location=point(111.01, lat_200m), accuracy_m=60),
            visit("A1-1", location=point(111.01, lat_200m), accuracy_m=5),
        ]
    )
    assert flags_of(r) == [[], ["far_from_household"]]


def test_poor_accuracy(upload, visit):
    r = upload(
        [
            visit("A1-1", accuracy_m=500),
            visit("A1-1", accuracy_m=None),
            visit("A1-1", accuracy_m=50),
        ]
    )
    assert flags_of(r) == [["poor_accuracy"], ["poor_accuracy"], []]


def test_no_location_for_a_door_visit(upload, visit):
    r = upload(
        [
            visit("A1-1", location=None, accuracy_m=None),
            visit("A1-1", location=None, accuracy_m=None, method="phone"),
        ]
    )
    assert flags_of(r) == [["no_location"], []]


def test_visited_at_in_the_future(upload, visit):
    r = upload([visit("A1-1", visited_at=at(24 * 60)), visit("A1-2", visited_at=at(5))])
    assert flags_of(r) == [["future_visited_at"], []]


def test_visited_long_before_upload(upload, visit):
    r = upload(
        [visit("A1-1", visited_at=at(-30 * 24 * 60)), visit("A1-2", visited_at=at(-6 * 24 * 60))]
    )
    assert flags_of(r) == [["late_upload"], []]


def test_impossible_speed_between_consecutive_visits(upload, visit):
    first = upload([visit("A1-1", visited_at=at(-300))])
    assert flags_of(first) == [[]]
    # A1-4 is ~8 km from A1-1: one minute later is 500 km/h; two hours later is fine.
    r = upload([visit("A1-4", visited_at=at(-299)), visit("A1-4", visited_at=at(-120))])
    assert flags_of(r)[0] == ["impossible_speed"]
    assert flags_of(r)[1] == []


def test_speed_check_looks_at_the_next_visit_too(upload, visit):
    """A visit uploaded late that sits just before a stored one far away is flagged as well."""
    upload([visit("A1-4", visited_at=at(-200))])
    r = upload([visit("A1-1", visited_at=at(-201))])
    assert flags_of(r) == [["impossible_speed"]]


def test_burst_of_visits(upload, visit):
    five = [visit("A1-1", visited_at=at(-100 + 2 * i)) for i in range(5)]
    r = upload(five)
    assert all(f == ["burst"] for f in flags_of(r)), flags_of(r)


def test_no_burst_below_the_count(upload, visit):
    four = [visit("A1-1", visited_at=at(-100 + 2 * i)) for i in range(4)]
    assert flags_of(upload(four)) == [[]] * 4


def test_same_photo_on_two_visits(client, as_user, upload, visit, blob_dir):
    headers = {**as_user("grid_a1"), "Content-Type": "application/octet-stream"}
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for photo, data in ((a, JPEG), (b, JPEG), (c, PNG)):  # a and b: the same picture
        assert client.put(f"/api/v1/attachments/{photo}", content=data, headers=headers).is_success
    first = upload([visit("A1-1", attachment_ids=[str(a)])])
    assert flags_of(first) == [[]]
    other = upload([visit("A1-2", attachment_ids=[str(c)])])
    assert flags_of(other) == [[]]
    reused = upload([visit("A1-3", attachment_ids=[str(b)])])
    assert flags_of(reused) == [["photo_reused"]]
    earlier = client.get(
        f"/api/v1/visits/{first['items'][0]['visit']['id']}", headers=as_user("grid_a1")
    ).json()
    assert earlier["flags"] == ["photo_reused"] and earlier["review_status"] == "pending"
    untouched = client.get(
        f"/api/v1/visits/{other['items'][0]['visit']['id']}", headers=as_user("grid_a1")
    ).json()
    assert untouched["flags"] == []


def test_photo_reuse_found_when_the_photo_arrives_after_the_visits(
    client, as_user, upload, visit, blob_dir
):
    photo = uuid.uuid4()
    r = upload(
        [visit("A1-1", attachment_ids=[str(photo)]), visit("A1-2", attachment_ids=[str(photo)])]
    )
    assert flags_of(r) == [[], []]  # not known yet: the photo is missing
    headers = {**as_user("grid_a1"), "Content-Type": "application/octet-stream"}
    assert (
        client.put(f"/api/v1/attachments/{photo}", content=JPEG, headers=headers).status_code == 201
    )
    listed = client.get("/api/v1/visits?flag=photo_reused", headers=as_user("grid_a1")).json()
    assert len(listed["items"]) == 2


def test_household_not_assigned_to_the_member(upload, visit, linked_member, session, world):
    r = upload([visit("A1-1")])
    assert flags_of(r) == [["not_assigned"]]
    assert r["items"][0]["visit"]["member_id"] == linked_member


def test_household_assigned_to_the_member(upload, visit, linked_member, session, world):
    session.add(
        Contact(
            county_code=COUNTY,
            village_id=world.units[VILLAGE_A],
            member_id=linked_member,
            household_id=world.households["A1-2"],
            role="primary",
            valid_from=date(2020, 1, 1),
        )
    )
    session.commit()
    r = upload([visit("A1-2"), visit("A1-1")])
    assert flags_of(r) == [[], ["not_assigned"]]


@pytest.mark.parametrize("user", ["village_a", "county"])
def test_users_without_a_member_are_not_checked_for_assignment(upload, visit, user):
    assert flags_of(upload([visit("A1-1")], user=user)) == [[]]
