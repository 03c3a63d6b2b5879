"""The wire format (gridgov/wire.py): one datetime format whichever code wrote it, and
SQL-built bodies whose keys are exactly their schema's properties."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov import wire
from tests.fixtures.world import HOUSEHOLDS, World

MOMENTS = [
    datetime(2026, 5, 1, 8, 30, tzinfo=UTC),
    datetime(2026, 5, 1, 8, 30, 0, 250000, tzinfo=UTC),
    datetime(2026, 5, 1, 8, 30, 1, 7, tzinfo=UTC),
    datetime(2026, 5, 1, 16, 30, 59, 999999, tzinfo=timezone(timedelta(hours=8))),
]


class Moment(BaseModel):
    at: datetime


@pytest.mark.parametrize("moment", MOMENTS)
def test_pydantic_orjson_and_postgresql_write_a_time_alike(session: Session, moment: datetime):
    from_sql = session.execute(
        text(f"SELECT {wire.sql_time('CAST(:t AS timestamptz)')}"), {"t": moment}
    ).scalar_one()
    # What the API's models and rows carry: datetimes read from the UTC session.
    utc = moment.astimezone(UTC)
    from_pydantic = orjson.loads(Moment(at=utc).model_dump_json())["at"]
    from_orjson = orjson.loads(wire.dumps({"at": utc}))["at"]
    assert from_sql == from_pydantic == from_orjson
    assert from_sql.endswith("Z") and datetime.fromisoformat(from_sql) == moment


def test_sql_time_keeps_null(session: Session):
    assert session.execute(text(f"SELECT {wire.sql_time('NULL::timestamptz')}")).scalar() is None


def test_a_field_without_sql_fails_at_declaration():
    class Partial(BaseModel):
        id: int

    with pytest.raises(TypeError, match="Partial.id has no Sql"):
        wire.select_list(Partial)


def test_the_visit_body_is_declared_once():
    from gridgov.visits import queries
    from gridgov.visits.schemas import VisitRead

    names = set(VisitRead.model_fields)
    assert wire.select_list(VisitRead) == queries.VISIT_COLUMNS
    for name in names - {"location"}:
        assert f" AS {name}" in queries.VISIT_COLUMNS and f"'{name}', " in queries.VISIT_JSON


@pytest.fixture
def lived_in(client, as_user, session: Session, world: World) -> World:
    """The world with one of everything a list could lack: a contact, an issue, a visit."""
    from gridgov.auth.models import User

    county = as_user("county")
    where = {h[0]: {"type": "Point", "coordinates": [h[2], h[3]]} for h in HOUSEHOLDS}
    contact = {"member_id": world.members["党员甲"], "household_id": world.households["A1-1"]}
    assert client.post("/api/v1/contacts", json=contact, headers=county).status_code == 201
    issue = {
        "client_uuid": str(uuid.uuid4()),
        "category_code": "0101",
        "description": "邻里因排水沟发生争执",
        "location": where["A1-2"],
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
    }
    r = client.post("/api/v1/visits/batch", json={"visits": [visit]}, headers=as_user("grid_a1"))
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    return world


def _item_schemas(document: dict[str, Any]) -> dict[str, str]:
    """GET list path (no path parameters) → the schema name of its page's items."""
    schemas = document["components"]["schemas"]
    out = {}
    for path, item in document["paths"].items():
        operation = item.get("get")
        if operation is None or "{" in path:
            continue
        content = operation["responses"]["200"].get("content", {}).get("application/json", {})
        ref = content.get("schema", {}).get("$ref", "")
        page = schemas.get(ref.rsplit("/", 1)[-1], {})
        items = page.get("properties", {}).get("items", {}).get("items", {}).get("$ref")
        if items:
            out[path] = items.rsplit("/", 1)[-1]
    return out


# Lists with a by-id read: the list's SQL-built item and the item's answer are the same object.
ITEM_PATHS = {
    "/api/v1/households": "/api/v1/households/{id}",
    "/api/v1/members": "/api/v1/members/{id}",
    "/api/v1/grids": "/api/v1/grids/{id}",
    "/api/v1/party-orgs": "/api/v1/party-orgs/{id}",
    "/api/v1/contacts": "/api/v1/contacts/{id}",
    "/api/v1/visits": "/api/v1/visits/{id}",
    "/api/v1/issues": "/api/v1/issues/{id}",
    "/api/v1/units": "/api/v1/units/{code}",
}


# What a list leaves empty on purpose (the item read fills it): an issue's timeline.
LIST_LEAVES_OUT = {"/api/v1/issues": {"timeline"}}


def test_every_list_item_has_exactly_its_schemas_properties(app, client, as_user, lived_in):
    document = app.openapi()
    schemas = document["components"]["schemas"]
    lists = _item_schemas(document)
    assert set(ITEM_PATHS) <= set(lists), sorted(lists)
    county = as_user("county")
    for path, name in sorted(lists.items()):
        # With their geometry, if they can leave it out: then a list's item is the item read.
        names = {p["name"] for p in document["paths"][path]["get"].get("parameters", [])}
        query = {"geometry": "true"} if "geometry" in names else {}
        r = client.get(path, params=query, headers=county)
        assert r.status_code == 200, (path, r.text)
        items = r.json()["items"]
        # Every list with an item read has something here; others (a county admin's
        # notifications) may be empty.
        assert items or path not in ITEM_PATHS, f"{path}: nothing listed to compare"
        properties = set(schemas[name]["properties"])
        for item in items:
            assert set(item) == properties, (path, name, set(item) ^ properties)
        if query:  # without geometry: the same keys, the geometry null
            bare = client.get(path, params={"geometry": "false"}, headers=county).json()
            assert all(set(item) == properties for item in bare["items"]), path
        if path in ITEM_PATHS:
            key = "code" if "{code}" in ITEM_PATHS[path] else "id"
            one = client.get(
                ITEM_PATHS[path].replace(f"{{{key}}}", str(items[0][key])), headers=county
            )
            assert one.status_code == 200, (path, one.text)
            body = one.json()
            assert set(body) >= properties, (path, properties - set(body))
            left_out = LIST_LEAVES_OUT.get(path, set())
            same = properties - left_out
            assert {k: body[k] for k in same} == {k: items[0][k] for k in same}, path


def _datetime_fields_without_utc() -> list[str]:
    import importlib
    import pkgutil

    import gridgov

    missing = []
    for info in pkgutil.iter_modules(gridgov.__path__):
        try:
            module = importlib.import_module(f"gridgov.{info.name}.schemas")
        except ModuleNotFoundError:
            continue
        for value in vars(module).values():
            if not (isinstance(value, type) and issubclass(value, BaseModel)):
                continue
            if value.__module__ != module.__name__:
                continue
            for name, field in value.model_fields.items():
                if not wire._is_datetime(field.annotation):
                    continue
                if not any(getattr(m, "func", None) is wire._in_utc for m in field.metadata):
                    missing.append(f"{value.__module__}.{value.__name__}.{name}")
    return missing


def test_every_schema_datetime_is_written_in_utc():
    # A bare ``datetime`` would write the offset it holds (+08:00 for a deadline computed in
    # Asia/Shanghai, the client's own for an echoed input): UtcDatetime writes Z.
    assert _datetime_fields_without_utc() == []
