"""What households publish when a write invalidates what upper domains keep about a household
(``gridgov.events``): its contacts (联系户) hold only while it is on record in their village."""

from __future__ import annotations

from dataclasses import dataclass

from gridgov.events import Event
from gridgov.scoping import Scope


@dataclass(frozen=True)
class HouseholdMoved(Event):
    """The household's location changed (possibly into another village)."""

    scope: Scope
    household_id: int


@dataclass(frozen=True)
class HouseholdRemoved(Event):
    """The household was removed from the record (注销), with the reason given."""

    scope: Scope
    household_id: int
    reason: str
