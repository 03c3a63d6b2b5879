"""A short-lived, per-process memory of callers' scopes.

Resolving a scope costs two queries (the user row, the subtree of their unit); a map client
asking for forty tiles a second would pay them forty times a second. Credentials are still
checked on every request (the access token's signature and expiry); what is remembered is
which scope a verified credential stands for, for ``auth.scope_cache_seconds``. Changes this
process makes to users, API keys or the hierarchy forget everything at once; changes made by
another process are seen within the TTL (the same lag as a cached page of any web GIS).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

from gridgov.auth.scope import Scope
from gridgov.config import get_settings

MAX_ENTRIES = 10_000
V = TypeVar("V")
_ALL: list[ScopeCache[Any]] = []


class ScopeCache(Generic[V]):
    """Entries live ``auth.scope_cache_seconds`` and are all forgotten together with the
    scopes (``forget_scopes``): what depends on who sees what, or on the hierarchy."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries
        _ALL.append(self)

    def get(self, key: Hashable) -> V | None:
        ttl = get_settings().auth.scope_cache_seconds
        if ttl <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored_at, scope = entry
            if time.monotonic() - stored_at > ttl:
                del self._entries[key]
                return None
            return scope

    def put(self, key: Hashable, scope: V) -> None:
        if get_settings().auth.scope_cache_seconds <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic(), scope)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


SCOPES: ScopeCache[Scope] = ScopeCache()


def forget_scopes() -> None:
    """Called by every write that can change who sees what (users, API keys, hierarchy)."""
    for cache in _ALL:
        cache.clear()


def forget_after_commit(session: Session) -> None:
    """Forget every remembered scope once ``session`` commits (a write to users, API keys or
    the hierarchy is in it). After, not before: a request between the two would remember the
    old scope again."""
    session.info["forget_scopes"] = True


_SCOPE_TABLES = frozenset({"users", "api_keys", "admin_units", "grids"})


@event.listens_for(Session, "before_flush")
def _note_scope_writes(session: Session, _context: object, _instances: object) -> None:
    # ORM writes mark themselves; set-based hierarchy writes call forget_after_commit.
    for obj in (*session.new, *session.dirty, *session.deleted):
        if getattr(obj, "__tablename__", None) in _SCOPE_TABLES:
            session.info["forget_scopes"] = True
            return


@event.listens_for(Session, "after_commit")
def _forget_on_commit(session: Session) -> None:
    if session.info.pop("forget_scopes", False):
        forget_scopes()


@event.listens_for(Session, "after_rollback")
def _keep_on_rollback(session: Session) -> None:
    session.info.pop("forget_scopes", None)
