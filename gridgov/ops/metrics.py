"""Prometheus metrics: requests by route and status, latency, database pools."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

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


class PoolCollector(Collector):
    """Reads pool figures at scrape time instead of tracking them on every checkout."""

    def collect(self):  # type: ignore[no-untyped-def]
        from gridgov.db import get_engine, get_stream_pool

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


REGISTRY.register(PoolCollector())
