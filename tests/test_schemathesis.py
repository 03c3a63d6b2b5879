"""Property-based run of the whole API from its own OpenAPI document: no input is ever a 500.

Every operation gets a few generated requests — schema-conforming and schema-breaking — sent
in-process to the ASGI app as a county administrator (the widest scope and every permission).
The app's database session is the test's, rolled back at the end, so nothing generated stays.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# FastAPI documents OpenAPI 3.1, which schemathesis 3.x supports behind this switch.
schemathesis.experimental.OPEN_API_3_1.enable()

# Every check schemathesis has for one response (``--checks all`` but negative_data_rejection,
# which would hold FastAPI to refusing what its own coercion accepts, e.g. "1" for 1, and
# ignored_auth, which the role × route test covers for every route).
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
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


@pytest.fixture
def api_schema(app):
    return schemathesis.from_asgi(
        "/openapi.json",
        app,
        data_generation_methods=[
            schemathesis.DataGenerationMethod.positive,
            schemathesis.DataGenerationMethod.negative,
        ],
    )


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@EXAMPLES
def test_no_operation_answers_500(case, as_user):
    response = case.call_asgi(headers=as_user("county"))
    case.validate_response(response, checks=CHECKS)
