"""The OpenAPI links of the document (gridgov/openapi_links.py): present, pointing at real
operations and parameters, and a dead link fails the build of the document."""

from __future__ import annotations

import copy

import pytest

from gridgov.openapi_links import LINKS, Link, with_links


@pytest.fixture(scope="module")
def document() -> dict:
    from gridgov.app import create_app

    return create_app().openapi()


def operations(document: dict) -> dict[str, dict]:
    return {
        op["operationId"]: op
        for item in document["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }


def test_creations_link_to_reading_changing_and_removing_what_they_made(document):
    ops = operations(document)
    links = ops["households-create_household"]["responses"]["201"]["links"]
    assert links["GetHousehold"] == {
        "operationId": "households-get_household",
        "description": "查看该户",
        "parameters": {"household_id": "$response.body#/id"},
    }
    assert {"UpdateHousehold", "RemoveHousehold", "ReportIssue"} <= set(links)
    assert links["ReportIssue"]["requestBody"] == {
        "household_id": "$response.body#/id",
        "location": "$response.body#/location",
    }
    moved_on = ops["issues-transition_issue"]["responses"]["200"]["links"]["TransitionIssue"]
    assert moved_on["requestBody"] == {"version": "$response.body#/version"}
    # Every creation answer (201) says where to go next.
    unlinked = [
        op_id
        for op_id, op in ops.items()
        if "201" in op["responses"] and not op["responses"]["201"].get("links")
    ]
    assert unlinked == []


def test_every_link_names_an_operation_and_its_parameters(document):
    ops = operations(document)
    count = 0
    for op in ops.values():
        for response in op["responses"].values():
            for name, link in response.get("links", {}).items():
                count += 1
                target = ops[link["operationId"]]
                names = {p["name"] for p in target.get("parameters", [])}
                assert set(link.get("parameters", {})) <= names, name
                assert "requestBody" not in link or "requestBody" in target, name
    assert count == sum(len(v) for v in LINKS.values())


@pytest.mark.parametrize(
    ("link", "message"),
    [
        (Link("X", "households-no_such", "x", {"household_id": "$response.body#/id"}), "unknown"),
        (Link("X", "households-get_household", "x", {"hid": "$response.body#/id"}), "parameter"),
        (Link("X", "households-get_household", "x", body={"a": 1}), "takes no body"),
    ],
)
def test_a_dead_link_fails_the_document(document, monkeypatch, link, message):
    monkeypatch.setitem(LINKS, ("households-create_household", "201"), [link])
    bare = copy.deepcopy(document)
    with pytest.raises(ValueError, match=message):
        with_links(bare)
