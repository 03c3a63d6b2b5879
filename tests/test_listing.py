"""The keyset-read kit (gridgov.listing, gridgov.pagination): clauses, bbox, cursors, pages."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from gridgov import listing as kit
from gridgov.errors import PayloadInvalid
from gridgov.geo import CoordSys
from gridgov.pagination import decode_id_cursor, decode_keys, encode_cursor

VISITS_KEY = kit.Keyset(
    (kit.Key("v.visited_at", "visited_at", datetime), kit.Key("v.id", "id")), descending=True
)


def raw_cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def invalid(exc: pytest.ExceptionInfo[PayloadInvalid], field: str, code: str) -> None:
    (error,) = exc.value.errors
    assert error.loc == ["query", field] and error.code == code
    assert error.msg  # Chinese, for the client


# -- clauses ------------------------------------------------------------------------------------


def test_and_skips_filters_not_asked_for_and_keeps_parameters():
    where = kit.and_(
        kit.Clause("h.removed_at IS NULL"),
        kit.equal("g.code", "grid_code", None),
        kit.equal("g.code", "grid_code", ""),  # an empty query parameter filters nothing
        kit.has_label("h.tags", "tag", "低保户"),
        kit.equal("m.flowing", "flowing", False),  # False is a value, not "not asked"
        kit.code_prefix("v.code", "439902"),
    )
    assert where.sql == (
        "(h.removed_at IS NULL) AND (h.tags @> ARRAY[CAST(:tag AS varchar)])"
        " AND (m.flowing = :flowing) AND (v.code LIKE :unit_prefix)"
    )
    assert where.params == {"tag": "低保户", "flowing": False, "unit_prefix": "439902%"}


def test_and_or_of_nothing_and_of_one():
    assert kit.and_() == kit.and_(None, None) == kit.TRUE
    assert kit.or_(None) == kit.FALSE  # "any of nothing" never widens to everything
    one = kit.Clause("a = :a", {"a": 1})
    assert kit.and_(None, one) == one == kit.or_(one, None)


def test_or_nests_inside_and():
    in_scope = kit.or_(
        kit.Clause("u.id = ANY(:ids)", {"ids": "{1}"}),
        kit.and_(
            kit.Clause("u.valid_to IS NOT NULL"), kit.Clause("p.id = ANY(:ids)", {"ids": "{1}"})
        ),
    )
    where = kit.and_(in_scope, kit.when(True, "u.level = :level", level="village"))
    assert where.sql == (
        "((u.id = ANY(:ids)) OR ((u.valid_to IS NOT NULL) AND (p.id = ANY(:ids))))"
        " AND (u.level = :level)"
    )
    assert where.params == {"ids": "{1}", "level": "village"}
    assert kit.when(False, "u.level = 'x'") is None


def test_one_name_bound_to_two_values_is_refused():
    with pytest.raises(ValueError, match=":q"):
        kit.and_(kit.Clause("a = :q", {"q": 1}), kit.Clause("b = :q", {"q": 2}))


def test_compare_takes_only_range_operators():
    assert kit.compare("v.visited_at", ">=", "since", None) is None
    assert kit.compare("v.visited_at", "<", "until", 5) == kit.Clause(
        "v.visited_at < :until", {"until": 5}
    )
    with pytest.raises(ValueError):
        kit.compare("v.visited_at", "; DROP", "x", 1)


# -- bbox ---------------------------------------------------------------------------------------


def test_bbox_parser_takes_four_or_six_numbers():
    assert kit.parse_bbox("111,26,111.5,26.5") == (111.0, 26.0, 111.5, 26.5)
    assert kit.parse_bbox("111, 26 ,111.5,26.5") == (111.0, 26.0, 111.5, 26.5)
    # OGC API Features allows heights; they do not matter here.
    assert kit.parse_bbox("111,26,0,111.5,26.5,100") == (111.0, 26.0, 111.5, 26.5)


def test_bbox_reaching_beyond_the_world_is_clipped_to_it():
    assert kit.parse_bbox("-1e308,-1e308,1e308,1e308") == kit.WORLD
    assert kit.parse_bbox("-181,0,10,91") == (-180.0, 0.0, 10.0, 90.0)


@pytest.mark.parametrize(
    "value",
    ["", "1,2,3", "1,2,3,4,5", "a,b,c,d", "NaN,1,2,3", "1e999,1,2,3", "1,2,inf,3", "1;2;3;4"],
)
def test_bbox_that_is_not_four_finite_numbers_names_bbox(value):
    with pytest.raises(PayloadInvalid) as exc:
        kit.parse_bbox(value)
    invalid(exc, "bbox", "invalid_bbox")
    assert "4 个数" in exc.value.errors[0].msg


@pytest.mark.parametrize("value", ["2,0,1,1", "0,2,1,1"])
def test_bbox_minimum_above_maximum_names_bbox(value):
    with pytest.raises(PayloadInvalid) as exc:
        kit.parse_bbox(value)
    invalid(exc, "bbox", "invalid_bbox")
    assert "最小值" in exc.value.errors[0].msg


def test_bbox_clause_converts_gcj02_to_wgs84():
    assert kit.bbox_clause("h.geom", None, CoordSys.wgs84) is None
    plain = kit.bbox_clause("h.geom", (111.0, 26.0, 111.1, 26.1), CoordSys.wgs84)
    assert plain is not None
    assert plain.sql == "h.geom && ST_MakeEnvelope(:bx0, :by0, :bx1, :by1, 4326)"
    assert plain.params == {"bx0": 111.0, "by0": 26.0, "bx1": 111.1, "by1": 26.1}
    shifted = kit.bbox_clause("h.geom", (111.0, 26.0, 111.1, 26.1), CoordSys.gcj02)
    assert shifted is not None
    # GCJ-02 is WGS84 shifted by a few hundred metres in China: the box moves back by as much.
    for key in ("bx0", "by0", "bx1", "by1"):
        assert 0 < abs(shifted.params[key] - plain.params[key]) < 0.01


# -- cursors ------------------------------------------------------------------------------------


def test_id_cursor_round_trip_and_compatibility():
    assert decode_id_cursor(None) == 0
    assert decode_id_cursor(encode_cursor(42)) == 42
    assert encode_cursor(42) == "WzQyXQ"  # cursors handed out before the kit stay valid
    after = kit.by_id("h").after(encode_cursor(42))
    assert after == kit.Clause("h.id > :key_0", {"key_0": 42})
    assert kit.by_id("h").cursor({"id": 42, "x": 1}) == encode_cursor(42)


def test_timestamp_cursor_round_trip():
    at = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
    cursor = VISITS_KEY.cursor({"visited_at": at, "id": 7})
    # The shape GET /visits has always handed out: [ISO 8601 text, id]
    assert cursor == encode_cursor("2026-05-01T08:30:00+00:00", 7)
    assert decode_keys(cursor, (datetime, int)) == [at, 7]
    after = VISITS_KEY.after(cursor)
    assert after is not None
    assert after.sql == "(v.visited_at, v.id) < (:key_0, :key_1)"
    assert after.params == {"key_0": at, "key_1": 7}
    assert VISITS_KEY.order_by() == "ORDER BY v.visited_at DESC, v.id DESC"
    assert kit.by_id("h").order_by() == "ORDER BY h.id"
    assert VISITS_KEY.after(None) is None and VISITS_KEY.after("") is None


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        "@@@",
        "WyJhIl0",  # ["a"]
        raw_cursor([1, 2]),  # wrong arity
        raw_cursor({"id": 1}),
        raw_cursor([True]),
        raw_cursor([-1]),
        raw_cursor([2**63]),  # beyond bigint: a 422, never a 500 from the database
        raw_cursor([1.5]),
        raw_cursor([None]),
    ],
)
def test_invalid_id_cursor(cursor):
    with pytest.raises(PayloadInvalid) as exc:
        kit.by_id("h").after(cursor)
    invalid(exc, "cursor", "invalid_cursor")


@pytest.mark.parametrize(
    "cursor",
    [
        raw_cursor(["yesterday", 1]),
        raw_cursor([20260501, 1]),
        raw_cursor(["2026-05-01T08:30:00+00:00", "1"]),
        raw_cursor(["2026-05-01T08:30:00+00:00", 2**64]),
        raw_cursor(["2026-05-01T08:30:00+00:00"]),
    ],
)
def test_invalid_timestamp_cursor(cursor):
    with pytest.raises(PayloadInvalid) as exc:
        VISITS_KEY.after(cursor)
    invalid(exc, "cursor", "invalid_cursor")


# -- pages (PostgreSQL) -------------------------------------------------------------------------

NUMBERS = "SELECT x.id, x.id * 10 AS ten FROM generate_series(1, 7) AS x(id)"


def test_fetch_page_reads_limit_plus_one_and_walks_every_row_once(session: Session):
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = kit.fetch_page(
            session,
            NUMBERS,
            kit.Clause("x.id <> :skip", {"skip": 4}),
            kit.by_id("x"),
            cursor=cursor,
            limit=2,
        )
        pages += 1
        seen += [r["id"] for r in page.rows]
        assert all(r["ten"] == r["id"] * 10 for r in page.rows)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [1, 2, 3, 5, 6, 7] and pages == 3  # the last full page says "no more"


def test_fetch_page_descending_two_column_key(session: Session):
    select = (
        "SELECT t.at AS visited_at, t.id FROM (VALUES"
        " ('2026-01-02T00:00:00Z'::timestamptz, 1), ('2026-01-02T00:00:00Z', 2),"
        " ('2026-01-01T00:00:00Z', 3), ('2026-01-03T00:00:00Z', 4)) AS t(at, id)"
    )
    key = kit.Keyset((kit.Key("t.at", "visited_at", datetime), kit.Key("t.id", "id")), True)
    first = kit.fetch_page(session, select, kit.TRUE, key, cursor=None, limit=2)
    assert [r["id"] for r in first.rows] == [4, 2]
    rest = kit.fetch_page(session, select, kit.TRUE, key, cursor=first.next_cursor, limit=2)
    assert [r["id"] for r in rest.rows] == [1, 3] and rest.next_cursor is None


def test_render_page_splices_geometry_and_next_link():
    page = kit.PageResult(
        [
            {"id": 1, "geometry": '{"type":"Point","coordinates":[111.0,26.0]}'},
            {"id": 2, "geometry": None},
        ],
        encode_cursor(2),
    )
    body = json.loads(
        kit.render_page(
            page,
            coord_sys=CoordSys.wgs84,
            next_url=lambda c: f"/x?cursor={c}",
            geometry_key="location",
        )
    )
    assert body == {
        "items": [
            {"id": 1, "location": {"type": "Point", "coordinates": [111.0, 26.0]}},
            {"id": 2, "location": None},
        ],
        "next": f"/x?cursor={encode_cursor(2)}",
    }
