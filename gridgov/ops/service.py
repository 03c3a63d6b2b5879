"""Readiness: the database answers and its schema is at the migrations' head."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import text

from gridgov import migrate
from gridgov.db import get_engine


@dataclass(frozen=True)
class Readiness:
    database: bool
    migration_current: str | None
    migration_head: str
    postgis: str | None

    @property
    def ready(self) -> bool:
        return self.database and self.migration_current == self.migration_head

    def as_dict(self) -> dict[str, object]:
        return {"status": "ready" if self.ready else "not_ready", **asdict(self)}


def readiness() -> Readiness:
    head = migrate.head_revision()
    try:
        engine = get_engine()
        with engine.connect() as conn:
            postgis = conn.scalar(text("SELECT postgis_lib_version()"))
        current = migrate.current_revision(engine)
    except Exception:  # noqa: BLE001  (any failure to reach the database means "not ready")
        return Readiness(False, None, head, None)
    return Readiness(True, current, head, postgis)
