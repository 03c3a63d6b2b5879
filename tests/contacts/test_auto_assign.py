"""Automatic assignment on a generated village with tight capacity: every constraint holds, the
plan is the optimum, apply is all or nothing, and re-running fills holes without churn."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from gridgov.audit.models import AuditEntry
from gridgov.auth.scope import system_scope
from gridgov.contacts import planner, solver
from gridgov.contacts import service as contacts_service
from gridgov.contacts.models import Contact
from gridgov.contacts.schemas import ContactCreate
from gridgov.errors import Conflict
from gridgov.households import service as households_service
from gridgov.households.service import HouseholdRow
from gridgov.members.models import PartyMember
from tests.contacts.conftest import assert_problem
from tests.fixtures.world import COUNTY, VILLAGE_A, VILLAGE_B

HAMLETS = [(111.02, 26.02), (111.03, 26.07), (111.07, 26.03), (111.08, 26.08)]


@pytest.fixture
def village(session, world, make_member, limits):
    """东村 with 80 more households in four hamlets and members whose capacity is tight.

    Primary capacity: six members × 12, one probationary member × 5 (the county's cap), one
    member with no recorded home × 5 = 82 for 86 households, so 4 stay uncovered. A flowing
    member and one who has left must never be chosen; 党员甲 of the world has no room.
    """
    limits(probationary_max=5)
    rng = np.random.default_rng(42)
    rows = []
    for i in range(80):
        h = i % len(HAMLETS)
        lon, lat = np.asarray(HAMLETS[h]) + rng.normal(0, 0.002, 2)
        rows.append(
            HouseholdRow(i, f"户主{i}", float(lon), float(lat), hamlet=f"{h + 1}组", size=2)
        )
    result = households_service.write_households(session, None, rows, county_code=COUNTY)
    assert not result.errors, result.errors
    session.execute(
        text("UPDATE party_members SET capacity = 0 WHERE id = :id"),
        {"id": world.members["党员甲"]},
    )
    session.commit()
    members = {
        f"m{i}": make_member(*(np.asarray(HAMLETS[i % 4]) + (0.001 * i, 0)), capacity=12)
        for i in range(6)
    }
    members["probationary"] = make_member(111.05, 26.05, status="probationary")
    members["no_home"] = make_member(capacity=5)
    members["no_home"].geom = None
    members["flowing"] = make_member(111.02, 26.02, flowing=True)
    members["left"] = make_member(111.021, 26.021)
    session.execute(
        text("UPDATE party_members SET left_at = now() WHERE id = :id"),
        {"id": members["left"].id},
    )
    session.commit()
    return members


@pytest.fixture
def village_a(as_user) -> dict[str, str]:
    return as_user("village_a")


def plan(client: Any, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post(
        "/api/v1/contacts/auto-assign", json={"unit_code": VILLAGE_A, **body}, headers=headers
    )
    assert r.status_code == 200, r.text
    return r.json()


def contacts_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Contact))


def test_dry_run_respects_every_constraint(client, village_a, session, village):
    before = contacts_count(session)
    body = plan(client, village_a)
    assert contacts_count(session) == before  # a dry run writes nothing
    summary = body["summary"]
    assert (summary["villages"], summary["households"]) == (1, 86)
    assert (summary["proposed"], summary["uncovered"], summary["kept"]) == (82, 4, 0)
    assert {u["reason"] for u in body["uncovered"]} == {"capacity_exhausted"}
    by_id = {m.id: m for m in session.scalars(select(PartyMember))}
    loads: dict[int, int] = {}
    for pair in body["pairs"]:
        member = by_id[pair["member_id"]]
        assert member.village_id == village["m0"].village_id
        assert not member.flowing and member.left_at is None
        loads[member.id] = loads.get(member.id, 0) + 1
    assert village["flowing"].id not in loads and village["left"].id not in loads
    assert loads[village["probationary"].id] == 5
    assert loads[village["no_home"].id] == 5  # placed at its grid's centre, still usable
    assert all(loads[village[f"m{i}"].id] == 12 for i in range(6))
    covered = {p["household_id"] for p in body["pairs"]} | {
        u["household_id"] for u in body["uncovered"]
    }
    assert len(covered) == 86
    for load in body["loads"]:
        assert load["total"] <= load["capacity"]


@pytest.mark.parametrize("preferences", [False, True])
def test_plan_is_the_exact_optimum(session, village, preferences):
    """The plan against SciPy's dense assignment on the same arrays (float metres)."""
    scope = system_scope(session, COUNTY)
    flags = {"same_grid": preferences, "same_hamlet": preferences, "balance": preferences}
    result = planner.auto_assign(session, scope, unit_code=VILLAGE_A, **flags)
    unit = planner.read_unit(session, scope, unit_code=VILLAGE_A, **flags)
    (p,) = unit.problems
    best, best_member = solver.reference_optimum(p, unit.model)
    assert (best_member >= 0).sum() == len(result.pair_household)
    (solution,) = result.solutions
    got = solver.objective_of(p, unit.model, solution.member)
    assert best <= got <= best * 1.001
    if not preferences:
        # nothing but walking distance: the plan's distance is the optimum's
        assert result.total_distance_m == pytest.approx(best, rel=1e-3)


def test_apply_writes_everything_and_keeps_it(client, village_a, session, village):
    before = contacts_count(session)
    body = plan(client, village_a, mode="apply", include_pairs=False)
    assert body["applied"] and body["batch_id"] and body["pairs"] is None
    assert contacts_count(session) == before + 82
    written = session.scalars(select(Contact).where(Contact.batch_id.isnot(None))).all()
    assert {(c.source, c.role, str(c.batch_id)) for c in written} == {
        ("auto", "primary", body["batch_id"])
    }
    audit = session.scalar(
        select(AuditEntry).where(AuditEntry.action == "auto_assign").order_by(AuditEntry.id.desc())
    )
    assert audit.entity_id == body["batch_id"] and audit.after["proposed"] == 82
    again = plan(client, village_a)["summary"]
    assert (again["kept"], again["proposed"], again["uncovered"]) == (82, 0, 4)
    # rebalancing an optimal plan moves nobody
    steady = plan(client, village_a, rebalance=True)
    assert steady["summary"]["proposed"] == 0 and steady["ended"] == []


def test_apply_is_atomic(session, village):
    """A plan gone stale (someone assigned one of its households meanwhile) writes nothing."""
    scope = system_scope(session, COUNTY)
    stale = planner.auto_assign(session, scope, unit_code=VILLAGE_A)
    household = int(stale.pair_household[40])
    member = int(stale.pair_member[0])
    contacts_service.assign_contact(
        session, scope, ContactCreate(member_id=member, household_id=household)
    )
    before = contacts_count(session)
    with pytest.raises(Conflict) as caught:
        planner.apply_plan(session, scope, stale, county_code=COUNTY)
    assert caught.value.code == "plan_stale"
    assert contacts_count(session) == before
    assert not stale.applied


def test_rerun_fills_holes_with_minimal_churn(client, village_a, session, village, limits):
    # Room for everyone even without one member, and anyone with room may take anyone.
    limits(probationary_max=5, hard_max=20, max_distance_m=20_000)
    for member in session.scalars(
        select(PartyMember).where(PartyMember.id.in_([village[f"m{i}"].id for i in range(6)]))
    ):
        member.capacity = 20  # 5 × 20 + 5 + 5 = 110 ≥ 86
    session.commit()
    first = plan(client, village_a, mode="apply")
    assert first["summary"]["uncovered"] == 0
    before = {c.id for c in session.scalars(select(Contact).where(Contact.valid_to.is_(None)))}
    leaver = village["m1"]
    theirs = {p["household_id"] for p in first["pairs"] if p["member_id"] == leaver.id}
    r = client.post(
        f"/api/v1/members/{leaver.id}/leave", json={"reason": "去世"}, headers=village_a
    )
    assert r.status_code == 204
    second = plan(client, village_a, mode="apply")
    assert {p["household_id"] for p in second["pairs"]} == theirs
    assert second["summary"]["kept"] == 86 - len(theirs)
    after = {c.id for c in session.scalars(select(Contact).where(Contact.valid_to.is_(None)))}
    assert len(before - after) == len(theirs)  # only the leaver's contacts ended


def test_rebalance_moves_households_after_a_member_moves(client, village_a, session, village):
    plan(client, village_a, mode="apply")
    mover = village["m2"]  # lived in the 3rd hamlet, moves 1.7 km north-east
    mover.geom = "SRID=4326;POINT(111.075 26.045)"
    session.commit()
    body = plan(client, village_a, rebalance=True)
    moved = [p for p in body["pairs"] if p["previous_member_id"] == mover.id]
    assert moved and all(p["member_id"] != mover.id for p in moved)
    # every re-assigned household ends its old contact, and nothing else ends: with capacity
    # this tight, today's covered households stay covered (no swapping who goes without)
    assert {e["reason"] for e in body["ended"]} == {"rebalance"}
    assert sorted(e["household_id"] for e in body["ended"]) == sorted(
        p["household_id"] for p in body["pairs"]
    )
    assert body["summary"]["uncovered"] == 4
    untouched = plan(client, village_a)  # without rebalance nothing moves
    assert untouched["summary"]["proposed"] == 0 and untouched["ended"] == []


def test_stale_contacts_are_ended_by_the_plan(client, village_a, session, village):
    first = plan(client, village_a, mode="apply")
    member = village["m3"]
    member.flowing = True  # may no longer be a primary contact
    session.commit()
    body = plan(client, village_a)
    ended = {e["contact_id"] for e in body["ended"]}
    assert len(ended) == sum(1 for p in first["pairs"] if p["member_id"] == member.id)
    assert {e["reason"] for e in body["ended"]} == {"invalid"}


def test_auto_assign_out_of_scope(client, as_user, village):
    r = client.post(
        "/api/v1/contacts/auto-assign", json={"unit_code": VILLAGE_A}, headers=as_user("village_b")
    )
    assert_problem(r, 404, "not_found")
    r = client.post(
        "/api/v1/contacts/auto-assign", json={"unit_code": "110101"}, headers=as_user("county")
    )
    assert_problem(r, 404, "not_found")
    r = client.post(
        "/api/v1/contacts/auto-assign", json={"unit_code": VILLAGE_A}, headers=as_user("grid_a1")
    )
    assert_problem(r, 403, "forbidden")
    r = client.post(
        "/api/v1/contacts/auto-assign",
        json={"unit_code": VILLAGE_A, "mode": "maybe"},
        headers=as_user("county"),
    )
    assert r.status_code == 422


def test_township_plan_covers_its_villages(client, as_user, village):
    body = plan(client, as_user("town_a"), unit_code="439902100")
    assert body["summary"]["villages"] == 2
    # 西村 has no member who can take a primary contact
    west = {u["reason"] for u in body["uncovered"]} - {"capacity_exhausted"}
    assert west == {"no_eligible_member"} or west == set()
    r = client.post(
        "/api/v1/contacts/auto-assign", json={"unit_code": VILLAGE_B}, headers=as_user("town_a")
    )
    assert r.status_code == 200


def test_cli_dry_run(session, village, monkeypatch):
    from gridgov.cli import app

    @contextmanager
    def scope():
        yield session
        session.flush()

    monkeypatch.setattr("gridgov.db.session_scope", scope)
    before = contacts_count(session)
    result = CliRunner().invoke(app, ["contacts", "auto-assign", "--unit", VILLAGE_A])
    assert result.exit_code == 0, result.output
    assert "分配方案（试算）" in result.output and "82" in result.output
    assert "可及范围内的党员联系户数均已满额" in result.output
    assert contacts_count(session) == before
