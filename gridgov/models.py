"""Every table, imported once so that Base.metadata is complete (Alembic, tests)."""

from gridgov.audit.models import AuditEntry
from gridgov.auth.models import LoginAttempt, RefreshToken, User
from gridgov.contacts.models import Contact
from gridgov.db import Base
from gridgov.gis.models import LayerChange
from gridgov.hierarchy.models import AdminUnit, Grid, PartyOrg
from gridgov.households.models import Household
from gridgov.imports.models import ImportJob
from gridgov.issues.models import CalendarDay, Issue, IssueCategory, IssueEvent
from gridgov.members.models import PartyMember
from gridgov.sync.models import SyncChange
from gridgov.visits.models import Attachment, Visit

__all__ = [
    "AdminUnit",
    "Attachment",
    "AuditEntry",
    "Base",
    "CalendarDay",
    "Contact",
    "Grid",
    "Household",
    "ImportJob",
    "Issue",
    "IssueCategory",
    "IssueEvent",
    "LayerChange",
    "LoginAttempt",
    "PartyMember",
    "PartyOrg",
    "RefreshToken",
    "SyncChange",
    "User",
    "Visit",
]
