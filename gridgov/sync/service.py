"""Delta sync: everything in the caller's scope that changed after their cursor (DESIGN §5)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov import privacy
from gridgov.auth.models import User
from gridgov.auth.permissions import Perm
from gridgov.auth.scope import Scope, scope_for
from gridgov.config import get_settings
from gridgov.geo import CoordSys
from gridgov.geojson import to_geojson
from gridgov.sync import queries
from gridgov.sync.models import SyncChange
from gridgov.sync.schemas import (
    SyncContact,
    SyncGrid,
    SyncHousehold,
    SyncPage,
    SyncTombstones,
    SyncUpserts,
)
from gridgov.visits import service as visits_service


def _bound(scope: Scope) -> str:
    return f"g{scope.grid_id}" if scope.grid_bound else f"u{scope.unit_id}"


def scope_key(scope: Scope) -> str:
    """A short fingerprint of what the caller sees (their villages may change under a unit)."""
    raw = f"{scope.user_id}|{_bound(scope)}|{sorted(scope.village_ids)}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


# -- cursors ------------------------------------------------------------------------------------
# A cursor says where a user's phone stands: [user id, what the user was bound to, the scope's
# fingerprint, xid, seq], as base64url JSON, signed with an HMAC whose key is derived from the
# auth secret key. The server acts on a cursor only if it made it for this user: a forged or
# altered one, or another user's, cannot name a scope (and so tombstones) the caller never had.
# During a first pull (a snapshot of the scope, see ``_snapshot``) two more fields say how far
# the snapshot has come: the kind (index in ``queries.SNAPSHOT_KINDS``) and the last id sent;
# (xid, seq) is then where the change log takes over once the snapshot is done.

_CURSOR_CONTEXT = b"gridgov sync cursor v1"
_SIGNATURE_BYTES = 16


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text_: str) -> bytes:
    return base64.urlsafe_b64decode(text_ + "=" * (-len(text_) % 4))


def _signature(body: str) -> bytes:
    secret = get_settings().auth.secret_key.encode()
    key = hmac.new(secret, _CURSOR_CONTEXT, hashlib.sha256).digest()
    return hmac.new(key, body.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _cursor(scope: Scope, xid: int, seq: int, snapshot: tuple[int, int] | None = None) -> str:
    key: list[Any] = [scope.user_id, _bound(scope), scope_key(scope), xid, seq]
    if snapshot is not None:
        key.extend(snapshot)
    body = _b64(json.dumps(key, separators=(",", ":")).encode())
    return f"{body}.{_b64(_signature(body))}"


def _verified(cursor: str) -> list[Any] | None:
    """The cursor's fields if the server signed them, else None."""
    body, dot, signature = cursor.partition(".")
    if not dot:
        return None
    try:
        given = _unb64(signature)
        key = json.loads(_unb64(body)) if hmac.compare_digest(given, _signature(body)) else None
    except ValueError:
        return None
    return key if isinstance(key, list) and len(key) in (5, 7) else None


@dataclass(frozen=True)
class _Position:
    xid: int
    seq: int
    bound: str  # what the caller was bound to when the cursor was issued ("g12", "u3")
    same_scope: bool
    # Within a first pull: (kind index, last id sent); None in the change log.
    snapshot: tuple[int, int] | None = None

    @property
    def first_pull(self) -> bool:
        """No cursor, or the log's very beginning (after a rebind): a snapshot, not a replay."""
        return self.snapshot is not None or (self.xid, self.seq) == (0, 0)


def _read_cursor(scope: Scope, cursor: str | None) -> _Position | None:
    """Where to continue; None when the cursor cannot be served (not signed by this server,
    altered, another user's)."""
    if not cursor:
        return _Position(0, 0, _bound(scope), True)
    fields = _verified(cursor)
    if fields is None:
        return None
    user_id, bound, key, xid, seq, *snapshot = fields
    numbers = (user_id, xid, seq, *snapshot)
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in numbers):
        return None
    if user_id != scope.user_id or not isinstance(bound, str) or not _BOUND.match(bound):
        return None
    if snapshot and snapshot[0] >= len(queries.SNAPSHOT_KINDS):
        return None
    same = bound == _bound(scope) and key == scope_key(scope)
    return _Position(xid, seq, bound, same, (snapshot[0], snapshot[1]) if snapshot else None)


_BOUND = re.compile(r"^[gu][0-9]{1,18}$")


def pull(
    session: Session,
    scope: Scope,
    *,
    cursor: str | None,
    limit: int,
    coord_sys: CoordSys,
    pii: bool = False,
) -> SyncPage:
    """One page of changes, oldest first, as upserts (current state) and tombstones.

    A first pull (no cursor) is a snapshot instead: everything in the scope now, each object
    once, kind after kind, and no tombstones (``_snapshot``); its last page hands over to the
    change log at the point where the snapshot began.

    Households' heads' names and phones follow the personal-data rule: in clear for a grid
    member (``privacy.PATHS['sync']``: the phone works offline with its grid's households) or
    with ``pii=true`` for a role allowed it; a page that shows any is one audit entry with counts.
    ``limit`` is the caller's, already checked against the page maximum (``deps.checked_limit``:
    above it is a 422, never a silently shorter page).
    """
    now = datetime.now(UTC)
    shown = privacy.shown(scope, "sync", pii)
    position = _read_cursor(scope, cursor)
    if position is None or (0, 0) < (position.xid, position.seq) < _pruned(session):
        return SyncPage(reset=True, has_more=True, server_time=now)
    if not position.same_scope:
        # The user was rebound: what they may no longer see goes as tombstones, and the new
        # scope follows from the beginning of the log.
        return SyncPage(
            tombstones=_left_scope(session, scope, position.bound),
            next=_cursor(scope, 0, 0),
            has_more=True,
            server_time=now,
        )
    if position.first_pull:
        changed, has_more, next_cursor = _snapshot(session, scope, position, limit)
        # Nothing is a tombstone here: what vanished between the two reads was never sent.
        upserts, _ = _current_state(session, scope, changed, coord_sys, shown=shown)
        tombstones = SyncTombstones()
    else:
        changed, has_more, next_cursor = _changes(session, scope, position, limit)
        upserts, tombstones = _current_state(session, scope, changed, coord_sys, shown=shown)
    due = None
    if not has_more and scope.can(Perm.visits_write):
        due = visits_service.due_list(
            session,
            scope,
            position=None,
            coord_sys=coord_sys,
            within_days=0,
            limit=1000,
            pii=pii,
            audited=False,
        )
    if shown and (upserts.households or due):
        counts = {"households": len(upserts.households)}
        counts["due"] = visits_service.due_counts(due or [])["households"]
        privacy.record_read(session, scope, "sync", f"page:{len(upserts.households)}", counts)
    return SyncPage(
        upserts=upserts,
        tombstones=tombstones,
        next=next_cursor,
        has_more=has_more,
        due=due,
        server_time=now,
    )


_LAST_SEQ = 2**62  # above any sequence number: "all of this transaction"


def _no_changes() -> dict[str, set[int]]:
    return {kind: set() for kind in queries.SNAPSHOT_KINDS}


def _changes(
    session: Session, scope: Scope, position: _Position, limit: int
) -> tuple[dict[str, set[int]], bool, str]:
    """The entities of the next ``limit`` change rows after the cursor, in (xid, seq) order."""
    # Change rows carry village_id and grid_id: their own declaration (SyncChange.__scope__).
    where, params = scope.sql(SyncChange.__scope__.kind, "c")
    result = session.execute(
        text(queries.CHANGES_SQL.format(where=where)),
        {**params, "c_xid": position.xid, "c_seq": position.seq, "limit_plus": limit + 1},
    ).all()
    horizon = result[0].horizon
    rows = [r for r in result if r.seq is not None]
    has_more = len(rows) > limit
    rows = rows[:limit]
    changed = _no_changes()
    for r in rows:
        changed[r.entity].add(r.entity_id)
    last = (rows[-1].xid, rows[-1].seq) if rows else (position.xid, position.seq)
    if not has_more:
        # Everything of this scope below the read horizon has been handed out, and nothing can
        # still arrive below it: move the cursor up to it, so that a phone in a quiet scope
        # keeps a cursor newer than what pruning removes (and is not told to reset).
        last = max(last, (horizon - 1, _LAST_SEQ))
    return changed, has_more, _cursor(scope, *last)


def _snapshot(
    session: Session, scope: Scope, position: _Position, limit: int
) -> tuple[dict[str, set[int]], bool, str]:
    """The next ``limit`` objects of a first pull: grids, then households, contacts, visits,
    each kind by id — every object in the scope once, whatever the log holds about it.

    The first page notes the read horizon H (every transaction below it has ended, so its
    writes are in what the snapshot reads); the change log takes over from H once the last
    kind is done. A write committed while the pages are fetched has H or a later xid: the
    snapshot may already show it, and the next pull sends it (again) — never lost.
    """
    if position.snapshot is None:
        horizon = session.scalar(text(queries.HORIZON_SQL))
        xid, seq, kind, after = horizon - 1, _LAST_SEQ, 0, 0
    else:
        xid, seq = position.xid, position.seq
        kind, after = position.snapshot
    changed = _no_changes()
    room = limit
    while kind < len(queries.SNAPSHOT_KINDS):
        name = queries.SNAPSHOT_KINDS[kind]
        where, params = scope.sql(*queries.SNAPSHOT_SCOPE[name])
        ids = session.scalars(
            text(queries.SNAPSHOT_IDS_SQL[name].format(where=where)),
            {**params, "after": after, "limit": room + 1},
        ).all()
        if len(ids) > room:  # this kind goes on in the next page
            changed[name].update(ids[:room])
            return changed, True, _cursor(scope, xid, seq, (kind, ids[room - 1]))
        changed[name].update(ids)
        room -= len(ids)
        kind, after = kind + 1, 0
        if room == 0 and kind < len(queries.SNAPSHOT_KINDS):
            return changed, True, _cursor(scope, xid, seq, (kind, 0))
    return changed, False, _cursor(scope, xid, seq)


def _pruned(session: Session) -> tuple[int, int]:
    """(xid, seq) of the newest pruned tombstone (see ``prune``); a cursor before it resets."""
    row = session.execute(text("SELECT xid, seq FROM sync_horizon WHERE id = 1")).first()
    return (row.xid, row.seq) if row else (0, 0)


@dataclass(frozen=True)
class PruneResult:
    superseded: int
    tombstones: int
    horizon: tuple[int, int]


def prune(session: Session, *, retention_days: int | None = None) -> PruneResult:
    """Keep the change log as small as correctness allows (``gridgov jobs run``).

    Superseded changes go whatever their age (no cursor can tell); tombstones older than the
    retention go and move the horizon. Two runs at once serialise on the horizon row.
    """
    days = retention_days or get_settings().sync.tombstone_retention_days
    session.execute(text("SELECT 1 FROM sync_horizon WHERE id = 1 FOR UPDATE"))
    superseded = session.execute(text(queries.PRUNE_SUPERSEDED_SQL)).rowcount
    tombstones = session.scalar(text(queries.PRUNE_TOMBSTONES_SQL), {"days": days}) or 0
    return PruneResult(superseded, tombstones, _pruned(session))


def _left_scope(session: Session, scope: Scope, old_bound: str) -> SyncTombstones:
    """Everything in the scope the cursor was issued for that the caller no longer sees.

    ``old_bound`` comes from a cursor this server signed for this user, so it is a scope the
    user really had; its ids are still kept to the user's own county (defence in depth).
    """
    old_id = int(old_bound[1:])
    table = "grids" if old_bound[0] == "g" else "admin_units"
    county = session.scalar(text(f"SELECT county_code FROM {table} WHERE id = :id"), {"id": old_id})
    if county != scope.county_code:
        return SyncTombstones()
    former = User(
        id=scope.user_id,
        username=scope.username,
        role=scope.role,
        county_code=scope.county_code,
        grid_id=old_id if old_bound[0] == "g" else None,
        unit_id=old_id if old_bound[0] == "u" else None,
    )
    old = scope_for(session, former)
    out = SyncTombstones()
    for field, kind, sql in queries.LEFT_SCOPE:
        alias = "g" if kind == "grid" else ("v" if kind == "visit" else "h")
        new_where, new_params = scope.sql(kind, alias)
        old_where, old_params = old.sql(kind, alias)
        old_where = old_where.replace(":scope_", ":old_scope_")
        old_params = {f"old_{k}": v for k, v in old_params.items()}
        ids = session.scalars(
            text(sql.format(old=old_where, new=new_where)), {**new_params, **old_params}
        ).all()
        setattr(out, field, sorted(ids))
    return out


def _rows(session: Session, sql: str, where: tuple[str, dict[str, Any]], ids: set[int]) -> list:
    if not ids:
        return []
    clause, params = where
    return session.execute(text(sql.format(where=clause)), {**params, "ids": list(ids)}).all()


def _current_state(
    session: Session,
    scope: Scope,
    changed: dict[str, set[int]],
    coord_sys: CoordSys,
    *,
    shown: bool,
) -> tuple[SyncUpserts, SyncTombstones]:
    upserts, tombstones = SyncUpserts(), SyncTombstones()

    for r in _rows(session, queries.GRIDS_SQL, scope.sql("grid", "g"), changed["grid"]):
        data = dict(r._mapping)
        data["boundary"] = to_geojson(data.pop("geometry"), coord_sys)
        upserts.grids.append(SyncGrid(**data))
    ids = changed["household"]
    for r in _rows(session, queries.HOUSEHOLDS_SQL, scope.sql("household", "h"), ids):
        data = dict(r._mapping)
        data["location"] = to_geojson(data.pop("geometry"), coord_sys)
        privacy.mask("household", data, shown=shown)
        upserts.households.append(SyncHousehold(**data))
    ids = changed["contact"]
    for r in _rows(session, queries.CONTACTS_SQL, scope.sql("household", "h"), ids):
        upserts.contacts.append(SyncContact(**r._mapping))
    visits = visits_service.read_visits(session, scope, list(changed["visit"]), coord_sys)
    upserts.visits.extend(visits[i] for i in sorted(visits))

    tombstones.grids = sorted(changed["grid"] - {g.id for g in upserts.grids})
    tombstones.households = sorted(changed["household"] - {h.id for h in upserts.households})
    tombstones.contacts = sorted(changed["contact"] - {c.id for c in upserts.contacts})
    tombstones.visits = sorted(changed["visit"] - set(visits))
    upserts.grids.sort(key=lambda g: g.id)
    upserts.households.sort(key=lambda h: h.id)
    upserts.contacts.sort(key=lambda c: c.id)
    return upserts, tombstones
