"""Property-based run of the whole API from its own OpenAPI document: no input is ever a 500.

Every operation gets a few generated requests — schema-conforming and schema-breaking — sent
in-process to the ASGI app as a county administrator (the widest scope and every permission).
The app's database session is the test's, rolled back at the end, so nothing generated stays.

The stateful run chains requests along the document's OpenAPI links (gridgov/openapi_links.py):
create a household, then read, change, remove it, report an issue at it; move an issue on with
the version just read; follow a sync cursor … with the same checks on every answer, plus
schemathesis' two stateful ones (a deleted resource is 404 afterwards; a just-created one can be
read with the values its answer gave).
"""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.checks import ensure_resource_availability, use_after_free
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from tests.conftest import token_for
from tests.fixtures.stateful import link_machine, realistic
from tests.fixtures.world import HOUSEHOLDS, World

# FastAPI documents OpenAPI 3.1, which schemathesis 3.x supports behind this switch.
schemathesis.experimental.OPEN_API_3_1.enable()

# Every check schemathesis has for one response (``--checks all`` but negative_data_rejection,
# which would hold FastAPI to refusing what its own coercion accepts, e.g. "1" for 1, and
# ignored_auth, which the role × route test covers for every route).
# A time anywhere in a JSON answer: RFC 3339 in UTC with Z (gridgov.wire), whichever code path
# (pydantic, orjson, PostgreSQL's JSON) wrote it.
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
UTC_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$")


def _times(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        if DATETIME.match(value):
            yield where, value
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _times(v, f"{where}/{i}")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _times(v, f"{where}/{k}")


def times_are_utc_z(response: Any, case: Any) -> None:
    media = response.headers.get("content-type", "").split(";")[0]
    if not (media == "application/json" or media.endswith("+json")) or not response.content:
        return
    bad = [(w, t) for w, t in _times(response.json()) if not UTC_Z.match(t)]
    assert not bad, f"times not RFC 3339 UTC Z: {bad[:5]}"


CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    times_are_utc_z,
)

# Deterministic: the same examples on every run, so a failure here is a bug, never a flake.
# A longer run: GRIDGOV_SCHEMATHESIS_EXAMPLES=200 (README, Security).
EXAMPLES = settings(
    max_examples=int(os.environ.get("GRIDGOV_SCHEMATHESIS_EXAMPLES", "10")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


GENERATION = [
    schemathesis.DataGenerationMethod.positive,
    schemathesis.DataGenerationMethod.negative,
]


@pytest.fixture
def api_schema(app):
    return schemathesis.from_asgi("/openapi.json", app, data_generation_methods=GENERATION)


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@EXAMPLES
def test_no_operation_answers_500(case, as_user):
    response = case.call_asgi(headers=as_user("county"))
    case.validate_response(response, checks=CHECKS)


# Scenarios (hypothesis examples) of up to STEPS linked requests each. A longer run:
# GRIDGOV_SCHEMATHESIS_SCENARIOS=300 GRIDGOV_SCHEMATHESIS_STEPS=10 (README, Security).
SCENARIOS = settings(
    max_examples=int(os.environ.get("GRIDGOV_SCHEMATHESIS_SCENARIOS", "30")),
    stateful_step_count=int(os.environ.get("GRIDGOV_SCHEMATHESIS_STEPS", "8")),
    deadline=None,
    derandomize=True,
    database=None,
    # No shrinking: a failure is reported as found, its steps as they were sent (shrinking
    # replays many variants against a database and takes longer than the run).
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


SEQUENCES = text(
    "SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences"
    " WHERE schemaname = 'public'"
)
RESTORE_SEQUENCES = text(
    "SELECT setval(CAST(s ->> 0 AS regclass), coalesce(CAST(s ->> 1 AS bigint), 1),"
    " s ->> 1 IS NOT NULL) FROM jsonb_array_elements(CAST(:at AS jsonb)) AS s"
).bindparams(bindparam("at", type_=JSONB))


@pytest.fixture
def lived_in(client, as_user, session: Session, world: World) -> World:
    """The world with what lists would otherwise lack: a contact, two issues, a visit."""
    from gridgov.auth.models import User

    county = as_user("county")
    where = {h[0]: {"type": "Point", "coordinates": [h[2], h[3]]} for h in HOUSEHOLDS}
    contact = {"member_id": world.members["党员甲"], "household_id": world.households["A1-1"]}
    assert client.post("/api/v1/contacts", json=contact, headers=county).status_code == 201
    for ext in ("A1-1", "A1-2"):
        issue = {
            "client_uuid": str(uuid.uuid4()),
            "category_code": "0101",
            "description": "邻里因排水沟发生争执",
            "location": where[ext],
        }
        assert client.post("/api/v1/issues", json=issue, headers=county).status_code == 201
    user = session.get(User, world.users["grid_a1"])
    assert user is not None
    user.member_id = world.members["党员甲"]
    session.commit()
    visit = {
        "client_uuid": str(uuid.uuid4()),
        "household_id": world.households["A1-1"],
        "visited_at": (datetime.now(UTC) - timedelta(hours=3)).isoformat(),
        "location": where["A1-1"],
        "accuracy_m": 10,
        "method": "door",
    }
    r = client.post("/api/v1/visits/batch", json={"visits": [visit]}, headers=as_user("grid_a1"))
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    return world


def test_linked_operations_never_answer_500(app, as_user, session: Session, lived_in: World):
    schema = schemathesis.from_asgi("/openapi.json", app, data_generation_methods=GENERATION)
    # A token outliving the longest run (an expired one mid-run would change every answer).
    headers = {
        "Authorization": f"Bearer {token_for(lived_in.users['county'], 'county_admin', 24 * 60)}"
    }
    followed: Counter[str] = Counter()
    sequences = [list(row) for row in session.execute(SEQUENCES)]

    class Workflow(link_machine(schema)):  # type: ignore[misc]
        def setup(self) -> None:
            # Every scenario starts from the same world (savepoint rolled back afterwards) and
            # the same next ids (sequences are not rolled back: a generated id 12 would name a
            # household made in one run and nothing in its replay), so the same draws meet the
            # same answers: no flaky replay, and a failure reproduces.
            session.close()
            self.savepoint = session.bind.begin_nested()  # type: ignore[union-attr]
            session.bind.execute(RESTORE_SEQUENCES, {"at": sequences})  # type: ignore[union-attr]

        def teardown(self) -> None:
            session.close()
            self.savepoint.rollback()

        def before_call(self, case: Any) -> None:
            realistic(case, lived_in)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": headers}

        def after_call(self, response: Any, case: Any) -> None:
            if case.source is not None and 200 <= response.status_code < 300:
                followed[case.source.transition_id.name] += 1

        def validate_response(
            self, response: Any, case: Any, additional_checks: tuple[Any, ...] = ()
        ) -> None:
            case.validate_response(
                response,
                checks=CHECKS,
                additional_checks=(use_after_free, ensure_resource_availability),
            )

    Workflow.run(settings=SCENARIOS)
    # The run really chained requests: an upgrade of schemathesis or hypothesis that stops
    # following links (as hypothesis 6.1xx did to schemathesis 3's) would otherwise pass in
    # silence. (30 scenarios follow some twenty different links to a 2xx answer.)
    assert len(followed) >= 10, dict(followed)
