"""The API contract as files: ``schemas/openapi.json`` and JSON Schemas of the payloads.

Mobile and web teams code against ``schemas/``; a test regenerates it and fails when the
committed copy is stale (``make schemas`` rewrites it). Output is deterministic — keys sorted,
two-space indent, UTF-8, no timestamps — so that a diff shows exactly what changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

SCHEMA_BASE = "https://gridgov.cn/schemas/json/"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

README = """\
# schemas/ — the gridgov API contract (generated)

Do not edit by hand: these files are generated from the code by `make schemas`
(`gridgov schemas`), and a test fails when they no longer match it.

- `openapi.json` — the OpenAPI document of the whole HTTP API (also served at `/openapi.json`).
- `json/<Name>.json` — JSON Schema (draft 2020-12) of each request and response payload other
  teams code against; `$id` is `{base}<Name>.json`. `*Create`/`*Update` describe what a client
  sends, `*Read` and `TokenResponse` what it receives.

Errors are RFC 9457 `application/problem+json` objects (`type`, `title`, `status`, `code`,
`detail`, and for validation `errors[]` with `loc`, `msg`, `code`, `index`, `id`, `detail_en`):
`components/schemas/Problem`, declared on every operation for each status it can answer
(`components/responses/*`); see DESIGN §4. Times are RFC 3339 in UTC with `Z`.
"""


def payload_models() -> list[tuple[type[BaseModel], str]]:
    """(model, mode) of every published payload: "validation" for input, "serialization" out."""
    from gridgov.auth.schemas import MeRead, RefreshRequest, TokenResponse
    from gridgov.contacts.schemas import (
        AutoAssign,
        AutoAssignPlan,
        ContactCreate,
        ContactEnd,
        ContactRead,
        CoverageReport,
        HouseholdContacts,
        ReleaseResult,
    )
    from gridgov.hierarchy.schemas import (
        GridCreate,
        GridRead,
        GridUpdate,
        PartyOrgCreate,
        PartyOrgRead,
        PartyOrgUpdate,
        UnitCreate,
        UnitRead,
        UnitUpdate,
    )
    from gridgov.households.schemas import HouseholdCreate, HouseholdRead, HouseholdUpdate
    from gridgov.members.schemas import MemberCreate, MemberRead, MemberUpdate

    inputs = [
        HouseholdCreate,
        HouseholdUpdate,
        GridCreate,
        GridUpdate,
        UnitCreate,
        UnitUpdate,
        PartyOrgCreate,
        PartyOrgUpdate,
        MemberCreate,
        MemberUpdate,
        RefreshRequest,
        ContactCreate,
        ContactEnd,
        AutoAssign,
    ]
    outputs = [HouseholdRead, GridRead, UnitRead, PartyOrgRead, MemberRead, TokenResponse, MeRead]
    outputs += [ContactRead, HouseholdContacts, CoverageReport, ReleaseResult, AutoAssignPlan]
    from gridgov.visits import schemas as visits

    inputs += [visits.VisitIn, visits.VisitBatch, visits.VisitReview]
    outputs += [visits.VisitRead, visits.VisitBatchResult, visits.AttachmentRead]
    outputs += [visits.DueHousehold]
    from gridgov.sync.schemas import SyncPage

    outputs += [SyncPage]
    from gridgov.issues import schemas as issues

    inputs += [issues.IssueCreate, issues.TransitionCreate]
    outputs += [issues.IssueRead]
    return [(m, "validation") for m in inputs] + [(m, "serialization") for m in outputs]


def dumps(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def openapi_document() -> dict[str, Any]:
    from gridgov.app import create_app

    return create_app().openapi()


def json_schema(model: type[BaseModel], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode=mode)  # type: ignore[arg-type]
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{SCHEMA_BASE}{model.__name__}.json",
        **schema,
    }


def render() -> dict[str, bytes]:
    """Every file of ``schemas/`` by relative path → its exact bytes."""
    files = {
        "README.md": README.format(base=SCHEMA_BASE).encode(),
        "openapi.json": dumps(openapi_document()),
    }
    for model, mode in payload_models():
        files[f"json/{model.__name__}.json"] = dumps(json_schema(model, mode))
    return files


def export(target: Path) -> list[Path]:
    """Write ``render()`` under ``target``; JSON Schemas of payloads no longer published go.

    Returns the files written, in order.
    """
    files = render()
    (target / "json").mkdir(parents=True, exist_ok=True)
    for old in (target / "json").glob("*.json"):
        if f"json/{old.name}" not in files:
            old.unlink()
    written = []
    for relative, content in sorted(files.items()):
        path = target / relative
        path.write_bytes(content)
        written.append(path)
    return written
