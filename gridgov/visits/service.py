"""走访: batch upload from the phone, photos, server-side checks, review, due lists."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Unpack

import orjson
from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from gridgov import events, privacy, wire
from gridgov.audit import service as audit
from gridgov.auth.models import User
from gridgov.auth.scope import Scope
from gridgov.config import get_settings
from gridgov.db import retrying
from gridgov.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidGeometry,
    NotFound,
    PayloadInvalid,
    PayloadTooLarge,
    UnsupportedMedia,
)
from gridgov.geo import CHINA_EXTENT, CoordSys, convert
from gridgov.geojson import parse_geometry, to_geojson
from gridgov.households.validation import ORDINARY_INTERVAL_DAYS, TAG_INTERVAL_DAYS
from gridgov.inputs import NUL_FREE, has_nul
from gridgov.listing import PageResult
from gridgov.visits import queries
from gridgov.visits.events import AttachmentReferences
from gridgov.visits.models import Attachment, Visit
from gridgov.visits.schemas import MAX_BATCH, DueHousehold, VisitIn, VisitRead
from gridgov.visits.storage import BlobStore

# -- batch upload ---------------------------------------------------------------------------------
#
# The hot path of the phone (DESIGN §6, issue #4: ≥ 10,000 visits/s over HTTP). Per item only
# what must be Python: pydantic validation of the item (so one bad item is rejected alone) and
# the content hash. Everything else is set-based, four statements per batch: one INSERT that
# also checks scope and household, one SELECT for the UUIDs that were not inserted (retries,
# clashes, unknown households), one UPDATE for the verification flags, and one SELECT that
# builds the stored visits as JSON in PostgreSQL; the response is spliced together with orjson.

ItemStatusValues = ("created", "duplicate", "conflict", "rejected")


@dataclass(slots=True)
class _Item:
    index: int
    client_uuid: str | None = None  # canonical text form
    row: dict[str, Any] | None = None  # what the INSERT stores
    content_hash: str = ""
    status: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    visit_id: int | None = None

    def reject(self, loc: list[str | int], msg: str, code: str) -> None:
        self.status = "rejected"
        self.errors.append({"loc": loc, "msg": msg, "code": code})


def _guess_uuid(raw: Any) -> str | None:
    try:
        return str(uuid.UUID(str(raw.get("client_uuid"))))
    except (AttributeError, ValueError, TypeError):
        return None


def _content_hash(canonical: list[Any]) -> str:
    """SHA-256 of the visit's content as stored (WGS84, UTC): what "same content" means.

    ``canonical`` is [household_id, visited_at (UTC ISO), point WKT, accuracy_m, method, notes,
    needs, attachment ids]; its ``json.dumps`` text is hashed (the stored hashes were made so)."""
    return hashlib.sha256(_canonical_json(canonical).encode()).hexdigest()


_canonical_json = json.JSONEncoder(ensure_ascii=False).encode  # = json.dumps(…, ensure_ascii=False)


def _plain_point(coordinates: list[float], coord_sys: CoordSys) -> tuple[float, float] | None:
    """A WGS84 point with finite coordinates inside China, rounded as stored, else None.

    The common case, decided without the GeoJSON → shapely round trip of ``parse_geometry``
    (most of the per-item parse time); anything else goes through ``parse_geometry``, which
    gives the same result for these points and the error for all others.
    """
    if coord_sys != CoordSys.wgs84:
        return None
    x, y = coordinates[0], coordinates[1]
    minx, miny, maxx, maxy = CHINA_EXTENT
    if not (math.isfinite(x) and math.isfinite(y) and minx <= x <= maxx and miny <= y <= maxy):
        return None
    return round(x, 7), round(y, 7)


def _parse(index: int, raw: Any, coord_sys: CoordSys, context: dict[str, bool] | None) -> _Item:
    item = _Item(index)
    loc: list[str | int] = ["body", "visits", index]
    if not isinstance(raw, dict):
        item.reject(loc, "每条走访应为 JSON 对象", "dict_type")
        return item
    try:
        data = VisitIn.model_validate(raw, context=context)
    except ValidationError as exc:
        item.client_uuid = _guess_uuid(raw)
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"]) or "visit"
            own = err["type"] in ("invalid_need", "visited_at_out_of_range", "nul_character")
            msg = err["msg"] if own else f"字段 {where} 取值不正确"
            item.reject([*loc, *err["loc"]], msg, err["type"])
        return item
    point = None
    if data.location is not None:
        point = _plain_point(data.location.coordinates, coord_sys)
        if point is None:
            try:
                shape = parse_geometry(
                    data.location, loc=[*loc, "location"], kind="point", coord_sys=coord_sys
                )
            except InvalidGeometry as exc:
                item.client_uuid = str(data.client_uuid)
                for e in exc.errors:
                    item.reject(e.loc, e.msg, e.code)
                return item
            point = round(shape.x, 7), round(shape.y, 7)
    visited_at = data.visited_at.astimezone(UTC).isoformat()
    attachments = [str(a) for a in data.attachment_ids]
    wkt = f"POINT({point[0]:.7f} {point[1]:.7f})" if point else None
    item.client_uuid = str(data.client_uuid)
    item.content_hash = _content_hash(
        [
            data.household_id,
            visited_at,
            wkt,
            data.accuracy_m,
            data.method,
            data.notes,
            data.needs,
            attachments,
        ]
    )
    item.row = {
        "u": item.client_uuid,
        "c": item.content_hash,
        "h": data.household_id,
        "t": visited_at,
        "x": point[0] if point else None,
        "y": point[1] if point else None,
        "a": data.accuracy_m,
        "m": data.method,
        "n": data.notes,
        "d": data.needs,
        "p": attachments,
    }
    return item


def _pg_array(values: Any) -> str:
    """A PostgreSQL array literal of ids or UUIDs (one text parameter, cast in SQL: psycopg's
    per-element list dumping costs more than the query it feeds)."""
    return "{" + ",".join(str(v) for v in values) + "}"


def upload_batch(
    session: Session, scope: Scope, visits: list[Any], *, coord_sys: CoordSys
) -> bytes:
    """Store each new visit once; every item gets its own outcome, none sinks another.

    Returns the ``VisitBatchResult`` JSON. A concurrent upload of the same UUID (a retry racing
    the original) waits on the unique index and then finds the stored row: stored once,
    reported as duplicate (or conflict). Rows are inserted in UUID order; should PostgreSQL
    still pick this batch as a deadlock victim, it is run again (``retrying``).
    """
    return retrying(session, lambda: _upload_batch(session, scope, visits, coord_sys=coord_sys))


def _upload_batch(
    session: Session, scope: Scope, visits: list[Any], *, coord_sys: CoordSys
) -> bytes:
    if len(visits) > MAX_BATCH:
        raise PayloadInvalid(
            [FieldError(["body", "visits"], f"每批最多 {MAX_BATCH} 条", "batch_too_large")]
        )
    context = None if has_nul(visits) else NUL_FREE
    items = [_parse(i, raw, coord_sys, context) for i, raw in enumerate(visits)]

    # The first occurrence of a UUID in the batch is the one processed; repeats follow it.
    first: dict[str, _Item] = {}
    repeats: list[tuple[_Item, _Item]] = []
    for item in items:
        if item.status is None and item.client_uuid is not None:
            if item.client_uuid in first:
                repeats.append((item, first[item.client_uuid]))
            else:
                first[item.client_uuid] = item

    pending = list(first.values())
    created_ids: list[int] = []
    if pending:
        member_id = session.scalar(select(User.member_id).where(User.id == scope.user_id))
        created_ids = _insert(session, scope, pending, member_id=member_id)
        # Not inserted: stored before (a retry), taken meanwhile by a concurrent upload, or a
        # household the caller may not visit.
        _match_stored(session, [i for i in pending if i.status is None])
        for item in pending:
            if item.status is None:
                item.reject(
                    ["body", "visits", item.index, "household_id"],
                    "户不存在、已注销或不在您的权限范围内",
                    "household_not_found",
                )
        if created_ids:
            _compute_flags(session, created_ids, with_photos=any(i.row["p"] for i in pending))

    for item, original in repeats:
        if original.visit_id is not None:
            same = item.content_hash == original.content_hash
            item.status = "duplicate" if same else "conflict"
            item.visit_id = original.visit_id if same else None
            if not same:
                item.errors = [_conflict_error(item.index)]
        else:
            item.status, item.errors = original.status, list(original.errors)

    visible = visit_json(session, scope, [i.visit_id for i in items if i.visit_id is not None])
    outcomes = []
    counts = dict.fromkeys(ItemStatusValues, 0)
    for item in items:
        visit = visible.get(item.visit_id) if item.visit_id is not None else None
        if item.status == "duplicate" and visit is None:
            # Stored under this UUID but not the caller's to see: same answer as a clash.
            item.status, item.errors = "conflict", [_conflict_error(item.index)]
        status = item.status or "rejected"
        counts[status] += 1
        outcomes.append(
            {
                "index": item.index,
                "client_uuid": item.client_uuid,
                "status": status,
                "visit": _visit_out(visit, coord_sys) if visit is not None else None,
                "errors": item.errors,
            }
        )
    if counts["created"]:
        audit.record(
            session,
            scope,
            action="upload",
            entity="visit",
            entity_id=f"batch:{counts['created']}",
            after={"created": [o["client_uuid"] for o in outcomes if o["status"] == "created"]},
        )
    return wire.dumps({"items": outcomes, **counts})


def _conflict_error(index: int) -> dict[str, Any]:
    return {
        "loc": ["body", "visits", index, "client_uuid"],
        "msg": "该 UUID 已用于另一条内容不同的走访",
        "code": "uuid_conflict",
    }


def _match_stored(session: Session, items: list[_Item]) -> None:
    """Items whose UUID is already stored: duplicate when the content matches, else conflict."""
    if not items:
        return
    rows = session.execute(
        text(
            "SELECT client_uuid::text AS client_uuid, id, content_hash FROM visits"
            " WHERE client_uuid = ANY(CAST(:u AS uuid[]))"
        ),
        {"u": _pg_array(i.client_uuid for i in items)},
    ).all()
    stored = {r.client_uuid: r for r in rows}
    for item in items:
        row = stored.get(item.client_uuid)
        if row is None:
            continue
        if row.content_hash == item.content_hash:
            item.status, item.visit_id = "duplicate", row.id
        else:
            item.status, item.errors = "conflict", [_conflict_error(item.index)]


def _insert(
    session: Session, scope: Scope, items: list[_Item], *, member_id: int | None
) -> list[int]:
    """One INSERT for the whole batch, of the items whose household is live and in the caller's
    scope; the rows travel as one JSON parameter (a VALUES list of 500 × 15 bound parameters
    costs more to compile than to run)."""
    where, params = scope.sql("household", "h")
    created = dict(
        session.execute(
            text(queries.INSERT_SQL.format(scope=where)),
            {
                **params,
                "rows": orjson.dumps([i.row for i in items]).decode(),
                "member_id": member_id,
                "user_id": scope.user_id,
            },
        ).all()
    )
    for item in items:
        visit_id = created.get(item.client_uuid)
        if visit_id is not None:
            item.status, item.visit_id = "created", visit_id
    return list(created.values())


def _compute_flags(session: Session, visit_ids: list[int], *, with_photos: bool) -> None:
    rules = get_settings().visits
    ids = _pg_array(visit_ids)
    session.execute(
        text(queries.FLAGS_SQL),
        {
            "ids": ids,
            "distance_m": rules.distance_m,
            "accuracy_max_m": rules.accuracy_max_m,
            "max_speed_kmh": rules.max_speed_kmh,
            "future_minutes": rules.future_tolerance_minutes,
            "delay_days": rules.max_upload_delay_days,
            "burst_minutes": rules.burst_minutes,
            "burst_count": rules.burst_count,
        },
    )
    if not with_photos:
        return
    hashes = session.scalars(
        text(
            "SELECT DISTINCT a.sha256 FROM visits v JOIN attachments a "
            "ON a.id = ANY(v.attachment_ids) WHERE v.id = ANY(CAST(:ids AS bigint[]))"
        ),
        {"ids": ids},
    ).all()
    if hashes:
        session.execute(text(queries.PHOTO_REUSE_SQL), {"hashes": list(hashes)})


def visit_json(session: Session, scope: Scope, ids: list[int]) -> dict[int, str]:
    """The visits of ``ids`` the caller may see, each as ``VisitRead`` JSON built by PostgreSQL."""
    if not ids:
        return {}
    where, params = scope.sql("visit", "v")
    rows = session.execute(
        text(
            f"SELECT v.id, {queries.VISIT_JSON} FROM visits v"
            f" WHERE {where} AND v.id = ANY(CAST(:ids AS bigint[]))"
        ),
        {**params, "ids": _pg_array(ids)},
    ).all()
    return dict(rows)  # type: ignore[arg-type]


def _visit_out(visit: str, coord_sys: CoordSys) -> Any:
    if coord_sys == CoordSys.wgs84:
        return orjson.Fragment(visit)
    data = orjson.loads(visit)
    data["location"] = to_geojson(data["location"], coord_sys)
    return data


def _visit_read(row: Any, coord_sys: CoordSys) -> VisitRead:
    # _asdict, not dict(row._mapping): the mapping builds a key view per row
    data = row._asdict()
    data["location"] = to_geojson(data.pop("geometry"), coord_sys)
    return VisitRead(**data)


def read_visits(
    session: Session, scope: Scope, ids: list[int], coord_sys: CoordSys
) -> dict[int, VisitRead]:
    if not ids:
        return {}
    where, params = scope.sql("visit", "v")
    rows = session.execute(
        text(f"SELECT {queries.VISIT_COLUMNS} FROM visits v WHERE {where} AND v.id = ANY(:ids)"),
        {**params, "ids": ids},
    ).all()
    return {r.id: _visit_read(r, coord_sys) for r in rows}


# -- reads and review -----------------------------------------------------------------------------


def get_visit(session: Session, scope: Scope, visit_id: int, *, coord_sys: CoordSys) -> VisitRead:
    found = read_visits(session, scope, [visit_id], coord_sys)
    if visit_id not in found:
        raise NotFound("走访记录")
    return found[visit_id]


def list_visits(session: Session, scope: Scope, **query: Unpack[queries.VisitQuery]) -> PageResult:
    """Newest visit first; keyset on (visited_at, id)."""
    return queries.visits_page(session, scope, **query)


def review_visit(
    session: Session,
    scope: Scope,
    visit_id: int,
    *,
    decision: str,
    reason: str,
    coord_sys: CoordSys,
) -> VisitRead:
    """Accept or reject a visit (flagged ones count only once accepted); audited."""
    visit = session.scalar(scope.select(Visit).where(Visit.id == visit_id).with_for_update())
    if visit is None:
        raise NotFound("走访记录")
    if visit.user_id == scope.user_id:
        raise Forbidden("不能审核本人上传的走访", code="own_visit")
    before = {"review_status": visit.review_status, "review_reason": visit.review_reason}
    visit.review_status = "accepted" if decision == "accept" else "rejected"
    visit.review_reason = reason
    visit.reviewed_by = scope.user_id
    visit.reviewed_at = datetime.now(UTC)
    session.flush()
    audit.record(
        session,
        scope,
        action=f"review_{decision}",
        entity="visit",
        entity_id=visit.id,
        county_code=visit.county_code,
        before=before,
        after={"review_status": visit.review_status, "review_reason": reason},
    )
    return get_visit(session, scope, visit_id, coord_sys=coord_sys)


# -- photos ---------------------------------------------------------------------------------------

_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


def sniff_image(data: bytes) -> str | None:
    """The media type by magic number (what the bytes are, whatever the client claims)."""
    for magic, media_type in _SIGNATURES:
        if data.startswith(magic):
            return media_type
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def put_attachment(
    session: Session, scope: Scope, attachment_id: uuid.UUID, data: bytes, *, store: BlobStore
) -> tuple[Attachment, bool]:
    """Store a photo under the phone's UUID; (attachment, created). Same UUID and bytes: no-op.
    Flagging the other visits with the same photo is a multi-row write: retried if it loses a
    deadlock."""
    return retrying(
        session, lambda: _put_attachment(session, scope, attachment_id, data, store=store)
    )


def _put_attachment(
    session: Session, scope: Scope, attachment_id: uuid.UUID, data: bytes, *, store: BlobStore
) -> tuple[Attachment, bool]:
    limit = get_settings().visits.attachment_max_bytes
    if len(data) > limit:
        raise PayloadTooLarge(f"照片不能超过 {limit // 1024} KB")
    media_type = sniff_image(data)
    if media_type is None:
        raise UnsupportedMedia("照片应为 JPEG、PNG 或 WebP 格式", code="unsupported_image")
    digest = hashlib.sha256(data).hexdigest()
    existing = session.get(Attachment, attachment_id)
    if existing is None:
        store.put(digest, data)  # before the row: a row never points at a missing blob
        inserted = session.execute(
            insert(Attachment)
            .values(
                id=attachment_id,
                county_code=scope.county_code,
                user_id=scope.user_id,
                sha256=digest,
                size=len(data),
                media_type=media_type,
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(Attachment.id)
        ).first()
        existing = session.get(Attachment, attachment_id, populate_existing=True)
        assert existing is not None
        if inserted is not None:
            session.execute(text(queries.PHOTO_REUSE_SQL), {"hashes": [digest]})
            audit.record(
                session,
                scope,
                action="upload",
                entity="attachment",
                entity_id=attachment_id,
                after={"sha256": digest, "size": len(data), "media_type": media_type},
            )
            return existing, True
    if existing.sha256 != digest:
        raise Conflict("该 UUID 已用于另一张照片", code="attachment_conflict")
    return existing, False


def get_attachment(
    session: Session, scope: Scope, attachment_id: uuid.UUID, *, store: BlobStore
) -> tuple[Attachment, bytes]:
    """The photo, if the caller uploaded it, or a visit, an issue or an issue's timeline entry
    in the caller's scope refers to it."""
    attachment = session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound("照片")
    if attachment.user_id != scope.user_id:
        by_visit = (
            select(Visit.id)
            .where(scope.where(Visit), Visit.attachment_ids.contains([attachment_id]))
            .exists()
        )
        # Issues above this domain answer for their own photos (gridgov.events).
        if not session.scalar(select(by_visit)) and not any(
            events.publish(session, AttachmentReferences(scope, attachment_id))
        ):
            raise NotFound("照片")
    return attachment, store.get(attachment.sha256)


# -- due list -------------------------------------------------------------------------------------


def intervals_for(county_code: str) -> dict[str, int]:
    """Tag → visit interval in days: DESIGN §6 defaults with the county's overrides."""
    return TAG_INTERVAL_DAYS | get_settings().visits.intervals.get(county_code, {})


def due_list(
    session: Session,
    scope: Scope,
    *,
    position: tuple[float, float] | None,
    coord_sys: CoordSys,
    within_days: int,
    limit: int,
    pii: bool = False,
    audited: bool = True,
) -> list[DueHousehold]:
    """The caller's households that are due or overdue, most overdue first.

    "The caller's households": those the caller's Party member contacts; a user with no linked
    member gets every household of their scope (a grid member: their grid). Heads' names follow
    the personal-data rule: in clear for a grid member (its phone works offline with them) or
    with ``pii=true``; a list that shows any is one audit entry (``audited``; a sync page
    records its own).
    """
    shown = privacy.shown(scope, "due_list", pii)
    member_id = session.scalar(select(User.member_id).where(User.id == scope.user_id))
    where, params = scope.sql("household", "h")
    if member_id is not None:
        where += (
            " AND EXISTS (SELECT 1 FROM contacts c WHERE c.household_id = h.id"
            " AND c.member_id = :member_id AND c.valid_to IS NULL)"
        )
        params["member_id"] = member_id
    distance = "NULL::float8"
    if position is not None:
        lon, lat = position
        if coord_sys != CoordSys.wgs84:
            lon, lat = convert(lon, lat, coord_sys, CoordSys.wgs84)
        distance = (
            "ST_Distance(h.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)"
        )
        params.update(lon=float(lon), lat=float(lat))
    params.update(
        intervals=json.dumps(intervals_for(scope.county_code)),
        ordinary=ORDINARY_INTERVAL_DAYS,
        within_days=within_days,
        limit=limit,
    )
    rows = session.execute(
        text(queries.DUE_SQL.format(where=where, distance=distance)), params
    ).all()
    now = datetime.now(UTC)
    out = []
    for r in rows:
        data = dict(r._mapping)
        data["location"] = to_geojson(data.pop("geometry"), coord_sys)
        data["overdue_days"] = max((now - data["due_at"]).days, 0)
        privacy.mask("household", data, shown=shown)
        if data["distance_m"] is not None:
            data["distance_m"] = round(data["distance_m"], 1)
        out.append(DueHousehold(**data))
    if shown and audited and out:
        privacy.record_read(session, scope, "due_list", f"households:{len(out)}", due_counts(out))
    return out


def due_counts(items: list[DueHousehold]) -> dict[str, int]:
    """What an audit entry of a due list names: how many households, not who."""
    return {"households": len({d.household_id for d in items})}
