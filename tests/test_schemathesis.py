"""Property-based run of the whole API from its own OpenAPI document: no input is ever a 500.

Every operation gets a few generated requests — schema-conforming and schema-breaking — sent
in-process to the ASGI app as a county administrator (the widest scope and every permission).
The app's database session is the test's, rolled back at the end, so nothing generated stays.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

# FastAPI documents OpenAPI 3.1, which schemathesis 3.x supports behind this switch.
schemathesis.experimental.OPEN_API_3_1.enable()

# Deterministic: the same examples on every run, so a failure here is a bug, never a flake.
EXAMPLES = settings(
    max_examples=10,
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
    case.validate_response(response, checks=(not_a_server_error,))
