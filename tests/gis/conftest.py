"""One app for every map test (building one per test costs more than most tests here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from tests.conftest import bind_session


@pytest.fixture(scope="module")
def shared_app() -> FastAPI:
    from gridgov.app import create_app

    return create_app()


@pytest.fixture
def app(shared_app: FastAPI, session: Session) -> Iterator[FastAPI]:
    """Overrides conftest's ``app``: the shared app bound to this test's rolled-back session."""

    bind_session(shared_app, session)
    yield shared_app
    shared_app.dependency_overrides.clear()


@pytest.fixture(scope="module")
def crafted_qa(engine, world) -> Iterator[None]:
    """tests/gis/test_qa.py's crafted findings, committed (OGC item pages and the GDAL server
    read committed data through their own connections), and undone at the end of the module:
    东村-003 over both grids of 东村, 西村-002 out of 西村 (and over 西村-001), household A1-1
    filed under 东村-002, 党员甲 living ~11 km from household A2-2 they contact, and a village of
    乙乡 registered without a boundary."""
    from sqlalchemy import text

    from tests.fixtures.world import COUNTY, GRID_A2, TOWN_B, VILLAGE_A, VILLAGE_B

    boxes = {
        VILLAGE_A + "003": (VILLAGE_A, (111.04, 26.0, 111.06, 26.01)),
        VILLAGE_B + "002": (VILLAGE_B, (111.09, 26.15, 111.11, 26.16)),
    }
    member, household = world.members["党员甲"], world.households["A1-1"]
    unbounded = TOWN_B + "299"  # registered from the code list, no boundary drawn yet
    with Session(engine) as s, s.begin():
        s.execute(
            text(
                "INSERT INTO admin_units (code, name, level, parent_id, county_code)"
                " VALUES (:code, '无界村', 'village', :parent, :county)"
            ),
            dict(code=unbounded, parent=world.units[TOWN_B], county=COUNTY),
        )
        for code, (village, (x0, y0, x1, y1)) in boxes.items():
            s.execute(
                text(
                    "INSERT INTO grids (code, name, village_id, county_code, kind, geom,"
                    " valid_from) VALUES (:code, '测试网格', :village_id, :county, 'general',"
                    " ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)), current_date)"
                ),
                dict(code=code, village_id=world.units[village], county=COUNTY)
                | dict(x0=x0, y0=y0, x1=x1, y1=y1),
            )
        old_grid = s.execute(
            text("SELECT grid_id FROM households WHERE id = :h"), dict(h=household)
        ).scalar_one()
        s.execute(
            text("UPDATE households SET grid_id = :g WHERE id = :h"),
            dict(g=world.grids[GRID_A2], h=household),
        )
        old_geom = s.execute(
            text("SELECT ST_AsEWKT(geom) FROM party_members WHERE id = :m"), dict(m=member)
        ).scalar()
        s.execute(
            text("UPDATE party_members SET geom = ST_Point(111.01, 26.01, 4326) WHERE id = :m"),
            dict(m=member),
        )
        contact = s.execute(
            text(
                "INSERT INTO contacts (county_code, village_id, member_id, household_id, role,"
                " valid_from) VALUES (:county, :village, :m, :h, 'secondary', current_date)"
                " RETURNING id"
            ),
            dict(
                county=COUNTY,
                village=world.units[VILLAGE_A],
                m=member,
                h=world.households["A2-2"],
            ),
        ).scalar_one()
    try:
        yield
    finally:
        with Session(engine) as s, s.begin():
            s.execute(text("DELETE FROM contacts WHERE id = :c"), dict(c=contact))
            s.execute(
                text("UPDATE party_members SET geom = ST_GeomFromEWKT(:geom) WHERE id = :m"),
                dict(geom=old_geom, m=member),
            )
            s.execute(
                text("UPDATE households SET grid_id = :g WHERE id = :h"),
                dict(g=old_grid, h=household),
            )
            s.execute(text("DELETE FROM grids WHERE code = ANY(:codes)"), dict(codes=list(boxes)))
            s.execute(text("DELETE FROM admin_units WHERE code = :code"), dict(code=unbounded))
