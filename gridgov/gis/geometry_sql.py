"""SQL expressions for geometries on their way out (shared by the layers and the QA checks)."""

from __future__ import annotations


def rounded_geometry_sql(expr: str, geometry_type: str) -> str:
    """A geometry as written with 6 decimals (~0.1 m), RFC 7946 ring order for areas.

    Plain rounding of the printed coordinates can collapse a thin but valid part into a ring
    of zero area (two identical positions). Areas are snap-rounded to the same 1e-6° grid
    first (ST_ReducePrecision keeps the result valid): a part thinner than the grid is
    dropped, the rest of the geometry kept; one made only of such parts comes out empty.
    """
    if geometry_type != "polygon":
        return expr
    return f"ST_ForcePolygonCCW(ST_Multi(ST_ReducePrecision({expr}, 0.000001)))"
