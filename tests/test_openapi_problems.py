"""The problem answers of the OpenAPI document (gridgov/openapi_problems.py): derived from each
route, so a route nobody declared anything for still documents what it can answer."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI

from gridgov.app import route_table
from gridgov.auth.permissions import Perm
from gridgov.deps import Allowed, ReadScope
from gridgov.inputs import IdPath, InputModel
from gridgov.openapi_problems import RESPONSES, problems, with_problems


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    from gridgov.app import create_app

    return create_app().openapi()


def _statuses(operation: dict[str, Any]) -> set[int]:
    return {int(s) for s in operation["responses"] if s.isdigit() and int(s) >= 400}


class Thing(InputModel):
    name: str
    grid_code: str | None = None


def test_a_new_route_gets_its_problems_without_declaring_them():
    router = APIRouter()

    @router.get("/things/{thing_id}")
    def get_thing(thing_id: IdPath, scope: ReadScope) -> dict[str, Any]:
        return {}

    @router.post("/things", status_code=201)
    def create_thing(body: Thing, scope: Allowed(Perm.households_write)) -> dict[str, Any]:
        return {}

    @router.get("/open", responses=problems(429))
    def public() -> dict[str, Any]:
        return {}

    app = FastAPI()
    app.include_router(router)
    document = with_problems(app.openapi(), route_table(app))
    paths = document["paths"]
    assert _statuses(paths["/things/{thing_id}"]["get"]) == {401, 403, 404, 422}
    # grid_code names another record: 404 too; a signed-in write: 409; a body: 413/415/422.
    assert _statuses(paths["/things"]["post"]) == {401, 403, 404, 409, 413, 415, 422}
    assert _statuses(paths["/open"]["get"]) == {429}
    ref = paths["/things/{thing_id}"]["get"]["responses"]["404"]
    assert ref == {"$ref": "#/components/responses/NotFound"}
    problem = document["components"]["responses"]["NotFound"]["content"]
    assert problem == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }


def test_the_document_has_no_framework_error_shapes_and_no_catch_all(document):
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert set(schemas["Problem"]["properties"]) >= {"type", "title", "status", "code", "detail"}
    assert set(schemas["FieldError"]["properties"]) == {
        "loc",
        "msg",
        "code",
        "index",
        "id",
        "detail_en",
    }
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "4XX" not in responses and "default" not in responses, (method, path)
            if operation.get("parameters") or "requestBody" in operation:
                assert "422" in responses, (method, path)
            if operation.get("security"):
                assert "401" in responses, (method, path)
            if "{" in path and not path.startswith("/open311/"):
                assert "404" in responses, (method, path)
            for status in _statuses(operation):
                if not path.startswith("/open311/"):
                    name = RESPONSES[status][0]
                    assert responses[str(status)] == {"$ref": f"#/components/responses/{name}"}


def test_binary_answers_declare_bytes(document):
    tile = document["paths"]["/tiles/{layer}/{z}/{x}/{y}.mvt"]["get"]["responses"]["200"]
    assert tile["content"]["application/vnd.mapbox-vector-tile"]["schema"] == {
        "type": "string",
        "format": "binary",
    }
    ledger = document["paths"]["/api/v1/dashboard/{unit_code}/ledger.xlsx"]["get"]
    (media,) = ledger["responses"]["200"]["content"].values()
    assert media["schema"]["format"] == "binary"


def test_the_batch_items_are_visits(document):
    batch = document["components"]["schemas"]["VisitBatch"]["properties"]["visits"]
    assert batch["items"] == {"$ref": "#/components/schemas/VisitIn"}
