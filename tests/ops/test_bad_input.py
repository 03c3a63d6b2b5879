"""D9 of issue 11: bad input is a 4xx problem+json naming the field, never a 500 — null into a
NOT NULL column on PATCH (every Update schema, derived from its table), NUL in body text,
integers beyond bigint, and tokens whose claims are not what the code relies on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from gridgov.config import get_settings
from gridgov.hierarchy.schemas import GridUpdate, PartyOrgUpdate, UnitUpdate
from gridgov.households.schemas import HouseholdUpdate
from gridgov.inputs import InputModel, PatchModel
from gridgov.members.schemas import MemberUpdate
from tests.fixtures.world import GRID_A1, VILLAGE_A, World

PROBLEM = "application/problem+json"


def assert_field_problem(r: Any, status: int, loc: list[Any], code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["code"] == "validation_error"
    assert [e for e in body["errors"] if e["loc"] == loc and e["code"] == code], body


def patch_url(world: World, schema: type[PatchModel]) -> str:
    return {
        UnitUpdate: f"/api/v1/units/{VILLAGE_A}",
        PartyOrgUpdate: f"/api/v1/party-orgs/{world.orgs[VILLAGE_A]}",
        GridUpdate: f"/api/v1/grids/{world.grids[GRID_A1]}",
        HouseholdUpdate: f"/api/v1/households/{world.households['A1-1']}",
        MemberUpdate: f"/api/v1/members/{world.members['党员甲']}",
    }[schema]


def _all_subclasses(cls: type) -> set[type]:
    out = set(cls.__subclasses__())
    for sub in list(out):
        out |= _all_subclasses(sub)
    return out


def test_every_update_schema_is_a_patch_model_over_its_table():
    import gridgov.app  # noqa: F401  (imports every router and schema)

    updates = {c for c in _all_subclasses(InputModel) if c.__name__.endswith("Update")}
    assert updates == {UnitUpdate, PartyOrgUpdate, GridUpdate, HouseholdUpdate, MemberUpdate}
    for schema in updates:
        assert issubclass(schema, PatchModel) and schema.orm_model is not None, schema
    assert MemberUpdate.not_null_fields == {"name", "status", "flowing", "is_hub"}
    assert PartyOrgUpdate.not_null_fields == {"name", "kind"}
    assert HouseholdUpdate.not_null_fields == {"head_name", "location", "size", "tags"}


CASES = [
    (schema, field)
    for schema in (UnitUpdate, PartyOrgUpdate, GridUpdate, HouseholdUpdate, MemberUpdate)
    for field in sorted(schema.not_null_fields)
]


@pytest.mark.parametrize(("schema", "field"), CASES, ids=[f"{s.__name__}.{f}" for s, f in CASES])
def test_null_into_a_not_null_column_is_422(client, as_user, world, schema, field):
    r = client.patch(patch_url(world, schema), json={field: None}, headers=as_user("county"))
    assert_field_problem(r, 422, ["body", field], "null_not_allowed")


def test_null_clears_a_nullable_column(client, as_user, world: World):
    r = client.patch(
        patch_url(world, MemberUpdate), json={"gender": None}, headers=as_user("county")
    )
    assert r.status_code == 200, r.text
    assert r.json()["gender"] is None
    r = client.patch(
        patch_url(world, PartyOrgUpdate), json={"secretary_name": None}, headers=as_user("county")
    )
    assert r.status_code == 200 and r.json()["secretary_name"] is None


def test_openapi_does_not_offer_null_for_not_null_fields(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    org = schemas["PartyOrgUpdate"]["properties"]
    assert org["name"]["type"] == "string" and "anyOf" not in org["name"]
    assert {"type": "null"} in org["secretary_name"]["anyOf"]
    assert "null" not in str(schemas["MemberUpdate"]["properties"]["flowing"])


@pytest.mark.parametrize("field", ["name", "username"])
def test_nul_in_api_key_body_is_422(client, as_user, field: str):
    body = {"name": "QGIS", "username": "gis", field: "a\x00b"}
    r = client.post("/api/v1/api-keys", json=body, headers=as_user("county"))
    assert_field_problem(r, 422, ["body", field], "nul_character")


@pytest.mark.parametrize("value", [99999999999999999999, 2**63, -(2**64)])
def test_integer_beyond_bigint_is_422(client, as_user, value: int):
    r = client.post(
        "/api/v1/api-keys", json={"name": "x", "user_id": value}, headers=as_user("county")
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", "user_id"]


def test_integer_beyond_bigint_anywhere_in_a_body_is_422(client, as_user, world: World):
    r = client.patch(
        patch_url(world, PartyOrgUpdate), json={"version": 2**64}, headers=as_user("county")
    )
    assert_field_problem(r, 422, ["body", "version"], "int_out_of_range")


def test_out_of_range_ids_in_query_and_path_are_422(client, as_user):
    for url in (
        f"/api/v1/party-orgs/{2**63}",
        f"/api/v1/visits?household_id={2**63}",
        f"/api/v1/households?limit={10**20}",
    ):
        r = client.get(url, headers=as_user("county"))
        assert r.status_code == 422, (url, r.text)
        assert r.headers["content-type"] == PROBLEM
    tile = client.get(f"/tiles/grids/3/{10**20}/0.mvt", headers=as_user("county"))
    assert 400 <= tile.status_code < 500, tile.text


def test_every_integer_parameter_is_bounded():
    """An integer query or path parameter has an upper bound (PostgreSQL's bigint at most) or
    is one of the few checked by their own code: page sizes (against PAGE_MAX) and tile x/y
    (against the zoom)."""
    import annotated_types

    from gridgov.app import create_app, route_table
    from gridgov.inputs import MAX_ID

    checked_elsewhere = {"limit", "x", "y"}

    def params(dependant: Any) -> Any:
        yield from dependant.query_params
        yield from dependant.path_params
        for sub in dependant.dependencies:
            yield from params(sub)

    unbounded = []
    for path, route in route_table(create_app()):
        for param in params(route.dependant):
            info = param.field_info
            if "int" not in str(info.annotation) or param.name in checked_elsewhere:
                continue
            bounds = [
                m for m in info.metadata if isinstance(m, annotated_types.Le | annotated_types.Lt)
            ]
            if "Le(le=" in str(info.annotation):
                continue  # an Optional[EntityId]: the bound sits inside the annotation
            if not bounds or any(getattr(b, "le", getattr(b, "lt", 0)) > MAX_ID for b in bounds):
                unbounded.append((path, param.name))
    assert unbounded == []


# -- tokens ------------------------------------------------------------------------------------


def forge(**claims: Any) -> str:
    claims = {k: v for k, v in claims.items() if v is not ...}
    return jwt.encode(claims, get_settings().auth.secret_key, algorithm="HS256")


def _exp() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=5)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "abc"},
        {"sub": str(2**63)},
        {"sub": "99999999999999999999999"},
        {"sub": "-1"},
        {"sub": "１"},  # a full-width digit: str.isdigit says yes, int() would accept it
        {"sub": 1},  # not a string
        {"exp": ...},  # never expires: refused
    ],
    ids=["letters", "2^63", "huge", "negative", "fullwidth", "int", "no-exp"],
)
def test_access_token_with_bad_claims_is_401(client, world: World, claims: dict[str, Any]):
    token = forge(**{"sub": str(world.users["county"]), "typ": "access", "exp": _exp(), **claims})
    for headers in ({"Authorization": f"Bearer {token}"},):
        r = client.get("/api/v1/me", headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "invalid_token"


@pytest.mark.parametrize("jti", [..., "not-a-uuid", 7, None])
def test_refresh_token_without_a_uuid_jti_is_401(client, world: World, jti: Any):
    token = forge(sub=str(world.users["county"]), typ="refresh", exp=_exp(), jti=jti)
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": token})
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "invalid_refresh_token"


def test_well_formed_tokens_still_work(client, world: World):
    token = forge(sub=str(world.users["county"]), typ="access", exp=_exp(), jti=str(uuid.uuid4()))
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
