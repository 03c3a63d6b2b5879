"""Vector tiles (MVT) per layer: built by PostGIS, cached in-process by layer data version.

A tile's ETag is derived from (layer, data version, caller's scope, z/x/y, day) before anything
is rendered, so ``If-None-Match`` is answered without rendering. Any write to a table a layer
reads bumps its version (triggers, migration 0005); each process holds the versions in memory,
told of changes by NOTIFY (``gridgov.gis.versions``), and asks the database when it cannot
listen. Edits invalidate exactly the layers they touch.

Below z13 the grids' tiles read their geometry prepared per zoom in advance (grid_tile_geoms,
migration 0013: simplified, and snapped and validated in the zoom's pixel grid, kept by
triggers): a grid inside the tile is only moved, not clipped and validated per request. Cluster
tiles of households are summed from a pyramid of per-cell counts (household_clusters,
migration 0014) instead of grouping every point of the tile. Those tables are written by the
statements that write the layers' own tables, whose change notes therefore version them too.

Rendered tiles are kept per process in an LRU keyed by that ETag and capped by the memory its
entries take (``GRIDGOV_MAPS__TILE_CACHE_BYTES``; 0 turns it off, so that every request renders
its tile); its hits, misses, evictions and bytes are on /metrics.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.auth.scope import Scope
from gridgov.config import get_settings
from gridgov.db import fetch, read_in_thread
from gridgov.errors import NotFound
from gridgov.geo.tiles import ORIGIN_SHIFT, is_valid_tile, tile_bounds_3857
from gridgov.gis import queries
from gridgov.gis.layers import Layer
from gridgov.gis.service import get_layer
from gridgov.gis.versions import VERSIONS

MAX_ZOOM = 22
# What one cached tile costs besides its body and key objects: its slot in the dict, its node in
# the LRU order and the allocator's headers (measured: ~66 bytes with tracemalloc, which leaves
# out malloc's own headers).
ENTRY_OVERHEAD = 100
# A cluster tile of zoom z reads pyramid level z + 4: 2**4 = CLUSTER_CELLS cells per tile side.
CLUSTER_LEVEL_SHIFT = queries.CLUSTER_CELLS.bit_length() - 1


@dataclass(frozen=True)
class Tile:
    status: int  # 200 with a body, 204 empty, 304 not modified
    etag: str
    body: bytes = b""
    # "hit": answered from this process's cache; "miss": rendered for this request; None: 304.
    cache: str | None = None


@dataclass(frozen=True)
class CacheStats:
    max_bytes: int
    bytes: int
    entries: int
    hits: int
    misses: int
    evictions: int


class TileCache:
    """An LRU of rendered tiles keyed by their ETag, bounded by the memory its entries take
    (body and key objects plus ``ENTRY_OVERHEAD`` each), never by their count. ``max_bytes``
    0 turns it off: nothing is kept and every lookup is a miss. Counts hits, misses and
    evictions for /metrics (gridgov.ops.metrics)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._hits = self._misses = self._evictions = 0
        self._lock = threading.Lock()

    @staticmethod
    def cost(key: str, body: bytes) -> int:
        return sys.getsizeof(key) + sys.getsizeof(body) + ENTRY_OVERHEAD

    def get(self, key: str) -> bytes | None:
        with self._lock:
            body = self._data.get(key)
            if body is None:
                self._misses += 1
                return None
            self._hits += 1
            self._data.move_to_end(key)
            return body

    def put(self, key: str, body: bytes) -> None:
        cost = self.cost(key, body)
        with self._lock:
            if key in self._data or cost > self.max_bytes:
                return
            self._data[key] = body
            self._size += cost
            while self._size > self.max_bytes:
                old_key, old = self._data.popitem(last=False)
                self._size -= self.cost(old_key, old)
                self._evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = 0

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                self.max_bytes,
                self._size,
                len(self._data),
                self._hits,
                self._misses,
                self._evictions,
            )


@lru_cache
def get_cache() -> TileCache:
    """This process's tile cache, sized by ``maps.tile_cache_bytes``."""
    return TileCache(get_settings().maps.tile_cache_bytes)


def layer_version(session: Session, layer: Layer) -> str:
    return str(session.execute(text(queries.version_sql(layer))).scalar_one())


def _etag(layer: Layer, version: str, scope_params: dict[str, Any], z: int, x: int, y: int) -> str:
    # The day is part of it: contact coverage counts depend on today's date.
    day = datetime.now(UTC).date().isoformat()
    key = repr((layer.id, version, sorted(scope_params.items()), z, x, y, day))
    return '"' + hashlib.blake2b(key.encode(), digest_size=12).hexdigest() + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def tile(
    session: Session,
    scope: Scope,
    layer_id: str,
    z: int,
    x: int,
    y: int,
    *,
    if_none_match: str | None = None,
) -> Tile:
    layer, where, params = _prepare(scope, layer_id, z, x, y)
    version = VERSIONS.version(layer.tables) or layer_version(session, layer)
    etag = _etag(layer, version, params, z, x, y)
    if _matches(if_none_match, etag):
        return Tile(304, etag)
    cache = get_cache()
    body = cache.get(etag)
    hit = body is not None
    if body is None:
        body = _render(session, layer, where, params, z, x, y)
        cache.put(etag, body)
    return Tile(200 if body else 204, etag, body, "hit" if hit else "miss")


async def serve(
    session: Session,
    scope: Scope,
    layer_id: str,
    z: int,
    x: int,
    y: int,
    *,
    if_none_match: str | None = None,
) -> Tile:
    """``tile()`` for the event loop: what needs no database — a 304, a cached tile, while the
    layer versions are known in memory — is answered in place; only rendering a tile (or asking
    the database for a version) goes to a worker thread, so a cached tile costs no thread hop."""
    layer, where, params = _prepare(scope, layer_id, z, x, y)
    version = VERSIONS.version(layer.tables)
    if version is None:
        return await read_in_thread(
            session, partial(tile, session, scope, layer_id, z, x, y, if_none_match=if_none_match)
        )
    etag = _etag(layer, version, params, z, x, y)
    if _matches(if_none_match, etag):
        return Tile(304, etag)
    cache = get_cache()
    body = cache.get(etag)
    if body is not None:
        return Tile(200 if body else 204, etag, body, "hit")
    # Rendered and the transaction ended in one trip to a worker thread (not two).
    body = await read_in_thread(session, partial(_render, session, layer, where, params, z, x, y))
    cache.put(etag, body)
    return Tile(200 if body else 204, etag, body, "miss")


def _prepare(
    scope: Scope, layer_id: str, z: int, x: int, y: int
) -> tuple[Layer, str, dict[str, Any]]:
    layer = get_layer(layer_id)
    if not is_valid_tile(z, x, y, max_zoom=MAX_ZOOM):
        raise NotFound("瓦片")
    if layer.clusters is not None and clustered(layer, z):
        where, params = queries.cluster_where_sql(layer, scope)
    else:
        where, params = queries.where_sql(layer, scope)
    return layer, where, params


def clustered(layer: Layer, z: int) -> bool:
    """Whether the layer's tiles at this zoom are clusters rather than its features."""
    return layer.cluster_below is not None and z < layer.cluster_below


def statement(
    layer: Layer, where: str, params: dict[str, Any], z: int, x: int, y: int
) -> tuple[str, dict[str, Any]]:
    """The SQL that renders tile z/x/y of the layer (``where`` from ``_prepare``) and its
    parameters."""
    minx, miny, maxx, maxy = tile_bounds_3857(z, x, y)
    span = maxx - minx
    params = params | {
        "layer": layer.id,
        "minx": minx,
        "miny": miny,
        "maxx": maxx,
        "maxy": maxy,
        "margin": span * queries.MVT_BUFFER / queries.MVT_EXTENT,
        "tolerance": span / queries.MVT_EXTENT,
        "cell": span / queries.CLUSTER_CELLS,
    }
    if clustered(layer, z):
        if layer.clusters is None:
            return queries.cluster_tile_sql(layer, where), params
        level = z + CLUSTER_LEVEL_SHIFT
        cells = queries.CLUSTER_CELLS
        params |= {
            "level": level,
            "cx0": x * cells,
            "cx1": x * cells + cells - 1,
            "cy0": y * cells,
            "cy1": y * cells + cells - 1,
            "csize": 2.0 * ORIGIN_SHIFT / (1 << level),
            "origin": ORIGIN_SHIFT,
        }
        return queries.pyramid_tile_sql(layer, where), params
    prepared = layer.tile_geoms is not None and z < layer.tile_geoms.below
    if prepared:
        extent, buffer = queries.MVT_EXTENT, queries.MVT_BUFFER
        params |= {
            "zoom": z,
            "px0": x * extent - buffer,
            "py0": y * extent - buffer,
            "px1": (x + 1) * extent + buffer,
            "py1": (y + 1) * extent + buffer,
            "tdx": -x * extent,
            "tdy": -y * extent,
        }
    return queries.tile_sql(layer, where, prepared=prepared), params


def _render(
    session: Session, layer: Layer, where: str, params: dict[str, Any], z: int, x: int, y: int
) -> bytes:
    sql, params = statement(layer, where, params, z, x, y)
    ((body,),) = fetch(session, sql, params)
    return bytes(body or b"")


def tilejson(session: Session, scope: Scope, layer_id: str, base: str) -> dict[str, Any]:
    layer = get_layer(layer_id)
    where, params = queries.where_sql(layer, scope)
    extent = session.execute(text(queries.extent_sql(layer, where)), params).one()
    fields = {
        p.name: ("Number" if p.type in ("integer", "number") else "String")
        for p in layer.props
        if p.tile
    }
    description = layer.description
    if layer.cluster_below is not None:
        fields |= {"count": "Number", "cluster": "Boolean"}
        description += (
            f"。缩放级别 {layer.cluster_below} 以下按网格聚合：每个要素带 count（户数）"
            " 和 cluster=true，不丢弃任何住户"
        )
    doc: dict[str, Any] = {
        "tilejson": "3.0.0",
        "name": layer.title,
        "description": description,
        "scheme": "xyz",
        "tiles": [f"{base}/tiles/{layer.id}/{{z}}/{{x}}/{{y}}.mvt"],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "vector_layers": [
            {
                "id": layer.id,
                "fields": fields,
                "minzoom": 0,
                "maxzoom": MAX_ZOOM,
                "description": description,
            }
        ],
    }
    if extent[0] is not None:
        doc["bounds"] = list(extent)
        doc["center"] = [(extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2, 12]
    return doc
