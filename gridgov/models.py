"""Every table, imported once so that Base.metadata is complete (Alembic, tests)."""

from gridgov.audit.models import AuditEntry
from gridgov.auth.models import LoginAttempt, RefreshToken, User
from gridgov.contacts.models import Contact
from gridgov.db import Base
from gridgov.hierarchy.models import AdminUnit, Grid, PartyOrg
from gridgov.households.models import Household
from gridgov.imports.models import ImportJob
from gridgov.members.models import PartyMember

__all__ = [
    "AdminUnit",
    "AuditEntry",
    "Base",
    "Contact",
    "Grid",
    "Household",
    "ImportJob",
    "LoginAttempt",
    "PartyMember",
    "PartyOrg",
    "RefreshToken",
    "User",
]
