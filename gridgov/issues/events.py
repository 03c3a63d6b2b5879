"""What issues publish to upper domains (``gridgov.events``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gridgov.events import Event


@dataclass(frozen=True)
class IssuesEscalated(Event):
    """These issues were just handed to the next unit up (reminders go out at once)."""

    issue_ids: tuple[int, ...]
    now: datetime
