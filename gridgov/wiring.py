"""The composition root of domain events (``gridgov.events``) and scope declarations
(``gridgov.scoping``): importing this module imports every module that subscribes, so that no
published event finds nobody listening, and every model, so that every table's ``__scope__`` is
declared before a SQL-built read asks for it by kind.

The app factory, the command line and the tests import it; a domain never does (it would
import the domains above it)."""

import gridgov.models  # noqa: F401  every model: every scope declaration
from gridgov.audit import service as _audit  # noqa: F401  PersonalDataShown → read_pii entries
from gridgov.contacts import service as _contacts  # noqa: F401  households/members → contacts end
from gridgov.households import service as _households  # noqa: F401  grids → households re-derived
from gridgov.issues import service as _issues  # noqa: F401  visits' photo question → issues answer
from gridgov.notifications import service as _notifications  # noqa: F401  escalations → reminders
