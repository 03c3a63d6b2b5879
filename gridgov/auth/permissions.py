"""The role table, as the routers have always imported it; it lives in ``gridgov.permissions``
(a kernel module, so that the scope and the personal-data rule below every domain can read it)."""

from gridgov.permissions import ROLE_LABELS, ROLE_PERMS, Perm, Role, allowed

__all__ = ["ROLE_LABELS", "ROLE_PERMS", "Perm", "Role", "allowed"]
