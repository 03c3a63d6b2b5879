"""Keyset-paginated lists whose rows come from SQL; geometry passes through as raw GeoJSON text.

Rows are plain mappings; a ``geometry`` column holds the GeoJSON text PostGIS produced, which is
spliced into the output unparsed (``orjson.Fragment``) unless the caller asked for GCJ-02/BD-09.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gridgov import wire
from gridgov.geo import CoordSys
from gridgov.geojson import to_geojson

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class PageRequest:
    limit: int
    cursor: str | None = None
    coord_sys: CoordSys = CoordSys.wgs84
    with_geometry: bool = True


@dataclass
class PageResult:
    rows: Sequence[Mapping[str, Any]]
    next_cursor: str | None


def render_page(
    result: PageResult,
    *,
    coord_sys: CoordSys,
    next_url: Callable[[str], str],
    geometry_key: str = "geometry",
) -> bytes:
    items = []
    for row in result.rows:
        item = dict(row)
        if "geometry" in item:
            geometry = item.pop("geometry")
            if geometry is None:
                item[geometry_key] = None
            elif coord_sys == CoordSys.wgs84:
                item[geometry_key] = orjson.Fragment(geometry)
            else:
                item[geometry_key] = to_geojson(geometry, coord_sys)
        items.append(item)
    body: dict[str, Any] = {"items": items}
    body["next"] = next_url(result.next_cursor) if result.next_cursor else None
    return wire.dumps(body)
