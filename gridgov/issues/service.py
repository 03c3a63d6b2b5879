"""事件: reporting (idempotent by client UUID, grid by ST_Covers, duplicates linked), the
workflow (one table in ``workflow.py``), deadlines on the working calendar, escalation, KPIs."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, literal_column, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridgov import events
from gridgov.audit import service as audit
from gridgov.auth.scope import Scope
from gridgov.config import get_settings
from gridgov.errors import Conflict, FieldError, NotFound, RuleViolation
from gridgov.geo import CoordSys
from gridgov.geojson import parse_geometry
from gridgov.hierarchy.models import AdminUnit, Grid
from gridgov.households.models import Household
from gridgov.issues import calendar, workflow
from gridgov.issues.events import IssuesEscalated
from gridgov.issues.models import Issue, IssueCategory, IssueEvent
from gridgov.issues.schemas import IssueCreate, IssueKpis, TransitionCreate
from gridgov.issues.workflow import Action, State
from gridgov.pagination import decode_id_cursor, encode_cursor
from gridgov.visits.events import AttachmentReferences


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


# -- categories -------------------------------------------------------------------------------


def list_categories(session: Session) -> list[IssueCategory]:
    return list(session.scalars(select(IssueCategory).order_by(IssueCategory.code)))


# -- reporting --------------------------------------------------------------------------------


def _content_hash(body: IssueCreate, lon: float, lat: float) -> str:
    content = {
        "category_code": body.category_code,
        "description": body.description,
        "location": [round(lon, 7), round(lat, 7)],
        "grid_code": body.grid_code,
        "address": body.address,
        "household_id": body.household_id,
        "photo_ids": sorted(str(p) for p in body.photo_ids),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


_LOCATE_SQL = text(
    """
    SELECT v.id AS village_id, g.id AS grid_id
    FROM (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS geom) p
    JOIN admin_units v ON ST_Covers(v.geom, p.geom)
    LEFT JOIN LATERAL (
        SELECT g.id FROM grids g
        WHERE g.village_id = v.id AND g.valid_to IS NULL AND ST_Covers(g.geom, p.geom)
        ORDER BY g.code LIMIT 1
    ) g ON true
    WHERE v.level = 'village' AND v.valid_to IS NULL AND v.county_code = :county
    ORDER BY v.code LIMIT 1
    """
)

# A grid the reporter names instead of the derived one: of the same county, near the point.
_NEAR_GRID_SQL = text(
    """
    SELECT g.id, g.village_id FROM grids g
    WHERE g.code = :code AND g.county_code = :county AND g.valid_to IS NULL
      AND ST_DWithin(g.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography,
                     :radius)
    """
)

_DUPLICATES_SQL = text(
    """
    SELECT i.id FROM issues i
    WHERE i.county_code = :county AND i.category_code = :category
      AND i.created_at >= :since AND i.state NOT IN ('REJECTED', 'MERGED', 'CANCELLED')
      AND ST_DWithin(i.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography,
                     :radius)
    ORDER BY i.id
    """
)


def _locate(
    session: Session, scope: Scope, body: IssueCreate, lon: float, lat: float
) -> tuple[int, int | None]:
    params = {"lon": lon, "lat": lat, "county": scope.county_code}
    if body.grid_code is not None:
        radius = get_settings().issues.grid_correction_m
        row = session.execute(
            _NEAR_GRID_SQL, {**params, "code": body.grid_code, "radius": radius}
        ).first()
        if row is None:
            raise RuleViolation(
                [
                    FieldError(
                        ["body", "grid_code"],
                        f"网格不存在，或距上报位置超过 {radius:g} 米",
                        "grid_not_near_location",
                    )
                ]
            )
        return row.village_id, row.id
    row = session.execute(_LOCATE_SQL, params).first()
    if row is None:
        raise RuleViolation(
            [FieldError(["body", "location"], "位置不在本县任何村内", "location_outside_county")]
        )
    return row.village_id, row.grid_id


def _in_scope(scope: Scope, village_id: int, grid_id: int | None) -> bool:
    if scope.grid_bound:
        return grid_id == scope.grid_id
    return scope.covers_village(village_id)


def report_issue(
    session: Session,
    scope: Scope,
    body: IssueCreate,
    *,
    coord_sys: CoordSys = CoordSys.wgs84,
    now: datetime | None = None,
) -> tuple[Issue, bool]:
    """Store a reported issue; the same client UUID and content again returns the stored one
    (``created`` False); the same UUID with other content is a conflict."""
    now = _now(now)
    point = parse_geometry(
        body.location, loc=["body", "location"], kind="point", coord_sys=coord_sys
    )
    lon, lat = point.x, point.y
    digest = _content_hash(body, lon, lat)
    stored = session.scalar(select(Issue).where(Issue.client_uuid == body.client_uuid))
    if stored is not None:
        return _same_or_conflict(stored, digest, scope), False

    category = session.get(IssueCategory, body.category_code)
    if category is None:
        raise RuleViolation(
            [FieldError(["body", "category_code"], "事件分类不存在", "unknown_category")]
        )
    if category.photo_required and not body.photo_ids:
        raise RuleViolation(
            [FieldError(["body", "photo_ids"], "该类事件须附照片", "photo_required")]
        )
    village_id, grid_id = _locate(session, scope, body, lon, lat)
    if not _in_scope(scope, village_id, grid_id):
        raise RuleViolation(
            [FieldError(["body", "location"], "位置不在您负责的范围内", "location_outside_scope")]
        )
    if body.household_id is not None:
        found = session.scalar(
            select(Household.id).where(Household.id == body.household_id, scope.where(Household))
        )
        if found is None:
            raise RuleViolation(
                [FieldError(["body", "household_id"], "户不存在或不在范围内", "unknown_household")]
            )

    settings = get_settings().issues
    duplicates = list(
        session.scalars(
            _DUPLICATES_SQL,
            {
                "county": scope.county_code,
                "category": category.code,
                "since": now - timedelta(days=settings.duplicate_days),
                "lon": lon,
                "lat": lat,
                "radius": settings.duplicate_radius_m,
            },
        )
    )
    cal = calendar.load(session, scope.county_code)
    issue = Issue(
        client_uuid=body.client_uuid,
        content_hash=digest,
        county_code=scope.county_code,
        village_id=village_id,
        grid_id=grid_id,
        category_code=category.code,
        priority=category.priority,
        description=body.description,
        address=body.address,
        geom=f"SRID=4326;POINT({lon} {lat})",
        photo_ids=list(body.photo_ids),
        reporter_id=scope.user_id,
        household_id=body.household_id,
        duplicate_ids=duplicates,
        flags=[] if grid_id is not None else ["outside_grid"],
        state=State.REPORTED.value,
        level=1,
        created_at=now,
    )
    _start_sla(issue, cal, category.sla_hours, now)
    try:
        with session.begin_nested():
            session.add(issue)
            session.flush()
    except IntegrityError as exc:
        # Two uploads of one UUID at once: the other one won; answer as for a resubmission.
        if getattr(exc.orig.diag, "constraint_name", None) != "uq_issues_client_uuid":
            raise
        stored = session.scalar(select(Issue).where(Issue.client_uuid == body.client_uuid))
        return _same_or_conflict(stored, digest, scope), False
    _event(session, issue, scope.user_id, "report", None, issue.state, None, 1, None, now)
    audit.record(
        session, scope, action="create", entity="issue", entity_id=issue.id,
        after=audit.snapshot(issue),
    )  # fmt: skip
    return issue, True


def report(
    session: Session, scope: Scope, body: IssueCreate, *, coord_sys: CoordSys
) -> tuple[dict[str, Any], bool]:
    """``report_issue`` answered as the API shows it (with its timeline)."""
    issue, created = report_issue(session, scope, body, coord_sys=coord_sys)
    return read(session, scope, issue, timeline=True), created


def _same_or_conflict(stored: Issue | None, digest: str, scope: Scope) -> Issue:
    # Another account's UUID is never "the same record", whatever the content.
    if stored is None or stored.content_hash != digest or stored.reporter_id != scope.user_id:
        raise Conflict("该 UUID 已用于内容不同的事件", code="client_uuid_reused")
    return stored


def _start_sla(issue: Issue, cal: calendar.WorkCalendar, sla_hours: int, now: datetime) -> None:
    factor = get_settings().issues.escalation_factor
    issue.sla_hours = sla_hours
    issue.sla_started_at = now
    issue.due_at = cal.add_working_hours(now, sla_hours)
    issue.escalate_at = cal.add_working_hours(now, sla_hours * factor)


def _event(
    session: Session,
    issue: Issue,
    user_id: int | None,
    action: str,
    from_state: str | None,
    to_state: str,
    from_level: int | None,
    to_level: int,
    note: str | None,
    now: datetime,
    photo_ids: list[uuid.UUID] | None = None,
) -> None:
    session.add(
        IssueEvent(
            issue_id=issue.id,
            at=now,
            user_id=user_id or None,
            action=action,
            from_state=from_state,
            to_state=to_state,
            from_level=from_level,
            to_level=to_level,
            note=note,
            photo_ids=list(photo_ids or []),
        )
    )


# -- reads ------------------------------------------------------------------------------------


def get_or_raise(session: Session, scope: Scope, issue_id: int, *, lock: bool = False) -> Issue:
    stmt = scope.select(Issue).where(Issue.id == issue_id)
    if lock:
        stmt = stmt.with_for_update(of=Issue).execution_options(populate_existing=True)
    issue = session.scalar(stmt)
    if issue is None:
        raise NotFound("事件")
    return issue


# Photos an issue refers to (its report's, then each timeline entry's, in order, once each)
# that have not been uploaded yet: phones report first and upload when they can.
_MISSING_PHOTOS = literal_column(
    """ARRAY(
        SELECT p.x FROM (
            SELECT DISTINCT ON (q.x) q.x, q.event_id, q.n FROM (
                SELECT u.x, CAST(0 AS bigint) AS event_id, u.n
                FROM unnest(issues.photo_ids) WITH ORDINALITY AS u(x, n)
                UNION ALL
                SELECT u.x, e.id, u.n FROM issue_events e
                CROSS JOIN LATERAL unnest(e.photo_ids) WITH ORDINALITY AS u(x, n)
                WHERE e.issue_id = issues.id
            ) q
            WHERE NOT EXISTS (SELECT 1 FROM attachments a WHERE a.id = q.x)
            ORDER BY q.x, q.event_id, q.n
        ) p
        ORDER BY p.event_id, p.n
    )"""
)
_MISSING_EVENT_PHOTOS = literal_column(
    "ARRAY(SELECT x FROM unnest(issue_events.photo_ids) WITH ORDINALITY AS u(x, n)"
    " WHERE NOT EXISTS (SELECT 1 FROM attachments a WHERE a.id = u.x) ORDER BY u.n)"
)


def _places(session: Session, ids: list[int]) -> dict[int, Any]:
    """Point, codes and missing photos of several issues in one query (a list page is not
    N+1)."""
    rows = session.execute(
        select(
            Issue.id,
            func.ST_X(Issue.geom).label("lon"),
            func.ST_Y(Issue.geom).label("lat"),
            AdminUnit.code.label("village_code"),
            Grid.code.label("grid_code"),
            _MISSING_PHOTOS.label("missing_attachments"),
        )
        .select_from(Issue)
        .join(AdminUnit, AdminUnit.id == Issue.village_id)
        .outerjoin(Grid, Grid.id == Issue.grid_id)
        .where(Issue.id.in_(ids))
    )
    return {r.id: r for r in rows}


def read(
    session: Session, scope: Scope, issue: Issue, *, timeline: bool, place: Any = None
) -> dict[str, Any]:
    row = place if place is not None else _places(session, [issue.id])[issue.id]
    out: dict[str, Any] = {
        c: getattr(issue, c)
        for c in [
            "id",
            "client_uuid",
            "category_code",
            "priority",
            "description",
            "address",
            "flags",
            "photo_ids",
            "reporter_id",
            "household_id",
            "duplicate_ids",
            "state",
            "level",
            "handler_id",
            "sla_hours",
            "due_at",
            "escalate_at",
            "resolved_at",
            "closed_at",
            "on_time",
            "extended",
            "rework_count",
            "rating",
            "close_reason",
            "version",
            "created_at",
        ]
    }
    out["location"] = [round(row.lon, 7), round(row.lat, 7)]
    out["village_code"] = row.village_code
    out["grid_code"] = row.grid_code
    out["missing_attachments"] = list(row.missing_attachments or [])
    out["allowed_actions"] = workflow.allowed_actions(issue.state, scope.role, issue.level)
    out["timeline"] = (
        [
            {
                "at": e.at,
                "user_id": e.user_id,
                "action": e.action,
                "from_state": e.from_state,
                "to_state": e.to_state,
                "from_level": e.from_level,
                "to_level": e.to_level,
                "note": e.note,
                "photo_ids": e.photo_ids,
                "missing_attachments": list(missing or []),
            }
            for e, missing in session.execute(
                select(IssueEvent, _MISSING_EVENT_PHOTOS)
                .where(IssueEvent.issue_id == issue.id)
                .order_by(IssueEvent.id)
            )
        ]
        if timeline
        else []
    )
    return out


def get_issue(session: Session, scope: Scope, issue_id: int) -> dict[str, Any]:
    return read(session, scope, get_or_raise(session, scope, issue_id), timeline=True)


def list_issues(
    session: Session,
    scope: Scope,
    *,
    state: str | None = None,
    level: int | None = None,
    category_code: str | None = None,
    mine: bool = False,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first. ``mine``: the caller's queue — what they handle, or what waits at their
    level (a grid member: level 1; a village admin: 2; township 3; county 4)."""
    after = decode_id_cursor(cursor)
    stmt = scope.select(Issue)
    if after:
        stmt = stmt.where(Issue.id < after)
    if state is not None:
        stmt = stmt.where(Issue.state == state)
    if level is not None:
        stmt = stmt.where(Issue.level == level)
    if category_code is not None:
        stmt = stmt.where(Issue.category_code.like(category_code + "%"))
    if mine:
        own_level = {"grid_member": 1, "village_admin": 2, "township_admin": 3}.get(scope.role, 4)
        stmt = stmt.where(
            (Issue.handler_id == scope.user_id)
            | ((Issue.level == own_level) & Issue.state.notin_(_FINISHED))
        )
    issues = list(session.scalars(stmt.order_by(Issue.id.desc()).limit(limit + 1)))
    more = len(issues) > limit
    issues = issues[:limit]
    places = _places(session, [i.id for i in issues])
    items = [read(session, scope, i, timeline=False, place=places[i.id]) for i in issues]
    return items, (encode_cursor(issues[-1].id) if more else None)


_FINISHED = [s.value for s in workflow.TERMINAL | {State.CLOSED}]


# -- transitions ------------------------------------------------------------------------------


def transition(
    session: Session,
    scope: Scope,
    issue_id: int,
    body: TransitionCreate,
    *,
    now: datetime | None = None,
) -> Issue:
    """Apply one action. The row is locked first: of two people acting at once, the second
    sees the first one's version and gets 409."""
    now = _now(now)
    issue = get_or_raise(session, scope, issue_id, lock=True)
    if issue.version != body.version:
        raise Conflict(
            "事件已被他人更新，请刷新后重试",
            code="version_conflict",
            current_version=issue.version,
        )
    step = workflow.find(issue.state, body.action, scope.role, issue.level)
    if step is None:
        allowed = workflow.allowed_actions(issue.state, scope.role, issue.level)
        raise Conflict(
            f"当前状态（{issue.state}、{workflow.LEVEL_NAMES[issue.level]}级）下您不能执行该操作",
            code="transition_not_allowed",
            state=issue.state,
            allowed_actions=allowed,
        )
    note = (body.note or "").strip() or None
    if step.reason_required and note is None:
        raise RuleViolation([FieldError(["body", "note"], "此操作须填写原因", "reason_required")])
    before = audit.snapshot(issue)
    from_state, from_level = issue.state, issue.level
    cal = calendar.load(session, issue.county_code)
    action = body.action
    if action is Action.escalate:
        _escalate(session, issue, cal, now)
    else:
        _apply(issue, action, scope, body, note, cal, now)
        issue.state = step.target.value  # type: ignore[union-attr]
    session.flush()
    _event(
        session, issue, scope.user_id, action.value, from_state, issue.state, from_level,
        issue.level, note, now, body.photo_ids,
    )  # fmt: skip
    audit.record(
        session, scope, action=f"transition:{action.value}", entity="issue", entity_id=issue.id,
        before=before, after=audit.snapshot(issue),
    )  # fmt: skip
    if action is Action.escalate:
        events.publish(session, IssuesEscalated((issue.id,), now))  # the new unit, at once
    return issue


def apply_transition(
    session: Session, scope: Scope, issue_id: int, body: TransitionCreate
) -> dict[str, Any]:
    """``transition`` answered as the API shows it (with its timeline)."""
    return read(session, scope, transition(session, scope, issue_id, body), timeline=True)


def _apply(
    issue: Issue,
    action: Action,
    scope: Scope,
    body: TransitionCreate,
    note: str | None,
    cal: calendar.WorkCalendar,
    now: datetime,
) -> None:
    if action is Action.start:
        issue.handler_id = scope.user_id
    elif action is Action.return_:
        issue.handler_id = None
    elif action in (Action.resolve, Action.self_resolve):
        issue.resolved_by = scope.user_id
        issue.resolved_at = now
        issue.resolved_level = issue.level
        issue.on_time = now <= issue.due_at
    elif action is Action.verify:
        if scope.user_id in (issue.resolved_by, issue.handler_id):
            raise Conflict("核查须由处置人以外的人员进行", code="verifier_is_handler")
    elif action is Action.rework:
        issue.rework_count += 1
        issue.resolved_at = issue.on_time = None
    elif action is Action.close:
        issue.closed_at = now
        issue.rating = body.rating
    elif action is Action.reopen:
        days = get_settings().issues.reopen_days
        if issue.closed_at is None or now - issue.closed_at > timedelta(days=days):
            raise Conflict(f"结案超过 {days} 天，不能重新打开", code="reopen_window_passed")
        issue.closed_at = issue.rating = issue.resolved_at = issue.on_time = None
        issue.rework_count += 1
    elif action is Action.hold:
        issue.hold_started_at = now
        issue.extended = True
    elif action is Action.resume:
        # The clock stood still while on hold: push both deadlines by the working time lost.
        paused = cal.working_hours_between(issue.hold_started_at or now, now)
        issue.due_at = cal.add_working_hours(issue.due_at, paused)
        issue.escalate_at = cal.add_working_hours(issue.escalate_at, paused)
        issue.hold_started_at = None
    elif action in (Action.reject, Action.merge, Action.cancel):
        issue.close_reason = note


def _escalate(session: Session, issue: Issue, cal: calendar.WorkCalendar, now: datetime) -> None:
    """Hand the issue to the next unit up, with a fresh SLA; the history stays."""
    if issue.level >= workflow.TOP_LEVEL:
        raise Conflict("事件已在县级，不能再上报", code="top_level", allowed_actions=[])
    next_level = issue.level + 1
    if next_level == 2:
        unit_id: int | None = issue.village_id
    else:
        unit_id = session.scalar(select(AdminUnit.parent_id).where(AdminUnit.id == issue.unit_id))
    issue.level = next_level
    issue.unit_id = unit_id
    issue.handler_id = None
    issue.state = workflow.ESCALATED_STATE.value
    issue.escalation_count += 1
    _start_sla(issue, cal, issue.sla_hours, now)


@events.subscribe(AttachmentReferences)
def _refers_to_photo(session: Session, event: AttachmentReferences) -> bool:
    """Whether an issue, or an issue's timeline entry, in the caller's scope shows this photo
    (visits ask: ``gridgov.visits.service.get_attachment``)."""
    photo, scope = event.attachment_id, event.scope
    by_issue = select(Issue.id).where(scope.where(Issue), Issue.photo_ids.any(photo)).exists()
    by_event = (
        select(IssueEvent.id)
        .join(Issue, Issue.id == IssueEvent.issue_id)
        .where(scope.where(Issue), IssueEvent.photo_ids.any(photo))
        .exists()
    )
    return bool(session.scalar(select(by_issue | by_event)))


# -- jobs -------------------------------------------------------------------------------------


@dataclass
class JobResult:
    escalated: list[int]


def escalate_overdue(
    session: Session, *, now: datetime | None = None, limit: int = 500
) -> JobResult:
    """Escalate open issues past their escalation time. Rows are taken with SKIP LOCKED, so two
    runs at once share the work and escalate each issue once; the caller commits."""
    now = _now(now)
    issues = list(
        session.scalars(
            select(Issue)
            .where(
                Issue.state.in_([s.value for s in workflow.ACTIVE]),
                Issue.escalate_at <= now,
                Issue.level < workflow.TOP_LEVEL,
            )
            .order_by(Issue.escalate_at, Issue.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    calendars: dict[str, calendar.WorkCalendar] = {}
    for issue in issues:
        cal = calendars.get(issue.county_code) or calendar.load(session, issue.county_code)
        calendars[issue.county_code] = cal
        from_state, from_level = issue.state, issue.level
        _escalate(session, issue, cal, now)
        session.flush()
        note = f"超过时限自动上报至{workflow.LEVEL_NAMES[issue.level]}级"
        _event(
            session, issue, None, "escalate", from_state, issue.state, from_level, issue.level,
            note, now,
        )  # fmt: skip
    session.flush()
    return JobResult(escalated=[i.id for i in issues])


# -- KPIs -------------------------------------------------------------------------------------

_KPI_SQL = """
SELECT
    count(*) AS total,
    count(*) FILTER (WHERE i.state = 'CLOSED') AS closed,
    count(*) FILTER (WHERE i.state = 'CLOSED' AND i.on_time) AS closed_on_time,
    count(*) FILTER (WHERE i.state = 'CLOSED' AND i.rework_count > 0) AS reworked,
    count(*) FILTER (WHERE i.extended) AS extended,
    count(*) FILTER (WHERE i.state = 'CLOSED' AND i.resolved_level = 1) AS closed_in_grid,
    count(i.rating) FILTER (WHERE i.state = 'CLOSED') AS rated,
    avg(i.rating) FILTER (WHERE i.state = 'CLOSED') AS satisfaction
FROM issues i
JOIN admin_units v ON v.id = i.village_id
LEFT JOIN grids g ON g.id = i.grid_id
WHERE i.state NOT IN ('REJECTED', 'MERGED', 'CANCELLED') AND {scope}
  AND (CAST(:unit_code AS text) IS NULL
       OR v.code LIKE :unit_code || '%' OR g.code = :unit_code)
  AND (CAST(:start AS timestamptz) IS NULL OR i.created_at >= :start)
  AND (CAST(:end AS timestamptz) IS NULL OR i.created_at < :end)
"""


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def kpis(
    session: Session,
    scope: Scope,
    *,
    unit_code: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> IssueKpis:
    """KPIs over the issues reported in [start, end) in the caller's scope (README 事件); a
    ``unit_code`` (unit or grid) outside it, or unknown, is NotFound."""
    scope.check_unit_filter(session, unit_code, grid_codes=True)
    where, params = scope.sql("issue", "i")
    row = (
        session.execute(
            text(_KPI_SQL.format(scope=where)),
            {**params, "unit_code": unit_code, "start": start, "end": end},
        )
        .mappings()
        .one()
    )
    closed = row["closed"]
    return IssueKpis(
        unit_code=unit_code,
        period_from=start,
        period_to=end,
        total=row["total"],
        closed=closed,
        closed_on_time=row["closed_on_time"],
        reworked=row["reworked"],
        extended=row["extended"],
        closed_in_grid=row["closed_in_grid"],
        rated=row["rated"],
        closure_rate=_ratio(closed, row["total"]),
        on_time_rate=_ratio(row["closed_on_time"], closed),
        rework_rate=_ratio(row["reworked"], closed),
        extension_rate=_ratio(row["extended"], row["total"]),
        in_grid_rate=_ratio(row["closed_in_grid"], closed),
        satisfaction=None if row["satisfaction"] is None else round(float(row["satisfaction"]), 2),
    )
