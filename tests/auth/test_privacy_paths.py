"""The personal-data rule path by path (``gridgov.privacy.PATHS``): for every read that can carry
names, phones or ID numbers, a caller without ``pii:read`` sees them masked (and its ``pii=true``
is 403); a caller with it sees them masked by default, in clear with ``pii=true``, and that read
leaves its audit entry. The grid member's offline rule: its own grid's households in clear on
``/sync`` and ``/me/due`` without asking (audited per page / list), masked everywhere else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridgov import privacy
from gridgov.audit.models import AuditEntry
from gridgov.dashboard import rollups
from gridgov.scoping import Scope
from tests.auth.helpers import assert_problem
from tests.fixtures.world import COUNTY, VILLAGE_A, World

API = "/api/v1"
HEAD, PHONE = "王建国", "13912345678"  # household A1-1's head (world fixture)
MEMBER, MEMBER_PHONE = "党员甲", "13800138000"


@dataclass(frozen=True)
class Case:
    url: Callable[[World], str]
    clear: tuple[str, ...]  # values that show only in clear
    masked: tuple[str, ...]  # their masked forms


CASES: dict[str, Case] = {
    "households": Case(
        lambda w: f"{API}/households/{w.households['A1-1']}", (HEAD, PHONE), ("王**",)
    ),
    "members": Case(
        lambda w: f"{API}/members/{w.members[MEMBER]}", (MEMBER, MEMBER_PHONE), ("党**",)
    ),
    "contacts": Case(lambda w: f"{API}/contacts", (HEAD, MEMBER), ("王**", "党**")),
    "uncovered": Case(
        lambda w: f"{API}/contacts/uncovered?unit_code={VILLAGE_A}", ("李秀英",), ("李**",)
    ),
    "household_file": Case(
        lambda w: f"{API}/households/{w.households['A1-1']}/file", (HEAD, PHONE), ("王**",)
    ),
    "exports": Case(lambda w: f"{API}/exports/households.geojson", (HEAD,), ()),
}


def test_every_path_is_decided_and_tested() -> None:
    """Each path of the table is checked here or in the older tests named beside it."""
    elsewhere = {
        "party_orgs": "tests/auth/test_privacy.py",
        "grids": "tests/auth/test_privacy.py",
        "audit_log": "tests/auth/test_privacy.py",
        "sync": "below and tests/sync/test_sync_privacy.py",
        "due_list": "below and tests/auth/test_privacy.py",
        "scores": "below",
    }
    never = {name for name, rule in privacy.PATHS.items() if rule.resource is None}
    assert never == {"ledgers", "tiles", "ogc", "open311"}
    assert set(privacy.PATHS) == set(CASES) | set(elsewhere) | never
    for name, rule in privacy.PATHS.items():
        assert (rule.resource is None) == (rule.audit is None), name
        assert rule.offline == (name in ("sync", "due_list")), name


def _with_a_contact(session: Session, world: World) -> None:
    session.execute(
        text(
            "INSERT INTO contacts (county_code, village_id, member_id, household_id, role,"
            " valid_from) VALUES (:c, :v, :m, :h, 'primary', current_date - 3)"
        ),
        dict(
            c=COUNTY,
            v=world.units[VILLAGE_A],
            m=world.members[MEMBER],
            h=world.households["A1-1"],
        ),
    )
    session.commit()


def _entries(session: Session, world: World, username: str, action: str, entity: str) -> list:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.action == action,
                AuditEntry.entity == entity,
                AuditEntry.user_id == world.users[username],
            )
            .order_by(AuditEntry.id)
        )
    )


def _with_pii(url: str) -> str:
    return url + ("&" if "?" in url else "?") + "pii=true"


@pytest.mark.parametrize("path", sorted(CASES))
@pytest.mark.parametrize("username", ["gis", "auditor"])
def test_without_pii_permission_masked_and_asking_is_403(
    client, as_user, session, world, path, username
):
    _with_a_contact(session, world)
    case = CASES[path]
    r = client.get(case.url(world), headers=as_user(username))
    if r.status_code == 403:  # the role may not read this path at all: nothing leaks either way
        assert not any(v in r.text for v in case.clear)
        return
    assert r.status_code == 200, r.text
    for value in case.clear:
        assert value not in r.text, (path, value)
    for value in case.masked:
        assert value in r.text, (path, value)
    assert_problem(
        client.get(_with_pii(case.url(world)), headers=as_user(username)), 403, "pii_forbidden"
    )
    assert (
        session.scalar(
            select(AuditEntry.id).where(
                AuditEntry.action == "read_pii", AuditEntry.user_id == world.users[username]
            )
        )
        is None
    )


@pytest.mark.parametrize("path", sorted(CASES))
@pytest.mark.parametrize("username", ["village_a", "county"])
def test_with_permission_masked_by_default_in_clear_with_pii_and_audited(
    client, as_user, session, world, path, username
):
    _with_a_contact(session, world)
    case = CASES[path]
    action, entity = privacy.PATHS[path].audit  # type: ignore[misc]
    headers = as_user(username)
    r = client.get(case.url(world), headers=headers)
    assert r.status_code == 200, r.text
    for value in case.clear:
        assert value not in r.text, (path, value)
    before = _entries(session, world, username, action, entity)
    if action == "read_pii":
        assert before == []  # a masked read is not recorded
    r = client.get(_with_pii(case.url(world)), headers=headers)
    assert r.status_code == 200, r.text
    for value in case.clear:
        assert value in r.text, (path, value)
    after = _entries(session, world, username, action, entity)
    assert len(after) == len(before) + 1, (path, [e.entity_id for e in after])
    if action == "export":  # the export's own entry says it carried personal data
        assert after[-1].after["query"].get("pii") == "true"
    else:
        assert HEAD not in str(after[-1].after) and PHONE not in str(after[-1].after)


def test_member_scores_masked_unless_asked_and_audited(client, as_user, session, world):
    _with_a_contact(session, world)
    rollups.refresh(session)
    url = f"{API}/dashboard/{VILLAGE_A}/scores?of=member"
    r = client.get(url, headers=as_user("county"))
    assert r.status_code == 200, r.text
    assert MEMBER not in r.text and "党**" in r.text
    assert_problem(client.get(url + "&pii=true", headers=as_user("auditor")), 403, "pii_forbidden")
    r = client.get(url + "&pii=true", headers=as_user("county"))
    assert MEMBER in r.text
    (entry,) = _entries(session, world, "county", "read_pii", "dashboard_scores")
    assert entry.entity_id == VILLAGE_A and MEMBER not in str(entry.after)


# -- the grid member's offline rule ---------------------------------------------------------------


def test_grid_member_phone_gets_its_grid_in_clear_on_sync_and_due_only(
    client, as_user, session, world
):
    """The rule (README, "Personal data"): a grid member's phone must call the households of
    the grid it is bound to, offline, so ``/sync`` and ``/me/due`` carry their heads' names and
    phones in clear without ``pii=true`` — one ``read_pii`` entry per page or list, counts only.
    Nothing outside its grid is ever sent; every other read of its follows the general rule."""
    headers = as_user("grid_a1")
    r = client.get(f"{API}/sync?limit=500", headers=headers)
    assert r.status_code == 200, r.text
    households = {h["id"]: h for h in r.json()["upserts"]["households"]}
    own = households[world.households["A1-1"]]
    assert (own["head_name"], own["phone"]) == (HEAD, PHONE)
    assert world.households["B1-1"] not in households  # another village's: not even masked
    assert world.households["A2-1"] not in households  # another grid of its village
    (page,) = _entries(session, world, "grid_a1", "read_pii", "sync")
    assert HEAD not in str(page.after) and PHONE not in str(page.after)

    r = client.get(f"{API}/me/due", headers=headers)
    assert r.status_code == 200, r.text
    assert {d["head_name"] for d in r.json()} >= {HEAD}
    assert len(_entries(session, world, "grid_a1", "read_pii", "due_list")) == 1

    # The same households through the ordinary reads: masked unless asked for, and audited.
    item = f"{API}/households/{world.households['A1-1']}"
    r = client.get(item, headers=headers)
    assert r.status_code == 200, r.text
    assert HEAD not in r.text and PHONE not in r.text
    r = client.get(item + "?pii=true", headers=headers)
    assert HEAD in r.text
    assert len(_entries(session, world, "grid_a1", "read_pii", "household")) == 1


@pytest.mark.parametrize("username", ["village_a", "county"])
def test_everyone_elses_sync_and_due_masked_unless_asked(client, as_user, session, world, username):
    headers = as_user(username)
    for url, entity in ((f"{API}/sync?limit=500", "sync"), (f"{API}/me/due", "due_list")):
        r = client.get(url, headers=headers)
        if r.status_code == 403:  # no due list for this role
            continue
        assert r.status_code == 200, r.text
        assert HEAD not in r.text and PHONE not in r.text, url
        assert _entries(session, world, username, "read_pii", entity) == []
        r = client.get(_with_pii(url), headers=headers)
        assert r.status_code == 200, r.text
        assert HEAD in r.text, url
        assert len(_entries(session, world, username, "read_pii", entity)) == 1, url


@pytest.mark.parametrize("username", ["gis", "auditor"])
def test_roles_without_pii_get_a_masked_sync(client, as_user, session, world, username):
    headers = as_user(username)
    r = client.get(f"{API}/sync?limit=500", headers=headers)
    assert r.status_code == 200, r.text
    assert HEAD not in r.text and PHONE not in r.text
    assert_problem(
        client.get(f"{API}/sync?limit=500&pii=true", headers=headers), 403, "pii_forbidden"
    )


def test_paths_without_personal_data_never_show_any(client, as_user, world) -> None:
    """Map layers carry no household identity for anyone, asked or not (``pii`` is not one of
    their parameters: OGC answers 400 to unknown parameters)."""
    headers = as_user("county")
    r = client.get("/ogc/collections/households/items?limit=100", headers=headers)
    assert r.status_code == 200, r.text
    assert HEAD not in r.text and PHONE not in r.text
    assert client.get(
        "/ogc/collections/households/items?pii=true", headers=headers
    ).status_code == (400)
    for name in ("ledgers", "tiles", "ogc", "open311"):
        scope = Scope(1, "x", "county_admin", COUNTY, 1, None, frozenset({1}), (1,))
        assert privacy.shown(scope, name, True) is False
