"""Two requests racing to give one household two primary contacts: the database refuses one.

These need real commits on two connections at once, so they run on a database of their own
(cloned from the migrated template, the small world loaded into it, dropped afterwards).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from gridgov.auth.scope import system_scope
from gridgov.contacts import service as contacts_service
from gridgov.contacts.schemas import ContactCreate
from gridgov.errors import Conflict
from gridgov.members.models import PartyMember
from tests.fixtures import database
from tests.fixtures.world import COUNTY, GRID_A1, VILLAGE_A, World, build_world


@pytest.fixture(scope="module")
def race_db(template_db: str) -> Iterator[tuple[Engine, World, list[int]]]:
    name = database.create_run_database(template_db)
    engine = create_engine(database.url_for(name), poolclass=NullPool)
    try:
        with Session(engine) as session, session.begin():
            world = build_world(session)
            members = []
            for i in range(2):
                member = PartyMember(
                    county_code=COUNTY,
                    party_org_id=world.orgs[VILLAGE_A],
                    village_id=world.units[VILLAGE_A],
                    grid_id=world.grids[GRID_A1],
                    name=f"竞争者{i}",
                    geom=f"SRID=4326;POINT({111.01 + i / 1000} 26.01)",
                )
                session.add(member)
                session.flush()
                members.append(member.id)
        yield engine, world, members
    finally:
        engine.dispose()
        database.drop_database(name)


def _wait_until_blocked(engine: Engine, pid: int, timeout: float = 10.0) -> None:
    """Until backend ``pid`` waits on a lock (the other transaction's uncommitted row)."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": pid},
            ).scalar()
            if waiting == "Lock":
                return
            time.sleep(0.02)
    raise AssertionError("the second transaction never blocked on the first")


def _in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _active_primaries(engine: Engine, household: int) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM contacts WHERE household_id = :h AND role = 'primary' "
                "AND valid_to IS NULL"
            ),
            {"h": household},
        ).scalar_one()


def test_database_refuses_a_second_active_primary(race_db):
    """Plain INSERTs, no application code: the partial unique index alone decides."""
    engine, world, members = race_db
    household = world.households["A1-2"]
    libpq = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    insert = (
        "INSERT INTO contacts (county_code, village_id, member_id, household_id, role) "
        "VALUES (%s, %s, %s, %s, 'primary')"
    )
    village = world.units[VILLAGE_A]
    with psycopg.connect(libpq) as first, psycopg.connect(libpq) as second:
        first.execute(insert, (COUNTY, village, members[0], household))
        pid = second.info.backend_pid
        thread, outcome = _in_thread(
            lambda: second.execute(insert, (COUNTY, village, members[1], household))
        )
        _wait_until_blocked(engine, pid)
        first.commit()
        thread.join(10)
        error = outcome.get("error")
        # Two constraints guard it (the partial unique index on the active primary, the
        # exclusion constraint on primary periods): either may be the one PostgreSQL checks first.
        assert isinstance(error, psycopg.errors.IntegrityError), outcome
        assert error.diag.constraint_name in (
            "uq_contacts_active_primary",
            "ex_contacts_primary_overlap",
        )
        second.rollback()
    assert _active_primaries(engine, household) == 1


def test_two_racing_requests_one_wins_one_gets_409(race_db):
    """Through the service: both pass the code's checks (neither sees the other's row), so it
    is the database that turns the loser into a 409 ``primary_exists``."""
    engine, world, members = race_db
    household = world.households["A1-3"]
    first = Session(engine, expire_on_commit=False)
    second = Session(engine, expire_on_commit=False)
    try:
        scope_1 = system_scope(first, COUNTY)
        scope_2 = system_scope(second, COUNTY)
        won = contacts_service.assign_contact(
            first, scope_1, ContactCreate(member_id=members[0], household_id=household)
        )
        pid = second.connection().connection.driver_connection.info.backend_pid
        thread, outcome = _in_thread(
            lambda: contacts_service.assign_contact(
                second, scope_2, ContactCreate(member_id=members[1], household_id=household)
            )
        )
        _wait_until_blocked(engine, pid)
        first.commit()
        thread.join(10)
        error = outcome.get("error")
        assert isinstance(error, Conflict), outcome
        assert error.code == "primary_exists"
        second.rollback()
    finally:
        first.close()
        second.close()
    assert _active_primaries(engine, household) == 1
    with engine.connect() as conn:
        holder = conn.execute(
            text("SELECT member_id FROM contacts WHERE id = :id"), {"id": won.id}
        ).scalar_one()
    assert holder == members[0]
