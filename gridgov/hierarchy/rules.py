"""The spatial write rules of DESIGN §2 for areas (units and grids), checked set-based in PostGIS.

Every write path — one grid through the API, ten thousand features from an import, the demo
county — stages its candidate rows in a temporary table and runs the same checks over it. Each
check is one statement that returns every offending row, so a report names all of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.config import get_settings
from gridgov.db import raw_connection
from gridgov.errors import FieldError

LEVELS = ("county", "township", "village", "grid")
CODE_LENGTH = {"county": 6, "township": 9, "village": 12, "grid": 15}
PARENT_LEVEL = {"county": None, "township": "county", "village": "township", "grid": "village"}
LEVEL_LABEL = {"county": "县", "township": "乡镇", "village": "村", "grid": "网格"}
NAME_WIDTH = 100  # admin_units.name and grids.name


@dataclass
class AreaRow:
    """One candidate unit or grid. ``target_id`` is the row it replaces, if any."""

    idx: int
    code: str
    name: str
    geom: shapely.Geometry | None
    target_id: int | None = None
    ref: str | None = None  # how the import file names this feature (for the report)


class AreaStage:
    """A temporary table of candidate areas of one level, and the rules run over it."""

    def __init__(
        self,
        session: Session,
        level: str,
        *,
        loc_prefix: Sequence[str | int] = (),
        clear_geometry: bool = False,
    ):
        assert level in LEVELS
        self.session = session
        self.level = level
        self.name = f"stage_{level}_{uuid.uuid4().hex[:12]}"
        self.loc_prefix = list(loc_prefix)
        # A row without geometry that replaces a stored one keeps the stored boundary unless
        # the caller explicitly asks to clear it: a plain code list never erases a boundary.
        self.clear_geometry = clear_geometry
        self.refs: dict[int, str | None] = {}
        self.single = False
        self.nul_fields: list[tuple[int, str]] = []
        self.warnings: list[FieldError] = []

    # -- loading -------------------------------------------------------------------------------

    def load(self, rows: Iterable[AreaRow]) -> int:
        self.session.execute(
            text(
                f"CREATE TEMP TABLE {self.name} (idx int PRIMARY KEY, target_id bigint, "
                "code text, name text, parent_id bigint, geom geometry, "
                "kept boolean NOT NULL DEFAULT false) ON COMMIT DROP"
            )
        )
        conn = raw_connection(self.session)
        count = 0
        with conn.cursor().copy(
            f"COPY {self.name} (idx, target_id, code, name, geom) FROM STDIN"
        ) as copy:
            for row in rows:
                self.refs[row.idx] = row.ref
                wkb = None if row.geom is None else _ewkb(row.geom)
                # PostgreSQL text cannot hold NUL: such a value is reported, never sent.
                for field, value in (("code", row.code), ("name", row.name)):
                    if isinstance(value, str) and "\x00" in value:
                        self.nul_fields.append((row.idx, field))
                code, name = (
                    v.replace("\x00", "") if isinstance(v, str) else v for v in (row.code, row.name)
                )
                copy.write_row((row.idx, row.target_id, code, name, wkb))
                count += 1
        self.single = count == 1
        if not self.clear_geometry:
            # Every rule below then judges the boundary the row will really have.
            self.session.execute(
                text(
                    f"UPDATE {self.name} s SET geom = t.geom, kept = true FROM {self._table} t "
                    "WHERE s.target_id = t.id AND s.geom IS NULL AND t.geom IS NOT NULL"
                )
            )
        if count > 50:
            self.session.execute(text(f"CREATE INDEX ON {self.name} USING gist (geom)"))
            self.session.execute(text(f"ANALYZE {self.name}"))
        return count

    def drop(self) -> None:
        self.session.execute(text(f"DROP TABLE IF EXISTS {self.name}"))

    # -- helpers -------------------------------------------------------------------------------

    def _error(
        self, idx: int, field: str, msg: str, code: str, ref: str | None = None
    ) -> FieldError:
        loc: list[str | int] = (
            [*self.loc_prefix, field] if self.single else [*self.loc_prefix, idx, field]
        )
        return FieldError(
            loc, msg, code, index=None if self.single else idx, id=ref or self.refs.get(idx)
        )

    def _rows(self, sql: str, **params: object) -> list:
        return list(self.session.execute(text(sql.replace("{stage}", self.name)), params))

    @property
    def _table(self) -> str:
        return "grids" if self.level == "grid" else "admin_units"

    # -- the rules ----------------------------------------------------------------------------

    def check(
        self, *, allowed_parent_ids: Sequence[int] | None, county_code: str
    ) -> list[FieldError]:
        """Run every rule; fills ``parent_id``. ``allowed_parent_ids=None`` means any parent."""
        errors = self._check_codes(county_code)
        errors += self._resolve_parents(allowed_parent_ids)
        errors += self._check_geometry()
        errors += self._check_within_parent()
        errors += self._check_sibling_overlaps()
        errors += self._check_children_within()
        errors.sort(key=lambda e: (e.index or 0, str(e.loc)))
        return errors

    def changes(self) -> list[dict[str, object]]:
        """What writing the stage would change in each stored row it replaces (for reports).

        ``geometry`` is ``unchanged``, ``kept`` (no geometry given: the stored one stays),
        ``set`` (a first boundary), ``replaced`` or ``cleared``; areas in km².
        """
        parent = "s.parent_id, t.village_id" if self.level == "grid" else "s.parent_id, t.parent_id"
        new_parent, old_parent = parent.split(", ")
        out: list[dict[str, object]] = []
        for r in self._rows(
            "SELECT s.idx, s.code, t.name AS old_name, s.name AS new_name, s.kept, "
            "  t.geom IS NULL AS old_missing, s.geom IS NULL AS new_missing, "
            "  t.geom IS NOT DISTINCT FROM ST_Multi(s.geom) AS same_geom, "
            "  round((ST_Area(t.geom::geography) / 1e6)::numeric, 3)::float AS old_km2, "
            "  round((ST_Area(s.geom::geography) / 1e6)::numeric, 3)::float AS new_km2, "
            "  op.code AS old_parent, np.code AS new_parent "
            f"FROM {{stage}} s JOIN {self._table} t ON t.id = s.target_id "
            f"LEFT JOIN admin_units op ON op.id = {old_parent} "
            f"LEFT JOIN admin_units np ON np.id = {new_parent} ORDER BY s.idx"
        ):
            if r.kept:
                geometry = "kept"
            elif r.same_geom or (r.old_missing and r.new_missing):
                geometry = "unchanged"
            elif r.old_missing:
                geometry = "set"
            elif r.new_missing:
                geometry = "cleared"
            else:
                geometry = "replaced"
            change: dict[str, object] = {
                "index": r.idx,
                "code": r.code,
                "id": self.refs.get(r.idx),
                "geometry": geometry,
            }
            if geometry in ("replaced", "cleared"):
                change["area_km2_before"] = r.old_km2
            if geometry in ("replaced", "set"):
                change["area_km2_after"] = r.new_km2
            if r.old_name != r.new_name:
                change["name"] = {"from": r.old_name, "to": r.new_name}
            if r.new_parent is not None and r.old_parent != r.new_parent:
                change["parent_code"] = {"from": r.old_parent, "to": r.new_parent}
            if geometry != "unchanged" or "name" in change or "parent_code" in change:
                out.append(change)
        return out

    def _check_codes(self, county_code: str) -> list[FieldError]:
        length = CODE_LENGTH[self.level]
        label = LEVEL_LABEL[self.level]
        errors = [
            self._error(idx, field, "文本中不能包含空字符（\\0）", "nul_character")
            for idx, field in self.nul_fields
        ]
        for r in self._rows(
            "SELECT idx FROM {stage} WHERE length(name) > :width ORDER BY idx", width=NAME_WIDTH
        ):
            errors.append(
                self._error(
                    r.idx, "name", f"{label}名称过长（最多 {NAME_WIDTH} 个字符）", "name_too_long"
                )
            )
        for r in self._rows(
            "SELECT idx, code, name FROM {stage} "
            "WHERE code IS NULL OR code !~ ('^[0-9]{' || :n || '}$') "
            "   OR name IS NULL OR btrim(name) = '' ORDER BY idx",
            n=length,
        ):
            if r.code is None or not r.code.isdigit() or len(r.code) != length:
                errors.append(
                    self._error(
                        r.idx,
                        "code",
                        f"{label}代码应为 {length} 位数字，收到“{r.code or ''}”",
                        "invalid_code",
                    )
                )
            if r.name is None or not r.name.strip():
                errors.append(self._error(r.idx, "name", f"{label}名称不能为空", "missing_name"))
        for r in self._rows(
            "SELECT idx, code FROM {stage} WHERE code ~ '^[0-9]+$' AND left(code, 6) <> :county",
            county=county_code,
        ):
            errors.append(
                self._error(
                    r.idx, "code", f"代码 {r.code} 不属于县 {county_code}", "code_outside_county"
                )
            )
        if self.level == "grid":
            for r in self._rows(
                "SELECT idx, code FROM {stage} "
                "WHERE code ~ '^[0-9]{15}$' AND right(code, 3) = '000'"
            ):
                errors.append(
                    self._error(
                        r.idx,
                        "code",
                        "网格序号应为 001–899（一般网格）或 900–999（专属网格）",
                        "invalid_serial",
                    )
                )
        for r in self._rows(
            "SELECT idx, code, first_idx FROM (SELECT idx, code, "
            "min(idx) OVER (PARTITION BY code) AS first_idx FROM {stage}) d "
            "WHERE idx <> first_idx ORDER BY idx"
        ):
            errors.append(
                self._error(
                    r.idx, "code", f"代码 {r.code} 与第 {r.first_idx} 条重复", "duplicate_code"
                )
            )
        for r in self._rows(
            f"SELECT s.idx, s.code FROM {{stage}} s JOIN {self._table} t ON t.code = s.code "
            "AND t.valid_to IS NULL AND t.id IS DISTINCT FROM s.target_id ORDER BY s.idx"
        ):
            errors.append(self._error(r.idx, "code", f"代码 {r.code} 已被使用", "code_taken"))
        return errors

    def _resolve_parents(self, allowed: Sequence[int] | None) -> list[FieldError]:
        parent_level = PARENT_LEVEL[self.level]
        if parent_level is None:
            return []
        n = CODE_LENGTH[parent_level]
        self._rows(
            "UPDATE {stage} s SET parent_id = p.id FROM admin_units p "
            "WHERE p.code = left(s.code, :n) AND p.level = :level AND p.valid_to IS NULL "
            "AND (CAST(:allowed AS bigint[]) IS NULL OR p.id = ANY(CAST(:allowed AS bigint[]))) "
            "RETURNING s.idx",
            n=n,
            level=parent_level,
            allowed=None if allowed is None else list(allowed),
        )
        label = LEVEL_LABEL[parent_level]
        return [
            self._error(
                r.idx,
                "code",
                f"上级{label} {r.parent_code} 不存在或不在您的权限范围内",
                "parent_not_found",
            )
            for r in self._rows(
                "SELECT idx, left(code, :n) AS parent_code FROM {stage} "
                "WHERE parent_id IS NULL AND code ~ '^[0-9]+$' AND length(code) = :len "
                "ORDER BY idx",
                n=n,
                len=CODE_LENGTH[self.level],
            )
        ]

    def _check_geometry(self) -> list[FieldError]:
        errors = []
        for r in self._rows(
            "SELECT idx, geom IS NULL AS missing, "
            "CASE WHEN geom IS NOT NULL AND NOT ST_IsValid(geom) THEN ST_IsValidReason(geom) END "
            "AS reason FROM {stage} WHERE geom IS NULL OR NOT ST_IsValid(geom) ORDER BY idx"
        ):
            if r.missing:
                # Townships and villages may be registered before a surveyor draws them (from
                # the official code list); a grid is an area drawn on the map or nothing.
                if self.level == "grid":
                    errors.append(
                        self._error(r.idx, "geometry", "网格须有边界几何", "missing_geometry")
                    )
            else:
                errors.append(
                    self._error(r.idx, "geometry", f"几何无效：{r.reason}", "invalid_geometry")
                )
        return errors

    def _check_within_parent(self) -> list[FieldError]:
        if PARENT_LEVEL[self.level] is None:
            return []
        rules = get_settings().rules
        tolerance = (
            rules.grid_outside_village_m if self.level == "grid" else rules.unit_outside_parent_m
        )
        label = LEVEL_LABEL[PARENT_LEVEL[self.level]]  # type: ignore[index]
        errors = []
        for r in self._rows(
            "SELECT s.idx, p.code AS parent_code, p.geom IS NULL AS parent_missing, "
            "  CASE WHEN p.geom IS NOT NULL THEN "
            "    ST_Area(ST_Difference(s.geom, p.geom)::geography) END AS outside_m2 "
            "FROM {stage} s JOIN admin_units p ON p.id = s.parent_id "
            "WHERE s.geom IS NOT NULL AND ST_IsValid(s.geom) AND ("
            "  p.geom IS NULL OR (NOT ST_Covers(p.geom, s.geom) AND NOT ST_Covers("
            "    ST_Buffer(p.geom::geography, :tol)::geometry, s.geom))) ORDER BY s.idx",
            tol=tolerance,
        ):
            if r.parent_missing:
                # Checked when the parent's boundary arrives (_check_children_within).
                self.warnings.append(
                    self._error(
                        r.idx,
                        "geometry",
                        f"所属{label} {r.parent_code} 尚无边界：是否在其范围内将在其边界导入时校验",
                        "parent_without_geometry",
                    )
                )
                continue
            errors.append(
                self._error(
                    r.idx,
                    "geometry",
                    f"超出所属{label} {r.parent_code} 的边界"
                    f"（超出部分约 {r.outside_m2:.0f} 平方米，"
                    f"容差 {tolerance:g} 米）",
                    "outside_parent",
                )
            )
        return errors

    def _check_sibling_overlaps(self) -> list[FieldError]:
        tolerance = get_settings().rules.sibling_overlap_m2
        label = LEVEL_LABEL[self.level]
        valid = "ST_IsValid({a}.geom)"
        overlap = (
            "ST_Relate(a.geom, b.geom, '2********') "
            "AND ST_Area(ST_Intersection(a.geom, b.geom)::geography) > :tol"
        )
        parent_col = "village_id" if self.level == "grid" else "parent_id"
        same_parent = (
            "a.parent_id IS NOT DISTINCT FROM b.parent_id" if self.level != "county" else "true"
        )
        # Candidates against each other, then against stored siblings they do not replace.
        pairs = self._rows(
            "SELECT a.idx, b.code AS other, b.idx AS other_idx, "
            "ST_Area(ST_Intersection(a.geom, b.geom)::geography) AS m2 "
            "FROM {stage} a JOIN {stage} b ON a.idx < b.idx AND a.geom && b.geom "
            f"AND {same_parent} "
            f"WHERE {valid.format(a='a')} AND {valid.format(a='b')} AND {overlap} ORDER BY a.idx",
            tol=tolerance,
        )
        stored = self._rows(
            f"SELECT a.idx, b.code AS other, NULL::int AS other_idx, "
            "ST_Area(ST_Intersection(a.geom, b.geom)::geography) AS m2 "
            f"FROM {{stage}} a JOIN {self._table} b ON b.geom && a.geom AND b.valid_to IS NULL "
            + (
                f"AND b.{parent_col} = a.parent_id "
                if self.level != "county"
                else "AND b.level = 'county' "
            )
            + "AND b.id IS DISTINCT FROM a.target_id "
            "AND NOT EXISTS (SELECT 1 FROM {stage} r WHERE r.target_id = b.id) "
            f"WHERE {valid.format(a='a')} AND {overlap} ORDER BY a.idx",
            tol=tolerance,
        )
        errors = []
        for r in [*pairs, *stored]:
            where = (
                f"第 {r.other_idx} 条（{r.other}）"
                if r.other_idx is not None
                else f"已有{label} {r.other}"
            )
            errors.append(
                self._error(
                    r.idx,
                    "geometry",
                    f"与{where}重叠约 {r.m2:.1f} 平方米（容差 {tolerance:g} 平方米）",
                    "overlaps_sibling",
                )
            )
        return errors

    def _check_children_within(self) -> list[FieldError]:
        """A new or changed boundary must still hold what lies inside it: the grids of a
        village, the villages of a township, the townships of a county (with the tolerance of
        the within-parent rule). A boundary drawn for a unit registered without one is judged
        here too: the rules that need it apply when it arrives."""
        if self.level == "grid":
            return []
        rules = get_settings().rules
        if self.level == "village":
            children, link, tolerance = "grids", "c.village_id", rules.grid_outside_village_m
        else:
            children, link, tolerance = "admin_units", "c.parent_id", rules.unit_outside_parent_m
        child_label = {"county": "乡镇", "township": "村", "village": "网格"}[self.level]
        errors = []
        for r in self._rows(
            "SELECT s.idx, s.code, c.code AS child, "
            "  ST_Area(ST_Difference(c.geom, s.geom)::geography) AS outside_m2 "
            f"FROM {{stage}} s JOIN admin_units t ON t.id = s.target_id "
            f"JOIN {children} c ON {link} = s.target_id AND c.valid_to IS NULL "
            "WHERE NOT s.kept AND s.geom IS NOT NULL AND ST_IsValid(s.geom) "
            "  AND c.geom IS NOT NULL AND t.geom IS DISTINCT FROM ST_Multi(s.geom) "
            "  AND NOT ST_Covers(s.geom, c.geom) "
            "  AND NOT ST_Covers(ST_Buffer(s.geom::geography, :tol)::geometry, c.geom) "
            "ORDER BY s.idx, c.code",
            tol=tolerance,
        ):
            errors.append(
                self._error(
                    r.idx,
                    "geometry",
                    f"新边界将使{child_label} {r.child} 超出{LEVEL_LABEL[self.level]} {r.code}"
                    f"（超出部分约 {r.outside_m2:.0f} 平方米，容差 {tolerance:g} 米）；"
                    f"请先调整该{child_label}的边界",
                    "child_outside_boundary",
                )
            )
        return errors


def _ewkb(geom: shapely.Geometry) -> str:
    return shapely.to_wkb(shapely.set_srid(geom, 4326), hex=True, include_srid=True)
