"""Pure geometry helpers: Chinese coordinate systems, CRS handling, extent checks, tiles.

Nothing in this package touches the database, the web layer or files.
"""

from gridgov.geo.coords import (
    GCJ_RECT,
    CoordSys,
    bd09_to_gcj02,
    bd09_to_wgs84,
    convert,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    transform_geometry,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from gridgov.geo.crs import (
    CGCS2000,
    WEB_MERCATOR,
    WGS84,
    GeometryTransform,
    is_geographic_wgs84_like,
    resolve_crs,
    transformer_from_wgs84,
    transformer_to_wgs84,
)
from gridgov.geo.extent import (
    CHINA_EXTENT,
    GeoProblem,
    bounds_in_china,
    bounds_look_swapped,
    check_coordinates,
    in_china,
    looks_swapped,
)
from gridgov.geo.tiles import (
    is_valid_tile,
    lonlat_to_3857,
    lonlat_to_tile,
    mercator_to_lonlat,
    resolution_m,
    tile_bounds_3857,
    tile_bounds_wgs84,
    tiles_covering,
)

__all__ = [
    "CGCS2000",
    "CHINA_EXTENT",
    "GCJ_RECT",
    "WEB_MERCATOR",
    "WGS84",
    "CoordSys",
    "GeoProblem",
    "GeometryTransform",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "bounds_in_china",
    "bounds_look_swapped",
    "check_coordinates",
    "convert",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china",
    "is_geographic_wgs84_like",
    "is_valid_tile",
    "lonlat_to_3857",
    "lonlat_to_tile",
    "looks_swapped",
    "mercator_to_lonlat",
    "resolution_m",
    "resolve_crs",
    "tile_bounds_3857",
    "tile_bounds_wgs84",
    "tiles_covering",
    "transform_geometry",
    "transformer_from_wgs84",
    "transformer_to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]
