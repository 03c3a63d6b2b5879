"""Shared benchmark plumbing: a throwaway database, timers, result tables.

Benchmarks prove speed by a ratio against a baseline measured in the same run on the same
data, never by absolute seconds (machines differ). They run against their own database,
created here and dropped at the end (also on error or Ctrl-C) unless ``--keep`` is given,
so they never touch a developer's data or a test run's.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

# `python bench/x.py` puts bench/ first on sys.path, not the project root.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ADMIN_URL = os.environ.get(
    "GRIDGOV_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
APP_USER = os.environ.get("GRIDGOV_BENCH_APP_USER", "gridgov")
# Bulk statements over a million rows take longer than the API's 60 s statement limit.
STATEMENT_TIMEOUT_MS = 3_600_000

# Piped output (make bench | tee) gets a fixed width wide enough for the tables.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep", action="store_true", help="keep the benchmark database (its name is printed)"
    )


def _admin() -> psycopg.Connection:
    return psycopg.connect(ADMIN_URL, autocommit=True)


def _url(dbname: str, user: str, driver: str = "postgresql") -> str:
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    host, port = info.get("host", "127.0.0.1"), info.get("port", "5432")
    return f"{driver}://{user}@{host}:{port}/{dbname}"


def _clear_caches() -> None:
    from gridgov.config import get_settings
    from gridgov.db import get_engine, get_sessionmaker, get_stream_pool

    if get_engine.cache_info().currsize:
        get_engine().dispose()
    if get_stream_pool.cache_info().currsize:
        get_stream_pool().close()
    for cached in (get_settings, get_engine, get_sessionmaker, get_stream_pool):
        cached.cache_clear()


def _raise_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that drops the database


@contextmanager
def bench_database(*, keep: bool = False, reuse: str | None = None) -> Iterator[str]:
    """A fresh migrated PostGIS database owned by the app role; gridgov points at it.

    Yields the SQLAlchemy URL. The previous ``GRIDGOV_DB__*`` environment and gridgov's cached
    settings/engine are restored afterwards, so several benchmarks can run in one process.
    """
    import gridgov.wiring  # noqa: F401  (every subscriber of domain events, as the app loads them)
    from gridgov import migrate

    name = reuse or f"gridgov_bench_{os.getpid()}_{int(time.time()) % 100_000:05d}"
    keep = keep or reuse is not None
    saved = {k: os.environ.get(k) for k in ("GRIDGOV_DB__URL", "GRIDGOV_DB__STATEMENT_TIMEOUT_MS")}
    previous_handler = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    if reuse is None:
        with _admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(APP_USER)
                )
            )
    try:
        with psycopg.connect(_url(name, _superuser()), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        url = _url(name, APP_USER, "postgresql+psycopg")
        migrate.upgrade(url)
        os.environ["GRIDGOV_DB__URL"] = url
        os.environ["GRIDGOV_DB__STATEMENT_TIMEOUT_MS"] = str(STATEMENT_TIMEOUT_MS)
        _clear_caches()
        console.print(f"[dim]benchmark database {name}[/dim]")
        yield url
    finally:
        _clear_caches()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        signal.signal(signal.SIGTERM, previous_handler)
        if keep:
            console.print(f"[yellow]kept benchmark database {name}[/yellow]")
        else:
            with _admin() as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def _superuser() -> str:
    return psycopg.conninfo.conninfo_to_dict(ADMIN_URL).get("user") or "postgres"


def server_versions(url: str) -> dict[str, str]:
    """PostgreSQL, PostGIS and GEOS versions of the benchmark database."""
    libpq = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(libpq) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), postgis_lib_version(), "
            "postgis_geos_version()"
        ).fetchone()
    assert row is not None
    return {"PostgreSQL": row[0], "PostGIS": row[1], "GEOS": row[2]}


def backend_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) used so far by a server backend, when the server is local.

    On a busy machine wall-clock time also counts waiting for a core; CPU time does not, so
    a ratio of CPU times is the steadier figure. None when /proc does not show the process.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Timer:
    label: str
    seconds: float = 0.0


@contextmanager
def timed(label: str, *, quiet: bool = False) -> Iterator[Timer]:
    """``with timed("load") as t: ...`` then ``t.seconds``; prints the time unless quiet."""
    timer = Timer(label)
    start = time.perf_counter()
    try:
        yield timer
    finally:
        timer.seconds = time.perf_counter() - start
        if not quiet:
            console.print(f"[dim]{label}: {timer.seconds:.2f} s[/dim]")


@dataclass
class Samples:
    """Repeated timings of one measured path."""

    label: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> str:
        return f"{min(self.seconds):.2f}–{max(self.seconds):.2f}"


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, to: Console | None = None
) -> None:
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    (to or console).print(table)


def print_facts(title: str, facts: dict[str, Any]) -> None:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in facts.items():
        table.add_row(key, str(value))
    console.print(table)
