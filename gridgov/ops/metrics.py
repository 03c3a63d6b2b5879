"""Prometheus metrics: requests by route and status, latency, database pools, the tile cache."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gridgov.db import get_engine, get_stream_pool
from gridgov.gis.tiles import get_cache

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "gridgov_http_requests_total",
    "HTTP requests by route template, method and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "gridgov_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
IN_FLIGHT = Gauge("gridgov_http_in_flight", "Requests being served.", registry=REGISTRY)
GC_PAUSES = Histogram(
    "gridgov_gc_pause_seconds",
    "Python garbage-collector pauses of this process by generation (every request waits them).",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
    registry=REGISTRY,
)


class PoolCollector(Collector):
    """Reads pool figures at scrape time instead of tracking them on every checkout."""

    def collect(self):  # type: ignore[no-untyped-def]
        sa_pool = get_engine().pool
        g = GaugeMetricFamily(
            "gridgov_db_pool_connections", "DB pool connections.", labels=["pool", "state"]
        )
        g.add_metric(["orm", "checked_out"], float(getattr(sa_pool, "checkedout", lambda: 0)()))
        g.add_metric(["orm", "idle"], float(getattr(sa_pool, "checkedin", lambda: 0)()))
        g.add_metric(["orm", "size"], float(getattr(sa_pool, "size", lambda: 0)()))
        if get_stream_pool.cache_info().currsize:
            stats = get_stream_pool().get_stats()
            g.add_metric(["stream", "size"], float(stats.get("pool_size", 0)))
            g.add_metric(["stream", "idle"], float(stats.get("pool_available", 0)))
            g.add_metric(["stream", "waiting"], float(stats.get("requests_waiting", 0)))
        yield g


class TileCacheCollector(Collector):
    """The process's tile cache (gridgov.gis.tiles) as it is at scrape time. Each server
    process has its own cache, so every figure carries the process id: with several workers a
    scraper (or a benchmark proving that an uncached run had no hits) sees which one answered."""

    COUNTERS = {
        "hits": "Tile requests answered from the cache.",
        "misses": "Tile requests that rendered their tile (all of them with the cache off).",
        "evictions": "Tiles dropped from the cache to stay within its byte cap.",
    }
    GAUGES = {
        "bytes": "Memory the cached tiles take (bodies, keys, per-entry overhead).",
        "max_bytes": "The cache's byte cap (GRIDGOV_MAPS__TILE_CACHE_BYTES; 0: off).",
        "entries": "Tiles in the cache.",
    }

    def describe(self):  # type: ignore[no-untyped-def]
        # Registering a collector describes it; without this it would collect, and so build
        # the cache (reading the settings) when this module is imported.
        for name, doc in self.COUNTERS.items():
            yield CounterMetricFamily(f"gridgov_tile_cache_{name}", doc, labels=["pid"])
        for name, doc in self.GAUGES.items():
            yield GaugeMetricFamily(f"gridgov_tile_cache_{name}", doc, labels=["pid"])

    def collect(self):  # type: ignore[no-untyped-def]
        stats = get_cache().stats()
        pid = [str(os.getpid())]
        for family in self.describe():
            family.add_metric(
                pid, float(getattr(stats, family.name.removeprefix("gridgov_tile_cache_")))
            )
            yield family


REGISTRY.register(PoolCollector())
REGISTRY.register(TileCacheCollector())
