"""What each role may do (DESIGN §8). The one table every route's guard reads.

A kernel module (no domain imports): the scope (``gridgov.scoping``) and the personal-data rule
(``gridgov.privacy``) sit below every domain and read it; ``gridgov.auth.permissions``
re-exports it.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    grid_member = "grid_member"
    village_admin = "village_admin"
    township_admin = "township_admin"
    county_admin = "county_admin"
    gis_editor = "gis_editor"
    auditor = "auditor"


class Perm(StrEnum):
    read = "read"
    units_write = "units:write"
    party_orgs_write = "party_orgs:write"
    grids_write = "grids:write"
    households_write = "households:write"
    members_write = "members:write"
    contacts_write = "contacts:write"
    import_boundaries = "imports:boundaries"
    import_households = "imports:households"
    users_write = "users:write"
    audit_read = "audit:read"
    pii_read = "pii:read"
    issues_report = "issues:report"
    issues_handle = "issues:handle"
    visits_write = "visits:write"
    visits_review = "visits:review"
    api_keys_manage = "api_keys:manage"


ROLE_PERMS: dict[Role, frozenset[Perm]] = {
    Role.grid_member: frozenset(
        {
            Perm.read,
            Perm.households_write,
            Perm.pii_read,
            Perm.issues_report,
            Perm.issues_handle,
            Perm.visits_write,
        }
    ),
    Role.village_admin: frozenset(
        {
            Perm.read,
            Perm.party_orgs_write,
            Perm.grids_write,
            Perm.households_write,
            Perm.members_write,
            Perm.contacts_write,
            Perm.import_households,
            Perm.pii_read,
            Perm.issues_report,
            Perm.issues_handle,
            Perm.visits_write,
            Perm.visits_review,
        }
    ),
    Role.township_admin: frozenset(
        {
            Perm.read,
            Perm.party_orgs_write,
            Perm.grids_write,
            Perm.households_write,
            Perm.members_write,
            Perm.contacts_write,
            Perm.import_households,
            Perm.pii_read,
            Perm.issues_report,
            Perm.issues_handle,
            Perm.visits_write,
            Perm.visits_review,
        }
    ),
    # Every permission, among them api_keys:manage (only county administrators make API keys).
    Role.county_admin: frozenset(set(Perm)),
    # GIS staff maintain boundaries; they never see personal data.
    Role.gis_editor: frozenset(
        {Perm.read, Perm.units_write, Perm.grids_write, Perm.import_boundaries}
    ),
    Role.auditor: frozenset({Perm.read, Perm.audit_read}),
}

ROLE_LABELS = {
    Role.grid_member: "网格员",
    Role.village_admin: "村管理员",
    Role.township_admin: "乡镇管理员",
    Role.county_admin: "县级管理员",
    Role.gis_editor: "地理信息编辑",
    Role.auditor: "审计员（只读）",
}


def allowed(role: str, perm: Perm) -> bool:
    return perm in ROLE_PERMS.get(Role(role), frozenset())
