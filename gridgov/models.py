"""Every table, imported once so that Base.metadata is complete (Alembic, tests)."""

from gridgov.audit.models import AuditEntry
from gridgov.auth.models import ApiKey, LoginAttempt, RefreshToken, User
from gridgov.contacts.models import Contact
from gridgov.dashboard.models import (
    DashDirty,
    DashFlagPeriod,
    DashIssuePeriod,
    DashMemberPeriod,
    DashMemberStatus,
    DashStatus,
    DashVisitPeriod,
)
from gridgov.db import Base
from gridgov.gis.models import GridTileGeom, HouseholdCluster, LayerChange
from gridgov.hierarchy.models import AdminUnit, DivisionCode, Grid, PartyOrg
from gridgov.households.models import Household
from gridgov.imports.models import ImportJob
from gridgov.issues.models import CalendarDay, Issue, IssueCategory, IssueEvent
from gridgov.members.models import PartyMember
from gridgov.notifications.models import Notification
from gridgov.sync.models import SyncChange, SyncHorizon
from gridgov.visits.models import Attachment, Visit

__all__ = [
    "AdminUnit",
    "ApiKey",
    "Attachment",
    "AuditEntry",
    "Base",
    "CalendarDay",
    "Contact",
    "DashDirty",
    "DashFlagPeriod",
    "DashIssuePeriod",
    "DashMemberPeriod",
    "DashMemberStatus",
    "DashStatus",
    "DashVisitPeriod",
    "DivisionCode",
    "Grid",
    "GridTileGeom",
    "Household",
    "HouseholdCluster",
    "ImportJob",
    "Issue",
    "IssueCategory",
    "IssueEvent",
    "LayerChange",
    "LoginAttempt",
    "Notification",
    "PartyMember",
    "PartyOrg",
    "RefreshToken",
    "SyncChange",
    "SyncHorizon",
    "User",
    "Visit",
]
