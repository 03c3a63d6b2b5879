"""Party members: belong to a village Party organization, may serve a grid."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Unpack

from sqlalchemy.orm import Session

from gridgov import events
from gridgov.audit import service as audit
from gridgov.auth.scope import Scope
from gridgov.errors import Conflict, FieldError, NotFound, RuleViolation
from gridgov.geo import CoordSys
from gridgov.geojson import parse_geometry
from gridgov.hierarchy.models import AdminUnit, Grid, PartyOrg
from gridgov.listing import PageResult, personal_row
from gridgov.members import queries
from gridgov.members.events import MemberLeft
from gridgov.members.models import PartyMember
from gridgov.members.schemas import MemberCreate, MemberRead, MemberUpdate


def list_members(
    session: Session, scope: Scope, **query: Unpack[queries.MemberQuery]
) -> PageResult:
    return queries.members_page(session, scope, **query)


def _member_row(
    session: Session, scope: Scope, member_id: int, *, lock: bool = False
) -> PartyMember:
    return scope.get(session, PartyMember, member_id, "党员", lock=lock)


def get_member(
    session: Session, scope: Scope, member_id: int, *, coord_sys: CoordSys, pii: bool
) -> MemberRead:
    _member_row(session, scope, member_id)
    data = queries.MEMBERS.one(session, member_id, coord_sys=coord_sys, geometry_key="location")
    return MemberRead(**personal_row(session, scope, "members", data, member_id, pii=pii))


def _resolve_grid(
    session: Session, scope: Scope, grid_code: str | None, village_id: int
) -> int | None:
    if grid_code is None:
        return None
    grid = session.scalar(scope.select(Grid).where(Grid.code == grid_code, Grid.valid_to.is_(None)))
    if grid is None:
        raise NotFound(f"网格 {grid_code} ")
    if grid.village_id != village_id:
        raise RuleViolation(
            [
                FieldError(
                    ["body", "grid_code"], "网格须属于党员所在党组织的村", "grid_not_in_village"
                )
            ]
        )
    return grid.id


def _point_wkt(data: Any, coord_sys: CoordSys) -> str | None:
    if data.location is None:
        return None
    point = parse_geometry(
        data.location, loc=["body", "location"], kind="point", coord_sys=coord_sys
    )
    return f"SRID=4326;POINT({point.x!r} {point.y!r})"


def create_member(
    session: Session, scope: Scope, data: MemberCreate, *, coord_sys: CoordSys
) -> MemberRead:
    org = session.scalar(scope.select(PartyOrg).where(PartyOrg.id == data.party_org_id))
    if org is None:
        raise NotFound("党组织")
    unit = session.get(AdminUnit, org.unit_id)
    assert unit is not None
    if unit.level != "village":
        raise RuleViolation(
            [FieldError(["body", "party_org_id"], "党员须登记在村级党组织", "org_not_village")]
        )
    if scope.grid_bound:
        raise NotFound("党组织")
    grid_id = _resolve_grid(session, scope, data.grid_code, unit.id)
    fields = data.model_dump(exclude={"grid_code", "location", "party_org_id"})
    member = PartyMember(
        county_code=unit.county_code,
        party_org_id=org.id,
        village_id=unit.id,
        grid_id=grid_id,
        geom=_point_wkt(data, coord_sys),
        **fields,
    )
    session.add(member)
    session.flush()
    audit.record(
        session,
        scope,
        action="create",
        entity="party_member",
        entity_id=member.id,
        county_code=member.county_code,
        after=audit.snapshot(member),
    )
    return get_member(session, scope, member.id, coord_sys=coord_sys, pii=False)


def update_member(
    session: Session, scope: Scope, member_id: int, data: MemberUpdate, *, coord_sys: CoordSys
) -> MemberRead:
    member = _member_row(session, scope, member_id, lock=True)
    if member.left_at is not None:
        raise Conflict("该党员已离开，不能修改", code="member_left")
    if data.version is not None and data.version != member.version:
        raise Conflict(
            f"该党员信息已被他人修改（当前版本 {member.version}），请刷新后重试",
            code="version_conflict",
            current_version=member.version,
        )
    before = audit.snapshot(member)
    changes = data.model_dump(exclude_unset=True, exclude={"version", "location", "grid_code"})
    for key, value in changes.items():
        setattr(member, key, value)
    if "grid_code" in data.model_fields_set:
        member.grid_id = _resolve_grid(session, scope, data.grid_code, member.village_id)
    if data.location is not None:
        member.geom = _point_wkt(data, coord_sys)
    session.flush()
    audit.record(
        session,
        scope,
        action="update",
        entity="party_member",
        entity_id=member.id,
        county_code=member.county_code,
        before=before,
        after=audit.snapshot(member),
    )
    return get_member(session, scope, member.id, coord_sys=coord_sys, pii=False)


def leave(session: Session, scope: Scope, member_id: int, *, reason: str) -> None:
    """A member who moves away, transfers or dies is kept on record with the date and reason."""
    member = _member_row(session, scope, member_id, lock=True)
    if member.left_at is not None:
        raise Conflict("该党员已离开", code="member_left")
    before = audit.snapshot(member)
    member.left_at = datetime.now(UTC)
    member.left_reason = reason
    session.execute(
        Grid.__table__.update()
        .where(Grid.chief_member_id == member.id)
        .values(chief_member_id=None)
    )
    session.flush()
    events.publish(session, MemberLeft(scope, member.id, reason))  # its contacts end
    audit.record(
        session,
        scope,
        action="leave",
        entity="party_member",
        entity_id=member.id,
        county_code=member.county_code,
        before=before,
        after=audit.snapshot(member),
    )
