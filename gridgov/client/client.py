"""What a phone does: queue visits offline, upload them in batches with retries and backoff,
then pull changes into a local copy.

Retrying is always safe because every visit carries its UUID: a batch whose answer was lost
comes back as ``duplicate`` items the second time, never as new rows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

BATCH_MAX = 500
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
KINDS = ("grids", "households", "contacts", "visits")


class Http(Protocol):
    def post(self, url: str, **kwargs: Any) -> httpx.Response: ...

    def get(self, url: str, **kwargs: Any) -> httpx.Response: ...


@dataclass
class UploadReport:
    created: int = 0
    duplicate: int = 0
    attempts: int = 0
    # Items the server refused (conflict or rejected), with its reasons; not retried.
    refused: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LocalCopy:
    """The phone's copy of its scope, kept current by ``pull``."""

    cursor: str | None = None
    records: dict[str, dict[int, dict[str, Any]]] = field(
        default_factory=lambda: {k: {} for k in KINDS}
    )
    due: list[dict[str, Any]] = field(default_factory=list)

    def clear(self) -> None:
        self.cursor = None
        self.records = {k: {} for k in KINDS}
        self.due = []


class GridgovClient:
    def __init__(
        self,
        http: Http,
        token: str,
        *,
        base: str = "/api/v1",
        batch_size: int = BATCH_MAX,
        max_attempts: int = 5,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= batch_size <= BATCH_MAX:
            raise ValueError(f"batch_size must be 1..{BATCH_MAX}")
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}
        self.base = base
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        self.queue: list[dict[str, Any]] = []
        self.local = LocalCopy()

    # -- push -----------------------------------------------------------------------------------

    def record(self, visit: dict[str, Any]) -> str:
        """Queue a visit (offline); returns its UUID, made here if it has none."""
        item = dict(visit)
        item.setdefault("client_uuid", str(uuid.uuid4()))
        self.queue.append(item)
        return item["client_uuid"]

    def upload(self) -> UploadReport:
        """Send the queue in batches; each batch is retried until the server has answered."""
        report = UploadReport()
        while self.queue:
            batch = self.queue[: self.batch_size]
            result = self._send(batch, report)
            for outcome in result["items"]:
                if outcome["status"] in ("created", "duplicate"):
                    setattr(report, outcome["status"], getattr(report, outcome["status"]) + 1)
                else:
                    report.refused.append(outcome | {"visit": batch[outcome["index"]]})
            del self.queue[: len(batch)]
        return report

    def _send(self, batch: list[dict[str, Any]], report: UploadReport) -> dict[str, Any]:
        for attempt in range(1, self.max_attempts + 1):
            report.attempts += 1
            try:
                r = self.http.post(
                    f"{self.base}/visits/batch", json={"visits": batch}, headers=self.headers
                )
            except httpx.TransportError:
                r = None
            if r is not None and r.status_code not in RETRY_STATUSES:
                r.raise_for_status()  # 4xx for the batch itself: retrying will not help
                return r.json()
            if attempt < self.max_attempts:
                self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise ConnectionError(f"batch not delivered after {self.max_attempts} attempts")

    # -- pull -----------------------------------------------------------------------------------

    def pull(self, limit: int = 500) -> LocalCopy:
        """Pull every change since the last pull into the local copy."""
        while True:
            params: dict[str, Any] = {"limit": limit}
            if self.local.cursor:
                params["cursor"] = self.local.cursor
            r = self.http.get(f"{self.base}/sync", params=params, headers=self.headers)
            r.raise_for_status()
            page = r.json()
            if page["reset"]:
                self.local.clear()
                continue
            for kind in KINDS:
                store = self.local.records[kind]
                for record in page["upserts"][kind]:
                    store[record["id"]] = record
                for gone in page["tombstones"][kind]:
                    store.pop(gone, None)
            if page["due"] is not None:
                self.local.due = page["due"]
            self.local.cursor = page["next"]
            if not page["has_more"]:
                return self.local
