"""What Party members publish when a write invalidates what upper domains keep about a member
(``gridgov.events``): its contacts (联系户) end when it leaves."""

from __future__ import annotations

from dataclasses import dataclass

from gridgov.events import Event
from gridgov.scoping import Scope


@dataclass(frozen=True)
class MemberLeft(Event):
    """The member moved away, transferred or died (kept on record with the reason)."""

    scope: Scope
    member_id: int
    reason: str
