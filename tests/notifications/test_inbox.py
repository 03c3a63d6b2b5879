"""The in-app inbox over HTTP: my reminders newest first (keyset pages, unread filter and count),
mark one read (someone else's: 404), mark all read; and a job pass landing in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from gridgov.issues.models import Issue
from gridgov.notifications import service as notifications
from gridgov.notifications.models import Notification
from tests.auth.helpers import assert_problem
from tests.fixtures.world import COUNTY, World
from tests.issues.conftest import body, cst

URL = "/api/v1/me/notifications"


def _seed(session: Session, world: World, username: str, count: int) -> list[int]:
    """``count`` reminders for ``username``, oldest first; their ids."""
    base = datetime(2026, 1, 5, 1, tzinfo=UTC)
    rows = [
        Notification(
            user_id=world.users[username],
            county_code=COUNTY,
            kind="due_soon",
            entity="issue",
            entity_id=900_000 + i,
            title=f"提醒 {i}",
            body=None,
            dedupe_key=f"test:{username}:{i}",
            created_at=base + timedelta(minutes=i),
        )
        for i in range(count)
    ]
    session.add_all(rows)
    session.flush()
    return [r.id for r in rows]


def test_list_newest_first_in_pages_with_unread_count(
    client, as_user, session: Session, world: World
) -> None:
    ids = _seed(session, world, "village_a", 5)
    _seed(session, world, "village_b", 2)  # someone else's: never listed
    headers = as_user("village_a")
    r = client.get(URL, params={"limit": 2}, headers=headers)
    assert r.status_code == 200, r.text
    page = r.json()
    assert [i["id"] for i in page["items"]] == [ids[4], ids[3]]
    assert page["unread_count"] == 5
    assert page["items"][0]["title"] == "提醒 4" and page["items"][0]["read_at"] is None
    seen = [i["id"] for i in page["items"]]
    while page["next"]:
        page = client.get(page["next"], headers=headers).json()
        seen += [i["id"] for i in page["items"]]
    assert seen == ids[::-1]

    assert client.post(f"{URL}/{ids[4]}/read", headers=headers).status_code == 200
    unread = client.get(URL, params={"unread": "true"}, headers=headers).json()
    assert [i["id"] for i in unread["items"]] == [ids[3], ids[2], ids[1], ids[0]]
    assert unread["unread_count"] == 4
    everything = client.get(URL, headers=headers).json()
    assert len(everything["items"]) == 5 and everything["next"] is None


def test_mark_one_read_and_another_users_is_404(
    client, as_user, session: Session, world: World
) -> None:
    (mine,) = _seed(session, world, "grid_a1", 1)
    (theirs,) = _seed(session, world, "village_a", 1)
    headers = as_user("grid_a1")
    r = client.post(f"{URL}/{mine}/read", headers=headers)
    assert r.status_code == 200, r.text
    read_at = r.json()["read_at"]
    assert read_at is not None and r.json()["id"] == mine
    again = client.post(f"{URL}/{mine}/read", headers=headers)
    assert again.json()["read_at"] == read_at  # already read: unchanged
    assert_problem(client.post(f"{URL}/{theirs}/read", headers=headers), 404, "not_found")
    assert_problem(client.post(f"{URL}/999999999/read", headers=headers), 404, "not_found")
    session.expire_all()
    assert session.get(Notification, theirs).read_at is None
    assert client.get(URL, headers=as_user("village_a")).json()["unread_count"] == 1


def test_read_all(client, as_user, session: Session, world: World) -> None:
    ids = _seed(session, world, "town_a", 3)
    _seed(session, world, "county", 2)
    headers = as_user("town_a")
    client.post(f"{URL}/{ids[0]}/read", headers=headers)
    r = client.post(f"{URL}/read-all", headers=headers)
    assert r.status_code == 200 and r.json() == {"marked": 2}
    assert client.post(f"{URL}/read-all", headers=headers).json() == {"marked": 0}
    page = client.get(URL, headers=headers).json()
    assert page["unread_count"] == 0 and all(i["read_at"] for i in page["items"])
    # Other people's reminders are untouched.
    assert client.get(URL, headers=as_user("county")).json()["unread_count"] == 2


def test_every_role_has_an_inbox(client, as_user) -> None:
    for user in ("auditor", "gis"):
        r = client.get(URL, headers=as_user(user))
        assert r.status_code == 200, r.text
        assert r.json() == {"items": [], "next": None, "unread_count": 0}
    assert_problem(client.get(URL), 401, "unauthenticated")


def test_a_job_pass_lands_in_the_inbox(client, as_user, session: Session) -> None:
    r = client.post("/api/v1/issues", json=body(), headers=as_user("grid_a1"))
    assert r.status_code == 201, r.text
    issue_id = r.json()["id"]
    # Reported now; its deadlines moved to fixed moments so the pass's answer is known: past
    # the deadline on Fri 10 Oct 2025 09:00, before its escalation time.
    issue = session.get(Issue, issue_id)
    issue.due_at, issue.escalate_at = cst(2025, 10, 9, 17), cst(2025, 10, 14, 9)
    session.flush()
    counts = notifications.remind_issues(session, now=cst(2025, 10, 10, 9))
    assert counts.overdue == 1
    page = client.get(URL, headers=as_user("grid_a1")).json()
    assert page["unread_count"] == 1
    (item,) = page["items"]
    assert (item["kind"], item["entity"], item["entity_id"]) == ("overdue", "issue", issue_id)
    assert item["title"].startswith("事件已超期：") and item["title"].endswith(
        f"（编号 {issue_id}）"
    )
    assert item["body"].startswith("办理时限 2025-10-09 17:00 已过")
    assert client.get(URL, headers=as_user("village_a")).json()["items"] == []
