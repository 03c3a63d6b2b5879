"""schemas/ is the contract other teams code against: it must match what the code generates."""

from __future__ import annotations

import json
from pathlib import Path

from gridgov import schemas_export

COMMITTED = Path(__file__).resolve().parent.parent / "schemas"
STALE = "schemas/ is stale: run `make schemas`"
REQUIRED = {
    "HouseholdCreate",
    "HouseholdUpdate",
    "HouseholdRead",
    "GridCreate",
    "GridRead",
    "UnitCreate",
    "MemberCreate",
    "TokenResponse",
}


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_committed_schemas_are_fresh(tmp_path):
    schemas_export.export(tmp_path)
    generated, committed = _tree(tmp_path), _tree(COMMITTED)
    missing = sorted(set(generated) - set(committed))
    extra = sorted(set(committed) - set(generated))
    changed = sorted(k for k in set(generated) & set(committed) if generated[k] != committed[k])
    assert not (missing or extra or changed), (
        f"{STALE} (missing {missing}, no longer generated {extra}, changed {changed})"
    )


def test_schemas_cover_the_published_payloads(tmp_path):
    schemas_export.export(tmp_path)
    names = {p.stem for p in (tmp_path / "json").glob("*.json")}
    assert names >= REQUIRED
    for name in names:
        schema = json.loads((tmp_path / "json" / f"{name}.json").read_text(encoding="utf-8"))
        assert schema["$id"].endswith(f"/{name}.json") and schema["title"] == name
    openapi = json.loads((tmp_path / "openapi.json").read_text(encoding="utf-8"))
    assert openapi["openapi"].startswith("3.")
    assert "/api/v1/households" in openapi["paths"] and "/api/v1/auth/token" in openapi["paths"]
    assert "generated" in (tmp_path / "README.md").read_text(encoding="utf-8")


def test_export_is_deterministic_and_drops_retired_payloads(tmp_path):
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "Retired.json").write_text("{}")
    schemas_export.export(tmp_path)
    first = _tree(tmp_path)
    assert "json/Retired.json" not in first
    schemas_export.export(tmp_path)
    assert _tree(tmp_path) == first
