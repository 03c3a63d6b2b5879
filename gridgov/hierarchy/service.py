"""Units, Party organizations and grids: reads scoped to the caller, writes through the rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Unpack

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gridgov import events
from gridgov.audit import service as audit
from gridgov.auth import cache as scope_cache
from gridgov.auth.scope import Scope
from gridgov.errors import Conflict, FieldError, NotFound, RuleViolation
from gridgov.geo import CoordSys
from gridgov.geojson import parse_geometry
from gridgov.hierarchy import queries
from gridgov.hierarchy.events import GridsChanged, VillageBoundariesChanged
from gridgov.hierarchy.models import AdminUnit, DivisionCode, Grid, PartyOrg
from gridgov.hierarchy.rules import AreaRow, AreaStage
from gridgov.hierarchy.schemas import (
    GridCreate,
    GridRead,
    GridUpdate,
    PartyOrgCreate,
    PartyOrgRead,
    PartyOrgUpdate,
    UnitCreate,
    UnitRead,
    UnitUpdate,
)
from gridgov.listing import PageResult, personal_row

LEVEL_BY_LENGTH = {6: "county", 9: "township", 12: "village"}


# -- shared -------------------------------------------------------------------------------------


def _check_version(obj: Any, version: int | None, what: str) -> None:
    if version is not None and version != obj.version:
        raise Conflict(
            f"{what}已被他人修改（当前版本 {obj.version}，提交版本 {version}），请刷新后重试",
            code="version_conflict",
            current_version=obj.version,
        )


def _raise_rules(errors: list[FieldError], *, single: bool) -> None:
    if not errors:
        return
    if single:
        # A single write naming a parent outside the caller's scope: not found, not "invalid".
        # The same answer whether the parent is missing or merely out of scope (no leak).
        for e in errors:
            if e.code == "parent_not_found":
                exc = NotFound("上级单位", code="parent_not_found")
                exc.detail, exc.errors = e.msg, [e]
                raise exc
    raise RuleViolation(errors)


# -- units --------------------------------------------------------------------------------------


def list_units(session: Session, scope: Scope, **query: Unpack[queries.UnitQuery]) -> PageResult:
    return queries.units_page(session, scope, **query)


def _unit_row(session: Session, scope: Scope | None, code: str, *, lock: bool = False) -> AdminUnit:
    base = scope.select(AdminUnit) if scope is not None else select(AdminUnit)
    query = base.where(AdminUnit.code == code, AdminUnit.valid_to.is_(None))
    if lock:
        query = query.with_for_update()
    unit = session.scalar(query)
    if unit is None:
        raise NotFound(f"行政单位 {code} ")
    return unit


def get_unit(session: Session, scope: Scope, code: str, *, coord_sys: CoordSys) -> UnitRead:
    return _unit_read(session, _unit_row(session, scope, code).id, coord_sys=coord_sys)


def _unit_read(session: Session, unit_id: int, *, coord_sys: CoordSys) -> UnitRead:
    return UnitRead(**queries.UNITS.one(session, unit_id, coord_sys=coord_sys))


@dataclass
class AreaWrite:
    """The outcome of writing a set of units or grids: all or nothing."""

    ids: list[int] = field(default_factory=list)  # rows created or changed, in stage order
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)
    # Per stored row the write replaces: what changes (name, geometry, parent); see
    # AreaStage.changes. Filled on dry runs too, so that a report shows it before the write.
    changes: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0  # stored rows named by the write that stay exactly as they are


def latest_edition(session: Session, county_code: str) -> str | None:
    """The newest official code list imported for this county (``division_codes``)."""
    return session.scalar(
        select(func.max(DivisionCode.edition)).where(DivisionCode.county_code == county_code)
    )


def _edition_warnings(stage: AreaStage, county_code: str, edition: str | None) -> list[FieldError]:
    """Codes absent from the county's newest official list: allowed, but said (a code valid in
    2018 may have been merged away by 2023)."""
    if edition is None:
        return []
    return [
        stage._error(
            r.idx,
            "code",
            f"代码 {r.code} 不在本县 {edition} 年版统计用区划代码中（可能已撤并或更名），请核实",
            "code_not_in_edition",
        )
        for r in stage._rows(
            "SELECT s.idx, s.code FROM {stage} s WHERE NOT EXISTS (SELECT 1 FROM division_codes d "
            "WHERE d.edition = :edition AND d.county_code = :county AND d.code = s.code) "
            "ORDER BY s.idx",
            edition=edition,
            county=county_code,
        )
    ]


def write_units(
    session: Session,
    scope: Scope | None,
    rows: Iterable[AreaRow],
    *,
    level: str,
    county_code: str,
    loc_prefix: Sequence[str | int] = (),
    dry_run: bool = False,
    clear_geometry: bool = False,
    code_edition: str | None = None,
) -> AreaWrite:
    """Validate and upsert (by ``target_id``) a set of units of one level. All or nothing.

    A row without geometry keeps the stored boundary unless ``clear_geometry``; units may have
    no boundary yet. ``code_edition`` marks the codes as confirmed by that official list;
    without it, codes absent from the county's newest imported list are warned about.
    """
    stage = AreaStage(session, level, loc_prefix=loc_prefix, clear_geometry=clear_geometry)
    scope_cache.forget_after_commit(session)  # a new or moved area may change who sees what
    count = stage.load(rows)
    allowed = None if scope is None else sorted(scope.unit_ids)
    result = AreaWrite(errors=stage.check(allowed_parent_ids=allowed, county_code=county_code))
    if code_edition is None and level != "county":
        result.warnings += _edition_warnings(
            stage, county_code, latest_edition(session, county_code)
        )
    result.warnings += stage.warnings
    result.changes = stage.changes()
    touched = {c["index"] for c in result.changes}
    result.unchanged = len(
        stage._rows("SELECT idx FROM {stage} WHERE target_id IS NOT NULL")
    ) - len(touched)
    if result.errors or dry_run or count == 0:
        stage.drop()
        return result
    edition = {"level": level, "edition": code_edition}
    result.ids = [
        r.id
        for r in session.execute(
            text(
                f"""
                WITH upd AS (
                    UPDATE admin_units u SET name = s.name, geom = ST_Multi(s.geom),
                        parent_id = s.parent_id,
                        code_edition = COALESCE(CAST(:edition AS varchar), u.code_edition),
                        version = u.version + 1, updated_at = now()
                    FROM {stage.name} s WHERE s.target_id = u.id
                      AND (u.name IS DISTINCT FROM s.name
                           OR u.geom IS DISTINCT FROM ST_Multi(s.geom)
                           OR u.parent_id IS DISTINCT FROM s.parent_id
                           OR u.code_edition IS DISTINCT FROM
                              COALESCE(CAST(:edition AS varchar), u.code_edition))
                    RETURNING u.id, s.idx
                ), ins AS (
                    INSERT INTO admin_units (code, name, level, parent_id, county_code, geom,
                        code_edition)
                    SELECT code, name, :level, parent_id, left(code, 6), ST_Multi(geom),
                        CAST(:edition AS varchar)
                    FROM {stage.name} WHERE target_id IS NULL ORDER BY idx RETURNING id
                )
                SELECT id FROM (SELECT id, idx FROM upd ORDER BY idx) u
                UNION ALL SELECT id FROM ins
                """
            ),
            edition,
        )
    ]
    stage.drop()
    if level == "village" and any(c["geometry"] in ("set", "cleared") for c in result.changes):
        events.publish(session, VillageBoundariesChanged(tuple(result.ids)))
    return result


@dataclass
class CountyInit:
    unit: AdminUnit
    created: bool
    changes: list[dict[str, Any]]
    warnings: list[FieldError]


def init_county(
    session: Session,
    *,
    code: str,
    name: str,
    geom: Any = None,
    clear_geometry: bool = False,
) -> CountyInit:
    """Create a county, or bring an existing one up to date (idempotent): the deployment's
    operator does this once per county (no user's scope holds a county before it exists).
    A missing ``geom`` keeps a stored boundary; every rule of the other levels applies."""
    if not (code.isdigit() and len(code) == 6):
        raise RuleViolation(
            [FieldError(["code"], f"县级代码应为 6 位数字，收到“{code}”", "invalid_code")]
        )
    existing = session.scalar(
        select(AdminUnit).where(
            AdminUnit.code == code, AdminUnit.level == "county", AdminUnit.valid_to.is_(None)
        )
    )
    before = audit.snapshot(existing) if existing is not None else None
    written = write_units(
        session,
        None,
        [AreaRow(0, code, name, geom, target_id=existing.id if existing else None)],
        level="county",
        county_code=code,
        clear_geometry=clear_geometry,
    )
    if written.errors:
        raise RuleViolation(written.errors)
    unit = existing or session.get(AdminUnit, written.ids[0])
    assert unit is not None
    session.refresh(unit)
    if existing is None or written.changes:
        audit.record(
            session,
            None,
            action="create" if existing is None else "update",
            entity="admin_unit",
            entity_id=code,
            county_code=code,
            before=before,
            after=audit.snapshot(unit),
        )
    return CountyInit(unit, existing is None, written.changes, written.warnings)


def create_unit(
    session: Session, scope: Scope, data: UnitCreate, *, coord_sys: CoordSys
) -> UnitRead:
    level = LEVEL_BY_LENGTH[len(data.code)]
    if level == "county":
        raise RuleViolation(
            [
                FieldError(
                    ["body", "code"],
                    "县级单位由部署管理员用命令 gridgov county init 初始化"
                    "（见 README“接入一个真实的县”）",
                    "county_via_cli",
                )
            ]
        )
    geom = (
        parse_geometry(data.geometry, loc=["body", "geometry"], kind="area", coord_sys=coord_sys)
        if data.geometry
        else None
    )
    written = write_units(
        session,
        scope,
        [AreaRow(0, data.code, data.name, geom)],
        level=level,
        county_code=scope.county_code,
        loc_prefix=["body"],
    )
    _raise_rules(written.errors, single=True)
    unit = session.get(AdminUnit, written.ids[0])
    assert unit is not None
    if data.valid_from:
        unit.valid_from = data.valid_from
    session.flush()
    session.refresh(unit)
    audit.record(
        session,
        scope,
        action="create",
        entity="admin_unit",
        entity_id=unit.code,
        after=audit.snapshot(unit),
    )
    # The caller's scope was computed before this unit existed; its parent was in scope.
    return _unit_read(session, unit.id, coord_sys=coord_sys)


def update_unit(
    session: Session, scope: Scope, code: str, data: UnitUpdate, *, coord_sys: CoordSys
) -> UnitRead:
    unit = _unit_row(session, scope, code, lock=True)
    _check_version(unit, data.version, f"行政单位 {code} ")
    before = audit.snapshot(unit)
    if data.geometry is not None or data.clear_geometry:
        geom = (
            parse_geometry(
                data.geometry, loc=["body", "geometry"], kind="area", coord_sys=coord_sys
            )
            if data.geometry is not None
            else None
        )
        written = write_units(
            session,
            scope,
            [AreaRow(0, unit.code, data.name or unit.name, geom, target_id=unit.id)],
            level=unit.level,
            county_code=unit.county_code,
            loc_prefix=["body"],
            clear_geometry=data.clear_geometry,
        )
        _raise_rules(written.errors, single=True)
        session.refresh(unit)
    elif data.name is not None:
        unit.name = data.name
        session.flush()
    audit.record(
        session,
        scope,
        action="update",
        entity="admin_unit",
        entity_id=code,
        before=before,
        after=audit.snapshot(unit),
    )
    return get_unit(session, scope, code, coord_sys=coord_sys)


def retire_blockers(session: Session, unit_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """What still hangs on each unit (current child units, grids, households on record): a
    unit is retired only once nothing does, so that nothing is left under a retired code."""
    if not unit_ids:
        return {}
    rows = session.execute(
        text(
            "SELECT u.id,"
            " (SELECT count(*) FROM admin_units c WHERE c.parent_id = u.id"
            "  AND c.valid_to IS NULL)::int AS units,"
            " (SELECT count(*) FROM grids g WHERE g.village_id = u.id"
            "  AND g.valid_to IS NULL)::int AS grids,"
            " (SELECT count(*) FROM households h WHERE h.village_id = u.id"
            "  AND h.removed_at IS NULL)::int AS households"
            " FROM admin_units u WHERE u.id = ANY(:ids)"
        ),
        {"ids": list(unit_ids)},
    )
    return {
        r.id: {
            k: v
            for k, v in (("units", r.units), ("grids", r.grids), ("households", r.households))
            if v
        }
        for r in rows
    }


BLOCKER_LABELS = {"units": "个现行下级单位", "grids": "个网格", "households": "户"}


def describe_blockers(blockers: dict[str, int]) -> str:
    return "、".join(f"{n} {BLOCKER_LABELS[k]}" for k, n in blockers.items())


def retire_unit(
    session: Session,
    scope: Scope | None,
    code: str,
    *,
    successor_code: str | None = None,
    on: date | None = None,
) -> AdminUnit:
    """Units are never deleted: a retired unit gets ``valid_to`` and its code may be reused.
    A unit merged into another (撤并) names its ``successor``: same level, current, in scope."""
    unit = _unit_row(session, scope, code, lock=True)
    if scope is not None and unit.id == scope.unit_id:
        raise Conflict("不能撤销您自己所绑定的单位", code="retire_own_unit")
    blockers = retire_blockers(session, [unit.id]).get(unit.id)
    if blockers:
        raise Conflict(
            f"{unit.name}下仍有{describe_blockers(blockers)}，请先撤销或调整到承继单位",
            code="has_children",
            **blockers,
        )
    successor_id = None
    if successor_code is not None:
        successor = session.scalar(
            (scope.select(AdminUnit) if scope is not None else select(AdminUnit)).where(
                AdminUnit.code == successor_code, AdminUnit.valid_to.is_(None)
            )
        )
        if successor is None or successor.level != unit.level or successor.id == unit.id:
            raise RuleViolation(
                [
                    FieldError(
                        ["query", "successor"],
                        f"承继单位 {successor_code} 应为本人权限范围内现行的同级单位",
                        "invalid_successor",
                    )
                ]
            )
        successor_id = successor.id
    before = audit.snapshot(unit)
    unit.valid_to = on or date.today()
    unit.successor_id = successor_id
    session.flush()
    audit.record(
        session,
        scope,
        action="retire",
        entity="admin_unit",
        entity_id=code,
        county_code=unit.county_code,
        before=before,
        after=audit.snapshot(unit),
    )
    return unit


# -- party organizations --------------------------------------------------------------------------


def list_party_orgs(
    session: Session, scope: Scope, **query: Unpack[queries.PartyOrgQuery]
) -> PageResult:
    return queries.party_orgs_page(session, scope, **query)


def _org_row(session: Session, scope: Scope, org_id: int, *, lock: bool = False) -> PartyOrg:
    return scope.get(session, PartyOrg, org_id, "党组织", lock=lock)


def get_party_org(
    session: Session, scope: Scope, org_id: int, *, pii: bool = False
) -> PartyOrgRead:
    """The secretary's name and phone follow the personal-data rule (``gridgov.privacy``)."""
    _org_row(session, scope, org_id)
    data = queries.PARTY_ORGS.one(session, org_id)
    return PartyOrgRead(**personal_row(session, scope, "party_orgs", data, org_id, pii=pii))


def create_party_org(session: Session, scope: Scope, data: PartyOrgCreate) -> PartyOrgRead:
    unit = _unit_row(session, scope, data.unit_code)
    org = PartyOrg(
        unit_id=unit.id,
        county_code=unit.county_code,
        name=data.name,
        kind=data.kind,
        secretary_name=data.secretary_name,
        secretary_phone=data.secretary_phone,
    )
    session.add(org)
    session.flush()
    audit.record(
        session,
        scope,
        action="create",
        entity="party_org",
        entity_id=org.id,
        after=audit.snapshot(org),
    )
    return get_party_org(session, scope, org.id)


def update_party_org(
    session: Session, scope: Scope, org_id: int, data: PartyOrgUpdate
) -> PartyOrgRead:
    org = _org_row(session, scope, org_id, lock=True)
    _check_version(org, data.version, "党组织")
    before = audit.snapshot(org)
    for key, value in data.model_dump(exclude_unset=True, exclude={"version"}).items():
        setattr(org, key, value)
    session.flush()
    audit.record(
        session,
        scope,
        action="update",
        entity="party_org",
        entity_id=org.id,
        before=before,
        after=audit.snapshot(org),
    )
    return get_party_org(session, scope, org.id)


def delete_party_org(session: Session, scope: Scope, org_id: int) -> None:
    org = _org_row(session, scope, org_id, lock=True)
    # Party members lie above the hierarchy (gridgov.members imports it): read by table name.
    members = session.scalar(
        text("SELECT count(*) FROM party_members WHERE party_org_id = :org"), {"org": org.id}
    )
    if members:
        raise Conflict(f"该党组织仍有 {members} 名党员记录，不能删除", code="has_members")
    before = audit.snapshot(org)
    session.delete(org)
    session.flush()
    audit.record(
        session, scope, action="delete", entity="party_org", entity_id=org_id, before=before
    )


# -- grids --------------------------------------------------------------------------------------


def list_grids(session: Session, scope: Scope, **query: Unpack[queries.GridQuery]) -> PageResult:
    return queries.grids_page(session, scope, **query)


def _grid_row(session: Session, scope: Scope, grid_id: int, *, lock: bool = False) -> Grid:
    return scope.get(session, Grid, grid_id, "网格", lock=lock)


def get_grid(
    session: Session, scope: Scope, grid_id: int, *, coord_sys: CoordSys, pii: bool = False
) -> GridRead:
    """The grid chief's name follows the personal-data rule (``gridgov.privacy``)."""
    _grid_row(session, scope, grid_id)
    data = queries.GRIDS.one(session, grid_id, coord_sys=coord_sys)
    return GridRead(**personal_row(session, scope, "grids", data, grid_id, pii=pii))


def write_grids(
    session: Session,
    scope: Scope | None,
    rows: Iterable[AreaRow],
    *,
    county_code: str,
    loc_prefix: Sequence[str | int] = (),
    dry_run: bool = False,
) -> AreaWrite:
    """Validate and upsert grids; then re-derive the grid of every household in their villages."""
    stage = AreaStage(session, "grid", loc_prefix=loc_prefix)
    scope_cache.forget_after_commit(session)  # a new or moved area may change who sees what
    count = stage.load(rows)
    allowed = None if scope is None else list(scope.village_ids)
    result = AreaWrite(errors=stage.check(allowed_parent_ids=allowed, county_code=county_code))
    result.warnings = stage.warnings
    result.changes = stage.changes()
    touched = {c["index"] for c in result.changes}
    result.unchanged = len(
        stage._rows("SELECT idx FROM {stage} WHERE target_id IS NOT NULL")
    ) - len(touched)
    if result.errors or dry_run or count == 0:
        stage.drop()
        return result
    result.ids = [
        r.id
        for r in session.execute(
            text(
                f"""
                WITH upd AS (
                    UPDATE grids g SET name = s.name, geom = ST_Multi(s.geom),
                        version = g.version + 1, updated_at = now()
                    FROM {stage.name} s WHERE s.target_id = g.id
                      AND (g.name IS DISTINCT FROM s.name
                           OR g.geom IS DISTINCT FROM ST_Multi(s.geom))
                    RETURNING g.id, s.idx
                ), ins AS (
                    INSERT INTO grids (code, name, village_id, county_code, kind, geom)
                    SELECT code, name, parent_id, left(code, 6),
                           CASE WHEN right(code, 3)::int >= 900 THEN 'dedicated' ELSE 'general' END,
                           ST_Multi(geom)
                    FROM {stage.name} WHERE target_id IS NULL ORDER BY idx RETURNING id
                )
                SELECT id FROM (SELECT id, idx FROM upd ORDER BY idx) u
                UNION ALL SELECT id FROM ins
                """
            )
        )
    ]
    villages = [r[0] for r in session.execute(text(f"SELECT DISTINCT parent_id FROM {stage.name}"))]
    stage.drop()
    events.publish(session, GridsChanged(tuple(villages)))
    return result


def _check_chief(session: Session, scope: Scope, member_id: int | None, village_id: int) -> None:
    if member_id is None:
        return
    # A current member of this village (party_members read by table name, as above).
    member_village = session.scalar(
        text("SELECT village_id FROM party_members WHERE id = :id AND left_at IS NULL"),
        {"id": member_id},
    )
    if member_village is None or member_village != village_id:
        raise RuleViolation(
            [
                FieldError(
                    ["body", "chief_member_id"], "网格长须为本村在册党员", "chief_not_in_village"
                )
            ]
        )


def create_grid(
    session: Session, scope: Scope, data: GridCreate, *, coord_sys: CoordSys
) -> GridRead:
    geom = parse_geometry(data.geometry, loc=["body", "geometry"], kind="area", coord_sys=coord_sys)
    written = write_grids(
        session,
        scope,
        [AreaRow(0, data.code, data.name, geom)],
        county_code=scope.county_code,
        loc_prefix=["body"],
    )
    _raise_rules(written.errors, single=True)
    grid = session.get(Grid, written.ids[0])
    assert grid is not None
    _check_chief(session, scope, data.chief_member_id, grid.village_id)
    grid.chief_member_id = data.chief_member_id
    session.flush()
    session.refresh(grid)
    audit.record(
        session,
        scope,
        action="create",
        entity="grid",
        entity_id=grid.id,
        county_code=grid.county_code,
        after=audit.snapshot(grid),
    )
    return get_grid(session, scope, grid.id, coord_sys=coord_sys)


def update_grid(
    session: Session, scope: Scope, grid_id: int, data: GridUpdate, *, coord_sys: CoordSys
) -> GridRead:
    grid = _grid_row(session, scope, grid_id, lock=True)
    _check_version(grid, data.version, "网格")
    before = audit.snapshot(grid)
    if data.geometry is not None:
        geom = parse_geometry(
            data.geometry, loc=["body", "geometry"], kind="area", coord_sys=coord_sys
        )
        written = write_grids(
            session,
            scope,
            [AreaRow(0, grid.code, data.name or grid.name, geom, target_id=grid.id)],
            county_code=grid.county_code,
            loc_prefix=["body"],
        )
        _raise_rules(written.errors, single=True)
        session.refresh(grid)
    elif data.name is not None:
        grid.name = data.name
    if "chief_member_id" in data.model_fields_set:
        _check_chief(session, scope, data.chief_member_id, grid.village_id)
        grid.chief_member_id = data.chief_member_id
    session.flush()
    session.refresh(grid)
    audit.record(
        session,
        scope,
        action="update",
        entity="grid",
        entity_id=grid.id,
        county_code=grid.county_code,
        before=before,
        after=audit.snapshot(grid),
    )
    return get_grid(session, scope, grid.id, coord_sys=coord_sys)


def retire_grid(session: Session, scope: Scope, grid_id: int) -> None:
    grid = _grid_row(session, scope, grid_id, lock=True)
    if grid.valid_to is not None:
        raise Conflict("该网格已撤销", code="already_retired")
    before = audit.snapshot(grid)
    grid.valid_to = date.today()
    session.flush()
    events.publish(session, GridsChanged((grid.village_id,)))
    audit.record(
        session,
        scope,
        action="retire",
        entity="grid",
        entity_id=grid.id,
        county_code=grid.county_code,
        before=before,
        after=audit.snapshot(grid),
    )
