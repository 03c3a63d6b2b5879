"""GET /api/v1/sync and personal data: the grid member's offline rule (its grid's households in
clear, one audit entry per page with counts), everybody else masked unless ``pii=true``; and
cursors that the server did not sign for this user and scope answer ``reset``, never data."""

from __future__ import annotations

import base64
import json

from sqlalchemy import text

from tests.fixtures.world import COUNTY, GRID_A1, GRID_A2

HEAD, PHONE = "王建国", "13912345678"


def sync_reads(committed, username: str) -> list[dict]:
    with committed.engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT entity_id, after FROM audit_log WHERE action = 'read_pii' "
                "AND entity = 'sync' AND user_id = :u ORDER BY id"
            ),
            {"u": committed.world.users[username]},
        ).all()
    return [{"entity_id": r.entity_id, "after": r.after} for r in rows]


def household(page: dict, hid: int) -> dict:
    (item,) = [h for h in page["upserts"]["households"] if h["id"] == hid]
    return item


# -- D7: whose names and phones a pull carries ----------------------------------------------------


def test_grid_member_pull_shows_its_households_and_is_audited_per_page(committed):
    w = committed.world
    before = len(sync_reads(committed, "grid_a1"))
    pages, cursor = [], None
    while True:
        page = committed.pull("grid_a1", cursor, limit=2)
        pages.append(page)
        cursor = page["next"]
        if not page["has_more"]:
            break
    households = [h for p in pages for h in p["upserts"]["households"]]
    a1 = [h for h in households if h["id"] == w.households["A1-1"]]
    assert a1 and (a1[0]["head_name"], a1[0]["phone"]) == (HEAD, PHONE)
    assert all("*" not in h["head_name"] for h in households)
    assert all(h["grid_id"] == w.grids[GRID_A1] for h in households)
    assert pages[-1]["due"] and all("*" not in d["head_name"] for d in pages[-1]["due"])

    reads = sync_reads(committed, "grid_a1")[before:]
    showing = [p for p in pages if p["upserts"]["households"] or p["due"]]
    assert len(reads) == len(showing)  # one entry per page that showed personal data
    for read, page in zip(reads, showing, strict=True):
        n = len(page["upserts"]["households"])
        assert read["entity_id"] == f"page:{n}"
        assert read["after"] == {"households": n, "due": len(page["due"] or [])}
        assert HEAD not in json.dumps(read, ensure_ascii=False)  # counts, never who


def test_other_roles_pull_masked_unless_asked(committed):
    w = committed.world
    hid = w.households["A1-1"]
    before = len(sync_reads(committed, "village_a"))
    page = committed.pull("village_a")
    assert (household(page, hid)["head_name"], household(page, hid)["phone"]) == (
        "王**",
        "139****5678",
    )
    assert HEAD not in json.dumps(page, ensure_ascii=False)
    assert PHONE not in json.dumps(page)
    assert len(sync_reads(committed, "village_a")) == before  # nothing shown, nothing recorded

    clear = committed.pull("village_a", pii="true")
    assert (household(clear, hid)["head_name"], household(clear, hid)["phone"]) == (HEAD, PHONE)
    (read,) = sync_reads(committed, "village_a")[before:]
    assert read["after"]["households"] == len(clear["upserts"]["households"])

    gis = committed.pull("gis")
    assert household(gis, hid)["head_name"] == "王**"
    r = committed.client.get(
        "/api/v1/sync", params={"pii": "true"}, headers=committed.headers("auditor")
    )
    assert r.status_code == 403 and r.json()["code"] == "pii_forbidden"


# -- D2: forged, altered and foreign cursors ------------------------------------------------


def unsigned(*key: object) -> str:
    """A cursor as the old, unsigned format made them: base64url JSON."""
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unit_id(committed, code: str) -> int:
    with committed.engine.connect() as c:
        return c.scalar(text("SELECT id FROM admin_units WHERE code = :c"), {"c": code})


def assert_reset(page: dict) -> None:
    assert page["reset"] is True and page["next"] is None
    assert all(v == [] for v in page["tombstones"].values()), page["tombstones"]
    assert all(v == [] for v in page["upserts"].values())


def test_forged_cursor_naming_the_county_is_reset(committed):
    """``[user, "u<county>", "x", 0, 0]`` used to answer tombstones for the whole county."""
    me = committed.world.users["grid_a1"]
    county = unit_id(committed, COUNTY)
    for forged in (
        unsigned(me, f"u{county}", "x", 0, 0),
        unsigned(me, "u1", "x", 0, 0),
        unsigned(me, f"g{committed.world.grids[GRID_A2]}", "x", 0, 0),
        unsigned(committed.world.users["county"], f"u{county}", "x", 0, 0),
    ):
        assert_reset(committed.pull("grid_a1", forged))
        assert_reset(committed.pull("grid_a1", forged + ".AAAAAAAAAAAAAAAAAAAAAA"))


def test_altered_cursor_is_reset(committed):
    genuine = committed.drain("grid_a1")
    body, _, signature = genuine.partition(".")
    fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    fields[1] = f"u{unit_id(committed, COUNTY)}"  # claim another scope, keep the signature
    altered = unsigned(*fields) + "." + signature
    assert_reset(committed.pull("grid_a1", altered))
    fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    fields[3] = 0  # rewind, keep the signature
    assert_reset(committed.pull("grid_a1", unsigned(*fields) + "." + signature))
    assert_reset(committed.pull("grid_a1", body + "." + signature[:-2] + "AA"))
    assert committed.pull("grid_a1", genuine)["reset"] is False


def test_another_users_cursor_is_reset(committed):
    county_cursor = committed.drain("county")
    assert_reset(committed.pull("grid_a1", county_cursor))
    assert_reset(committed.pull("village_a", county_cursor))
    assert committed.pull("county", county_cursor)["reset"] is False
