"""A year of activity in the demo county, up to today: contacts and their changes, the
accounts that work with them, visits (checked and reviewed), and issues through the workflow.

Each part lives in its own module (``people``, ``visits``, ``issues``); this one runs them in
order and times each step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.auth.scope import system_scope
from gridgov.demo import issues as issues_step
from gridgov.demo import people as people_step
from gridgov.demo import visits as visits_step
from gridgov.demo.timeline import load_year
from gridgov.visits.storage import BlobStore, get_blob_store

Progress = Callable[[str, int, int], None]


@dataclass
class ActivitySummary:
    start: date | None = None
    today: date | None = None
    contacts: int = 0
    contacts_active: int = 0
    contacts_ended: dict[str, int] = field(default_factory=dict)
    handovers: int = 0
    members_left: int = 0
    households_removed: int = 0
    uncovered: int = 0
    users: int = 0
    weak_villages: int = 0
    fakers: int = 0
    visits: int = 0
    attachments: int = 0
    visits_by_review: dict[str, int] = field(default_factory=dict)
    visits_by_flag: dict[str, int] = field(default_factory=dict)
    issues: int = 0
    issue_transitions: int = 0
    issues_escalated_by_job: int = 0
    issues_refused: int = 0
    issues_by_state: dict[str, int] = field(default_factory=dict)
    issues_by_level: dict[int, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def load_activity(
    session: Session,
    county_code: str,
    *,
    seed: int = 7,
    visits: int | None = None,
    issues: int | None = None,
    today: date | None = None,
    store: BlobStore | None = None,
    progress: Progress | None = None,
) -> ActivitySummary:
    """Write the year before ``today`` (default: China's date now) into a freshly loaded
    county. ``visits``: about this many visits (default: three per household);
    ``issues``: this many issues (default: one per 50 households)."""
    report = progress or (lambda stage, done, total: None)
    summary = ActivitySummary()
    scope = system_scope(session, county_code)
    year = load_year(session, county_code, today)
    summary.start, summary.today = year.start, year.today

    timer = time.perf_counter()
    people = people_step.build(session, scope, year, seed=seed, report=report)
    summary.handovers = people.handovers
    summary.members_left = people.members_left
    summary.households_removed = people.households_removed
    summary.uncovered = people.uncovered
    summary.weak_villages = len(people.weak_villages)
    summary.fakers = len(people.fakers)
    summary.users = (
        len(people.member_users)
        + len(people.staff.village)
        + len(people.staff.township)
        + len(people.staff.county)
    )
    row = session.execute(
        text(
            "SELECT count(*), count(*) FILTER (WHERE valid_to IS NULL) FROM contacts "
            "WHERE county_code = :c"
        ),
        {"c": county_code},
    ).one()
    summary.contacts, summary.contacts_active = row[0], row[1]
    summary.contacts_ended = dict(
        session.execute(
            text(
                "SELECT ended_reason, count(*) FROM contacts WHERE county_code = :c "
                "AND ended_reason IS NOT NULL GROUP BY 1 ORDER BY 1"
            ),
            {"c": county_code},
        ).all()
    )
    summary.seconds["contacts"] = time.perf_counter() - timer
    for key, value in people.seconds.items():
        summary.seconds[f"contacts_{key}"] = value

    timer = time.perf_counter()
    result = visits_step.load_visits(
        session,
        people,
        year,
        seed=seed,
        target=visits,
        store=store or get_blob_store(),
        report=report,
    )
    summary.visits, summary.attachments = result.visits, result.attachments
    summary.visits_by_review, summary.visits_by_flag = result.by_review, result.by_flag
    for key, value in result.seconds.items():
        summary.seconds[f"visits_{key}"] = value
    session.execute(text("ANALYZE contacts; ANALYZE users"))

    timer = time.perf_counter()
    done = issues_step.load_issues(
        session, people, year, seed=seed, count=issues, store=store or get_blob_store(),
        report=report,
    )  # fmt: skip
    summary.issues = done.issues
    summary.issue_transitions = done.transitions
    summary.issues_escalated_by_job = done.escalated_by_job
    summary.issues_refused = done.refused
    summary.issues_by_state, summary.issues_by_level = done.by_state, done.by_level
    summary.attachments += done.attachments
    summary.seconds["issues"] = time.perf_counter() - timer
    session.execute(text("ANALYZE issues; ANALYZE issue_events"))
    summary.users = session.scalar(
        text("SELECT count(*) FROM users WHERE county_code = :c"), {"c": county_code}
    )
    return summary
