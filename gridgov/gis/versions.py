"""The layers' data versions, kept in memory by listening for their changes.

A tile's ETag and cache key carry the version of the tables its layer reads (see
``queries.version_sql``). Asking PostgreSQL for it costs a connection checkout and a query per
tile — most of a cached tile's cost. Instead one thread per server process LISTENs on
``gridgov_layer_changes`` (sent by the change trigger at commit, migration 0009) and re-reads
the versions when told. The answer is the very string ``version_sql`` gives, so both paths
agree. An edit is seen by every process a few milliseconds after its commit; while the listener
is not connected (start-up, database restart) ``version`` answers None and callers ask the
database as before.
"""

from __future__ import annotations

import logging
import threading

import psycopg

from gridgov.config import get_settings

log = logging.getLogger("gridgov.gis.versions")

CHANNEL = "gridgov_layer_changes"
READ_SQL = "SELECT table_name, min(id), max(id), count(*) FROM layer_changes GROUP BY table_name"


class LayerVersions:
    def __init__(self) -> None:
        # table → (oldest change id, newest change id, number of changes)
        self._tables: dict[str, tuple[int, int, int]] = {}
        self._ready = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.refreshes = 0  # how often the versions were re-read (tests, metrics)

    def version(self, tables: tuple[str, ...]) -> str | None:
        """``version_sql``'s answer for these tables, or None when not listening (yet)."""
        if not self._ready:
            self._start()
            return None
        with self._lock:
            known = [self._tables[t] for t in tables if t in self._tables]
        oldest = min((k[0] for k in known), default=0)
        newest = max((k[1] for k in known), default=0)
        return f"{oldest}.{newest}.{sum(k[2] for k in known)}"

    def _start(self) -> None:
        if self._thread is not None or not get_settings().maps.listen_for_changes:
            return
        with self._lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._listen, name="layer-versions", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5)
        self._ready = False

    def _read(self, conn: psycopg.Connection) -> None:
        rows = conn.execute(READ_SQL).fetchall()
        with self._lock:
            self._tables = {name: (oldest, newest, n) for name, oldest, newest, n in rows}
        self.refreshes += 1

    def _listen(self) -> None:
        url = get_settings().db.libpq_url
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._read(conn)  # after LISTEN: nothing committed later is missed
                    self._ready = True
                    while not self._stop.is_set():
                        # A burst of commits is read once; the timeout lets stop() end us.
                        if any(True for _ in conn.notifies(timeout=0.5, stop_after=1)):
                            for _ in conn.notifies(timeout=0.005):  # drain the burst
                                pass
                            self._read(conn)
            except psycopg.Error as exc:
                log.warning("layer version listener disconnected: %s", exc)
            finally:
                self._ready = False
            self._stop.wait(1.0)


VERSIONS = LayerVersions()
