"""GET /api/v1/me/due: the caller's households due or overdue, most overdue first."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from gridgov.contacts.models import Contact
from gridgov.visits.models import Visit
from tests.fixtures.world import COUNTY, VILLAGE_A


def visited(session, world, household: str, days_ago: float, status: str = "clean") -> None:
    """A stored visit (written directly: the checks would flag back-dated uploads)."""
    session.add(
        Visit(
            client_uuid=uuid.uuid4(),
            content_hash="0" * 64,
            county_code=COUNTY,
            village_id=world.units[VILLAGE_A],
            household_id=world.households[household],
            user_id=world.users["grid_a1"],
            visited_at=datetime.now(UTC) - timedelta(days=days_ago),
            method="door",
            review_status=status,
            flags=[] if status == "clean" else ["far_from_household"],
        )
    )
    session.commit()


def due(client, as_user, user="grid_a1", **params):
    r = client.get("/api/v1/me/due", params=params, headers=as_user(user))
    assert r.status_code == 200, r.text
    return r.json()


def test_order_is_most_overdue_first(client, as_user, session, world):
    visited(session, world, "A1-1", 100)  # 低保户, every 90 days: 10 days overdue
    visited(session, world, "A1-3", 10)  # 高风险老人, every 7 days: 3 days overdue
    visited(session, world, "A1-2", 1)  # ordinary, every 180 days: not due
    # A1-4 was never visited: due since it was registered (today)
    body = due(client, as_user)
    ids = [d["household_id"] for d in body]
    assert ids == [world.households[k] for k in ("A1-1", "A1-3", "A1-4")]
    assert [d["interval_days"] for d in body] == [90, 7, 180]
    assert [d["overdue_days"] for d in body] == [10, 3, 0]
    assert body[2]["last_visited_at"] is None


def test_a_pending_visit_does_not_count_an_accepted_one_does(client, as_user, session, world):
    visited(session, world, "A1-2", 1, status="pending")
    assert world.households["A1-2"] in [d["household_id"] for d in due(client, as_user)]
    visited(session, world, "A1-2", 1, status="accepted")
    assert world.households["A1-2"] not in [d["household_id"] for d in due(client, as_user)]


def test_within_days_lists_households_soon_due(client, as_user, session, world):
    visited(session, world, "A1-3", 5)  # due in 2 days
    assert world.households["A1-3"] not in [d["household_id"] for d in due(client, as_user)]
    soon = due(client, as_user, within_days=3)
    assert world.households["A1-3"] in [d["household_id"] for d in soon]


def test_distance_from_a_given_position(client, as_user, world):
    body = due(client, as_user, lon=111.01, lat=26.01)
    by_id = {d["household_id"]: d for d in body}
    assert by_id[world.households["A1-1"]]["distance_m"] < 1
    assert 1400 < by_id[world.households["A1-2"]]["distance_m"] < 1600
    assert all(d["distance_m"] is None for d in due(client, as_user))
    r = client.get("/api/v1/me/due?lon=111.01", headers=as_user("grid_a1"))
    assert r.status_code == 422


def test_a_linked_member_sees_only_their_contacts(client, as_user, session, world, linked_member):
    assert due(client, as_user) == []
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
    assert [d["household_id"] for d in due(client, as_user)] == [world.households["A1-2"]]


def test_county_overrides_intervals(client, as_user, session, world, monkeypatch):
    from gridgov.config import get_settings

    visited(session, world, "A1-1", 40)  # 低保户: 90 days by default, not due
    assert world.households["A1-1"] not in [d["household_id"] for d in due(client, as_user)]
    monkeypatch.setattr(get_settings().visits, "intervals", {COUNTY: {"低保户": 30}})
    body = {d["household_id"]: d for d in due(client, as_user)}
    assert body[world.households["A1-1"]]["interval_days"] == 30


def test_grid_member_sees_only_their_grid(client, as_user, world):
    ids = {d["household_id"] for d in due(client, as_user)}
    assert ids == {world.households[k] for k in ("A1-1", "A1-2", "A1-3", "A1-4")}
    assert client.get("/api/v1/me/due", headers=as_user("auditor")).status_code == 403
