"""The in-process tile cache: capped by the memory its entries take, LRU, off at 0, counted on
/metrics (hits, misses, evictions, bytes), so a benchmark can prove an uncached run had no hit."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from gridgov.config import get_settings
from gridgov.geo.tiles import lonlat_to_tile
from gridgov.gis import tiles
from gridgov.gis.tiles import ENTRY_OVERHEAD, TileCache


def key(i: int) -> str:
    return f'"{i:024x}"'  # an ETag's shape: 24 hex digits in quotes


def test_cost_counts_body_key_and_overhead():
    body = bytes(1000)
    assert TileCache.cost(key(1), body) >= len(body) + len(key(1)) + ENTRY_OVERHEAD


def test_the_cap_holds_whatever_is_put_in():
    cache = TileCache(50_000)
    for i in range(500):
        cache.put(key(i), bytes(1000 + i))  # ~0.6 MB offered to a 50 kB cache
        assert cache.stats().bytes <= 50_000
    stats = cache.stats()
    assert stats.bytes == sum(
        TileCache.cost(key(i), bytes(1000 + i)) for i in range(500)[-stats.entries :]
    )
    assert stats.entries + stats.evictions == 500
    assert stats.bytes > 50_000 - TileCache.cost(key(499), bytes(1499))  # full, not emptied


def test_empty_tiles_are_counted_too():
    """204 tiles cache b"": their keys and entries still take memory and count."""
    cache = TileCache(10_000)
    for i in range(1000):
        cache.put(key(i), b"")
    stats = cache.stats()
    assert 0 < stats.bytes <= 10_000 and stats.entries < 100 and stats.evictions > 900


def test_least_recently_used_goes_first():
    one = TileCache.cost(key(0), bytes(100))
    cache = TileCache(3 * one)
    for i in range(3):
        cache.put(key(i), bytes(100))
    assert cache.get(key(0)) is not None  # 0 is now the most recent; 1 the least
    cache.put(key(3), bytes(100))
    assert cache.get(key(1)) is None
    assert all(cache.get(key(i)) is not None for i in (0, 2, 3))


def test_a_tile_larger_than_the_cache_is_not_kept_and_evicts_nothing():
    cache = TileCache(5_000)
    cache.put(key(1), bytes(100))
    cache.put(key(2), bytes(10_000))
    assert cache.get(key(2)) is None and cache.get(key(1)) is not None
    assert cache.stats().evictions == 0


def test_counters():
    cache = TileCache(1_000_000)
    assert cache.get(key(1)) is None
    cache.put(key(1), b"tile")
    cache.put(key(1), b"tile")  # already there: nothing changes
    assert cache.get(key(1)) == b"tile"
    assert cache.get(key(1)) == b"tile"
    assert cache.get(key(2)) is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.evictions, stats.entries) == (2, 2, 0, 1)
    assert stats.bytes == TileCache.cost(key(1), b"tile")
    cache.clear()
    assert cache.stats().bytes == 0 and cache.get(key(1)) is None


def test_a_cache_of_zero_bytes_never_hits():
    cache = TileCache(0)
    for _ in range(3):
        cache.put(key(1), b"")
        cache.put(key(2), b"tile")
        assert cache.get(key(1)) is None and cache.get(key(2)) is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries, stats.bytes) == (0, 6, 0, 0)


@pytest.fixture
def cache_bytes(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set GRIDGOV_MAPS__TILE_CACHE_BYTES with ``monkeypatch.setenv``; the process's cache is
    rebuilt from the settings before and after the test."""

    def reset() -> None:
        get_settings.cache_clear()
        tiles.get_cache.cache_clear()

    reset()
    yield monkeypatch
    monkeypatch.undo()
    reset()


def metric(client, name: str) -> float:
    text = client.get("/metrics").text
    match = re.search(rf'^gridgov_tile_cache_{name}\{{pid="\d+"\}} (\S+)$', text, re.M)
    assert match, f"gridgov_tile_cache_{name} missing from /metrics"
    return float(match.group(1))


def tile_urls(n: int) -> list[str]:
    x, y = lonlat_to_tile(111.02, 26.02, 12)
    return [f"/tiles/grids/12/{x}/{y}.mvt"] * n + ["/tiles/grids/10/0/0.mvt"] * n  # 200s, 204s


def test_the_setting_sizes_the_cache(cache_bytes):
    cache_bytes.setenv("GRIDGOV_MAPS__TILE_CACHE_BYTES", "12345")
    get_settings.cache_clear()
    assert tiles.get_cache().max_bytes == 12345


def test_tiles_served_with_the_cache_off_are_all_misses(client, as_user, cache_bytes):
    cache_bytes.setenv("GRIDGOV_MAPS__TILE_CACHE_BYTES", "0")
    get_settings.cache_clear()
    bodies = set()
    for url in tile_urls(3):
        response = client.get(url, headers=as_user("county"))
        assert response.status_code in (200, 204)
        bodies.add(response.content)
    assert len(bodies) == 2  # the same tile each time, rendered anew
    assert metric(client, "max_bytes") == 0
    assert metric(client, "hits_total") == 0
    assert metric(client, "misses_total") == 6
    assert metric(client, "bytes") == metric(client, "entries") == 0


def test_tiles_served_twice_hit_the_cache(client, as_user, cache_bytes):
    cache_bytes.setenv("GRIDGOV_MAPS__TILE_CACHE_BYTES", str(1024 * 1024))
    get_settings.cache_clear()
    for url in tile_urls(3):
        assert client.get(url, headers=as_user("county")).status_code in (200, 204)
    assert (metric(client, "hits_total"), metric(client, "misses_total")) == (4, 2)
    assert metric(client, "entries") == 2
    assert 0 < metric(client, "bytes") <= metric(client, "max_bytes") == 1024 * 1024


def test_each_response_says_whether_it_came_from_the_cache(client, as_user, cache_bytes):
    """X-Tile-Cache on every 200 and 204: what a load generator counts per response."""
    cache_bytes.setenv("GRIDGOV_MAPS__TILE_CACHE_BYTES", str(1024 * 1024))
    get_settings.cache_clear()
    seen = [client.get(url, headers=as_user("county")) for url in tile_urls(2)]
    assert [r.status_code for r in seen] == [200, 200, 204, 204]
    assert [r.headers["x-tile-cache"] for r in seen] == ["miss", "hit", "miss", "hit"]
    again = client.get(
        tile_urls(1)[0], headers={**as_user("county"), "If-None-Match": seen[0].headers["etag"]}
    )
    assert again.status_code == 304 and "x-tile-cache" not in again.headers  # nothing rendered


def test_with_the_cache_off_every_response_is_a_miss(client, as_user, cache_bytes):
    cache_bytes.setenv("GRIDGOV_MAPS__TILE_CACHE_BYTES", "0")
    get_settings.cache_clear()
    seen = [client.get(url, headers=as_user("county")) for url in tile_urls(3)]
    assert {r.headers["x-tile-cache"] for r in seen} == {"miss"}


def test_with_the_versions_in_memory_cached_tiles_are_answered_in_place(
    client, as_user, cache_bytes
):
    """The path the servers take while listening (gis.tiles.serve): the version from memory,
    a hit or a 304 answered on the event loop, a miss rendered in a worker thread."""
    cache_bytes.setenv("GRIDGOV_MAPS__TILE_CACHE_BYTES", str(1024 * 1024))
    cache_bytes.setattr(tiles.VERSIONS, "version", lambda tables: "1.1.1")
    get_settings.cache_clear()
    seen = [client.get(url, headers=as_user("county")) for url in tile_urls(2)]
    assert [r.status_code for r in seen] == [200, 200, 204, 204]
    assert [r.headers["x-tile-cache"] for r in seen] == ["miss", "hit", "miss", "hit"]
    assert seen[0].content == seen[1].content and seen[0].content
    again = client.get(
        tile_urls(1)[0], headers={**as_user("county"), "If-None-Match": seen[0].headers["etag"]}
    )
    assert again.status_code == 304
    cache_bytes.setattr(tiles.VERSIONS, "version", lambda tables: "1.1.2")  # a change: re-render
    assert client.get(tile_urls(1)[0], headers=as_user("county")).headers["x-tile-cache"] == "miss"
