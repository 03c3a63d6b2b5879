"""The demo county loads through the same write rules as an import, and is usable."""

from __future__ import annotations

from sqlalchemy import text

from gridgov.demo.generate import generate_county
from gridgov.demo.load import load_demo


def test_small_demo_county_loads_through_the_rules(session):
    county = generate_county(households=3000, seed=3, townships=3, villages=12, grids=80)
    summary = load_demo(session, county=county, with_users=False, activity=False)
    assert (summary.townships, summary.villages) == (3, 12)
    # Two more villages registered before their boundary (the QA layer lists them).
    assert summary.villages_without_boundary == 2
    unbounded = session.scalar(
        text(
            "SELECT count(*) FROM admin_units WHERE county_code = :c AND level = 'village'"
            " AND geom IS NULL"
        ),
        {"c": county.county.code},
    )
    assert unbounded == 2
    assert summary.grids == len(county.grids)
    assert summary.households == 3000
    assert summary.members == len(county.members.name)
    code = county.county.code
    counts = session.execute(
        text(
            "SELECT count(*) FILTER (WHERE grid_id IS NOT NULL) AS in_grid, count(*) AS total, "
            "count(*) FILTER (WHERE 'outside_grid' = ANY(flags)) AS flagged "
            "FROM households WHERE county_code = :c"
        ),
        {"c": code},
    ).one()
    # Every generated household lies inside one of its village's grids.
    assert counts.total == 3000 and counts.in_grid == 3000 and counts.flagged == 0
    # The derived grid is the generator's grid for every household.
    mismatched = session.scalar(
        text(
            "SELECT count(*) FROM households h JOIN grids g ON g.id = h.grid_id "
            "WHERE h.county_code = :c AND left(g.code, 12) <> (SELECT code FROM admin_units "
            "WHERE id = h.village_id)"
        ),
        {"c": code},
    )
    assert mismatched == 0
    chiefs = session.scalar(
        text("SELECT count(*) FROM grids WHERE county_code = :c AND chief_member_id IS NOT NULL"),
        {"c": code},
    )
    assert chiefs > 0


def test_demo_data_breaking_a_rule_is_refused(session):
    """A corrupted generator output (a grid moved out of its village) must not load."""
    import dataclasses

    import pytest
    import shapely

    from gridgov.errors import RuleViolation

    county = generate_county(households=500, seed=4, townships=2, villages=4, grids=12)
    moved = dataclasses.replace(
        county.grids[0], geom=shapely.affinity.translate(county.grids[0].geom, xoff=0.2)
    )
    county.grids[0] = moved
    with pytest.raises(RuleViolation) as caught:
        load_demo(session, county=county, with_users=False)
    assert any(e.code in ("outside_parent", "overlaps_sibling") for e in caught.value.errors)
