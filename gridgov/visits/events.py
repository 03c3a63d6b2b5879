"""What visits ask of upper domains (``gridgov.events``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gridgov.events import Event
from gridgov.scoping import Scope


@dataclass(frozen=True)
class AttachmentReferences(Event):
    """A question: does a record in ``scope`` of a domain above visits (an issue, an issue's
    timeline entry) refer to this photo? Each subscriber answers True or False."""

    scope: Scope
    attachment_id: uuid.UUID
