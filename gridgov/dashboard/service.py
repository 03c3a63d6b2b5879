"""Dashboard reads for a county, township, village or grid: figures from the rollups
(gridgov.dashboard.rollups), shaped for the page and the ledgers. Nothing here groups raw
visits per request, except the distinct households of a custom date range (not additive over
days), which is counted from the visits of that range and those villages only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov import db, privacy, wire
from gridgov.auth.cache import ScopeCache
from gridgov.auth.scope import Scope
from gridgov.config import get_settings
from gridgov.dashboard.rollups import LOCAL, VOID_STATES, today
from gridgov.errors import FieldError, NotFound, PayloadInvalid
from gridgov.households.models import Household
from gridgov.issues.workflow import LEVEL_NAMES, STATE_LABELS

LEVEL_LABEL = {"county": "县", "township": "乡镇", "village": "村", "grid": "网格"}
CHILD_LEVEL = {"county": "township", "township": "village", "village": "grid", "grid": None}
MAX_RANGE_DAYS = 366
COLOURS = ("green", "yellow", "red")


# -- what is asked for -------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """The unit (or grid) a dashboard is about, resolved in the caller's scope."""

    level: str
    id: int
    code: str
    name: str
    county_code: str
    village_ids: tuple[int, ...]  # the villages it covers (a grid: its village)
    grid_id: int | None = None


@dataclass(frozen=True)
class Period:
    kind: str  # day, week, month, range
    start: date
    end: date  # exclusive

    @property
    def label(self) -> str:
        if self.kind == "day":
            return f"{self.start:%Y年%m月%d日}"
        if self.kind == "week":
            return f"{self.start:%Y年%m月%d日}起一周"
        if self.kind == "month":
            return f"{self.start:%Y年%m月}"
        return f"{self.start:%Y-%m-%d} 至 {self.end - timedelta(days=1):%Y-%m-%d}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "label": self.label,
        }


def _invalid(field: str, msg: str, code: str = "invalid_period") -> PayloadInvalid:
    return PayloadInvalid([FieldError(["query", field], msg, code)])


def period(
    kind: str, *, on: date | None = None, start: date | None = None, end: date | None = None
) -> Period:
    """The period containing ``on`` (default: today in Asia/Shanghai), or [start, end]
    (inclusive local dates) for ``range``."""
    if kind == "range":
        if start is None or end is None:
            raise _invalid("from", "自定义时段须给出 from 和 to（日期）")
        if end < start:
            raise _invalid("to", "to 不能早于 from")
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise _invalid("to", f"自定义时段最长 {MAX_RANGE_DAYS} 天")
        return Period("range", start, end + timedelta(days=1))
    day = on or today()
    if kind == "day":
        return Period("day", day, day + timedelta(days=1))
    if kind == "week":
        monday = day - timedelta(days=day.weekday())
        return Period("week", monday, monday + timedelta(days=7))
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Period("month", first, following)


def resolve(session: Session, scope: Scope, code: str) -> Node:
    """The unit or grid ``code`` if the caller's scope holds it (a grid member: only its
    grid), else NotFound — the same answer for unknown and out of scope."""
    # The row by its code (remembered like scopes: a few seconds, forgotten on any hierarchy
    # write), then the scope checked in hand: no id list travels to the server.
    found = NODES.get(code)
    if found is None:
        found = _node_by_code(session, code)
        if found is not None:
            NODES.put(code, found)
    if found is None or not _holds(scope, found):
        raise NotFound(f"{'网格' if len(code) == 15 else '行政单位'} {code} ")
    return found


def _holds(scope: Scope, node: Node) -> bool:
    """A grid member holds only its grid; others their subtree's units and its grids."""
    if scope.grid_bound:
        return node.grid_id is not None and node.grid_id == scope.grid_id
    if node.grid_id is not None:
        return scope.covers_village(node.village_ids[0])
    return scope.covers_unit(node.id)


NODES: ScopeCache[Node] = ScopeCache()
CHILDREN: ScopeCache[list[tuple[int, str | None, str]]] = ScopeCache()


def _node_by_code(session: Session, code: str) -> Node | None:
    if len(code) == 15:
        grid = session.execute(
            text(
                "SELECT id, code, name, county_code, village_id FROM grids"
                " WHERE code = :code AND valid_to IS NULL"
            ),
            {"code": code},
        ).one_or_none()
        if grid is None:
            return None
        return Node(
            "grid", grid.id, grid.code, grid.name, grid.county_code, (grid.village_id,), grid.id
        )
    row = session.execute(
        text(
            "SELECT id, code, name, level, county_code FROM admin_units"
            " WHERE code = :code AND valid_to IS NULL"
        ),
        {"code": code},
    ).one_or_none()
    if row is None:
        return None
    # A township's or county's villages are only looked up where raw rows are read (a custom
    # range's distinct households, 积分): its own figures are its total rows.
    villages = (row.id,) if row.level == "village" else ()
    return Node(row.level, row.id, row.code, row.name, row.county_code, villages)


# The villages a unit covers, for a statement's :villages (a scope holds whole subtrees, so a
# unit in scope covers its villages).
VILLAGES_OF = (
    "SELECT v.id FROM admin_units v WHERE v.county_code = :county AND v.level = 'village'"
    " AND v.valid_to IS NULL AND v.code LIKE :node_code || '%'"
)


def village_ids(session: Session, node: Node) -> tuple[int, ...]:
    if node.village_ids:
        return node.village_ids
    rows = session.scalars(
        text(VILLAGES_OF + " ORDER BY v.id"), {"county": node.county_code, "node_code": node.code}
    )
    return tuple(rows)


def _ids(values: tuple[int, ...] | list[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


# -- the figures of one node or of its children ------------------------------------------------


@dataclass(frozen=True)
class Rows:
    """Where the rollup rows of a node (or of its children) are: a county or township reads
    its own total rows (``dash_unit_*``), a county's children their townships' total rows; a
    township's children are its villages' total rows (grid_id -1), a village's its grids', a
    grid its own. ``key`` is what a breakdown groups by (0: the node itself)."""

    unit_tables: bool
    where: str  # with {a} for the table alias
    key: str  # idem

    def table(self, name: str) -> str:
        return f"dash_unit_{name}" if self.unit_tables else f"dash_{name}"

    def filter(self, alias: str) -> str:
        return self.where.format(a=alias)

    def group(self, alias: str) -> str:
        return self.key.format(a=alias)


def _rows(node: Node, *, children: bool) -> Rows:
    """The rows to read; their parameters are those of ``_rows_params``."""
    if node.level in ("county", "township") and not children:
        return Rows(True, "{a}.unit_id = :node_id", "0")
    if node.level == "county":
        return Rows(
            True,
            "{a}.unit_id IN (SELECT t.id FROM admin_units t WHERE t.parent_id = :node_id"
            " AND t.level = 'township' AND t.valid_to IS NULL)",
            "{a}.unit_id",
        )
    if node.level == "township":
        return Rows(
            False, f"{{a}}.village_id IN ({VILLAGES_OF}) AND {{a}}.grid_id = -1", "{a}.village_id"
        )
    villages = "{a}.village_id = ANY(CAST(:villages AS bigint[]))"
    if node.level == "village" and children:
        return Rows(False, villages + " AND {a}.grid_id >= 0", "{a}.grid_id")
    if node.level == "village":
        return Rows(False, villages + " AND {a}.grid_id = -1", "0")
    return Rows(False, villages + " AND {a}.grid_id = :grid_id", "0")


def _rows_params(node: Node) -> dict[str, Any]:
    return {
        "node_id": node.id,
        "node_code": node.code,
        "county": node.county_code,
        "villages": _ids(node.village_ids),
        "grid_id": node.grid_id,
    }


STATUS_COLUMNS = (
    "households",
    "with_primary",
    "overdue",
    "due_soon",
    "never_visited",
    "members",
    "members_over_normal",
    "members_over_capacity",
    "open_issues",
    "open_overdue",
    "open_due_soon",
)
VISIT_COLUMNS = (
    "visits",
    "counted",
    "pending",
    "accepted",
    "rejected",
    "flagged",
    "households_visited",
)


def _period_filter(p: Period, alias: str) -> tuple[str, dict[str, Any]]:
    """Rows of the period: the one row of a day/week/month, or the days of a range."""
    if p.kind == "range":
        return (
            f"{alias}.kind = 'day' AND {alias}.start >= :p_start AND {alias}.start < :p_end",
            {"p_start": p.start, "p_end": p.end},
        )
    return f"{alias}.kind = :p_kind AND {alias}.start = :p_start", {
        "p_kind": p.kind,
        "p_start": p.start,
    }


def _figures_sql(node: Node, p: Period, *, children: bool) -> tuple[str, dict[str, Any]]:
    """One statement: per key (the node itself: key 0; or each child) status, visits and issue
    parts, all from rollups."""
    rows = _rows(node, children=children)
    pf_v, params = _period_filter(p, "v")
    pf_i, _ = _period_filter(p, "i")
    status = ", ".join(f"sum(s.{c})::int AS {c}" for c in STATUS_COLUMNS)
    visits = ", ".join(f"sum(v.{c})::int AS {c}" for c in VISIT_COLUMNS)
    void = ", ".join(f"'{s}'" for s in VOID_STATES)
    sql = f"""
    WITH st AS (
        SELECT {rows.group("s")} AS k_st, {status}, {wire.sql_time("min(s.refreshed_at)")} AS as_of
        FROM {rows.table("status")} s WHERE {rows.filter("s")} GROUP BY 1
    ), vi AS (
        SELECT {rows.group("v")} AS k_vi, {visits} FROM {rows.table("visit_periods")} v
        WHERE {rows.filter("v")} AND {pf_v} GROUP BY 1
    ), iss AS (
        SELECT {rows.group("i")} AS k_is,
               sum(i.issues) FILTER (WHERE i.state NOT IN ({void}))::int AS total,
               sum(i.issues)::int AS reported,
               sum(i.issues) FILTER (WHERE i.state = 'CLOSED')::int AS closed,
               sum(i.on_time) FILTER (WHERE i.state = 'CLOSED')::int AS closed_on_time,
               sum(i.reworked) FILTER (WHERE i.state = 'CLOSED')::int AS reworked,
               sum(i.extended) FILTER (WHERE i.state NOT IN ({void}))::int AS extended,
               sum(i.in_grid) FILTER (WHERE i.state = 'CLOSED')::int AS closed_in_grid,
               sum(i.rated) FILTER (WHERE i.state = 'CLOSED')::int AS rated,
               sum(i.rating_sum) FILTER (WHERE i.state = 'CLOSED')::int AS rating_sum
        FROM {rows.table("issue_periods")} i
        WHERE {rows.filter("i")} AND {pf_i} GROUP BY 1
    )
    SELECT row_to_json(r)::text FROM (
        SELECT COALESCE(st.k_st, vi.k_vi, iss.k_is) AS key, st.*, vi.*, iss.*
        FROM st FULL JOIN vi ON vi.k_vi = st.k_st
        FULL JOIN iss ON iss.k_is = COALESCE(st.k_st, vi.k_vi)
    ) r
    """
    params.update(_rows_params(node))
    return sql, params


def _raw_key(node: Node, alias: str) -> str:
    """The breakdown key over a raw table (visits, issues): child unit or grid (0: none)."""
    return {
        "county": f"(SELECT u.parent_id FROM admin_units u WHERE u.id = {alias}.village_id)",
        "township": f"{alias}.village_id",
        "village": f"COALESCE({alias}.grid_id, 0)",
        "grid": "0",
    }[node.level]


def _ratio(num: int | None, den: int | None) -> float | None:
    return round(num / den, 4) if num is not None and den else None


def _colour(levels: list[int]) -> str:
    return COLOURS[max(levels, default=0)]


def _shape(row: dict[str, Any], households_visited: int | None) -> dict[str, Any]:
    """Rollup sums → the figures a page shows, with rates and the 三色预警."""
    g = {k: (row.get(k) or 0) for k in (*STATUS_COLUMNS, *VISIT_COLUMNS)}
    if households_visited is not None:
        g["households_visited"] = households_visited
    households = g["households"]
    warning = get_settings().dashboard.warning
    overdue_share = _ratio(g["overdue"], households)
    contact_share = _ratio(g["with_primary"], households)
    parts = {
        "overdue": 0
        if overdue_share is None or overdue_share <= warning.overdue_yellow
        else (1 if overdue_share <= warning.overdue_red else 2),
        "contacts": 0
        if contact_share is None or contact_share >= warning.contact_yellow
        else (1 if contact_share >= warning.contact_red else 2),
    }
    total = row.get("total") or 0
    closed = row.get("closed") or 0
    return {
        "contacts": {
            "households": households,
            "with_primary": g["with_primary"],
            "uncovered": households - g["with_primary"],
            "coverage": contact_share,
            "members": g["members"],
            "members_over_normal": g["members_over_normal"],
            "members_over_capacity": g["members_over_capacity"],
        },
        "visits": {
            "visits": g["visits"],
            "counted": g["counted"],
            "pending": g["pending"],
            "accepted": g["accepted"],
            "rejected": g["rejected"],
            "flagged": g["flagged"],
            "households_visited": g["households_visited"],
            "coverage": _ratio(g["households_visited"], households),
            "overdue": g["overdue"],
            "due_soon": g["due_soon"],
            "never_visited": g["never_visited"],
        },
        "issues": {
            "reported": row.get("reported") or 0,
            "total": total,
            "closed": closed,
            "closed_on_time": row.get("closed_on_time") or 0,
            "closure_rate": _ratio(closed, total),
            "on_time_rate": _ratio(row.get("closed_on_time"), closed),
            "rework_rate": _ratio(row.get("reworked"), closed),
            "extension_rate": _ratio(row.get("extended"), total),
            "in_grid_rate": _ratio(row.get("closed_in_grid"), closed),
            "satisfaction": round(row["rating_sum"] / row["rated"], 2)
            if row.get("rated")
            else None,
        },
        "warning": {
            "colour": _colour(list(parts.values())),
            "parts": {k: COLOURS[v] for k, v in parts.items()},
            "overdue_share": overdue_share,
            "contact_coverage": contact_share,
        },
    }


def _range_households(session: Session, node: Node, p: Period, *, children: bool) -> dict[int, int]:
    """Distinct households with a counted visit in a custom range (not additive over days)."""
    key = _raw_key(node, "v") if children else "0"
    rows = session.execute(
        text(
            f"SELECT {key} AS key, count(DISTINCT v.household_id) FROM visits v"
            " WHERE v.village_id = ANY(CAST(:villages AS bigint[]))"
            " AND (CAST(:grid_id AS bigint) IS NULL OR v.grid_id = :grid_id)"
            " AND v.review_status IN ('clean', 'accepted')"
            " AND v.visited_at >= :lo AND v.visited_at < :hi GROUP BY 1"
        ),
        {
            "villages": _ids(village_ids(session, node)),
            "grid_id": node.grid_id,
            "lo": datetime.combine(p.start, datetime.min.time(), LOCAL),
            "hi": datetime.combine(p.end, datetime.min.time(), LOCAL),
        },
    )
    return {k: n for k, n in rows}


def _figures(
    session: Session, node: Node, p: Period, *, children: bool
) -> tuple[dict[int, dict[str, Any]], str | None]:
    """Figures per key, and when the rollups they come from were computed."""
    sql, params = _figures_sql(node, p, children=children)
    # One JSON text per row rather than ~30 columns: describing that many columns to the
    # driver cost more than the figures themselves (py-spy: 7 % of a dashboard read).
    rows = {r["key"]: r for r in (orjson.loads(t) for (t,) in db.fetch(session, sql, params))}
    distinct = _range_households(session, node, p, children=children) if p.kind == "range" else None
    out = {}
    as_of = None
    for key, row in rows.items():
        as_of = row["as_of"]
        figures = _shape(row, None if distinct is None else distinct.get(key, 0))
        issues_now = {
            "open": row.get("open_issues") or 0,
            "open_overdue": row.get("open_overdue") or 0,
            "open_due_soon": row.get("open_due_soon") or 0,
        }
        figures["issues"].update(issues_now)
        if issues_now["open_overdue"]:
            figures["warning"]["parts"]["issues"] = "red"
            figures["warning"]["colour"] = "red"
        else:
            soon = bool(issues_now["open_due_soon"])
            figures["warning"]["parts"]["issues"] = "yellow" if soon else "green"
            if soon and figures["warning"]["colour"] == "green":
                figures["warning"]["colour"] = "yellow"
        out[key] = figures
    return out, as_of


def _empty() -> dict[str, Any]:
    figures = _shape({}, None)
    figures["issues"].update(open=0, open_overdue=0, open_due_soon=0)
    figures["warning"]["parts"]["issues"] = "green"
    return figures


def _node_dict(node: Node) -> dict[str, Any]:
    return {
        "code": node.code,
        "name": node.name,
        "level": node.level,
        "level_label": LEVEL_LABEL[node.level],
    }


def summary(session: Session, scope: Scope, code: str, p: Period) -> dict[str, Any]:
    """The node's figures for the period: contacts, visits (done, due, overdue, flagged),
    issues with the KPIs of /issues/kpis, the 三色预警."""
    node = resolve(session, scope, code)
    figures, as_of = _figures(session, node, p, children=False)
    own = figures.get(0) or _empty()
    return {"unit": _node_dict(node), "period": p.as_dict(), **own, "as_of": as_of}


def children(session: Session, scope: Scope, code: str, p: Period) -> dict[str, Any]:
    """The same figures for each child (county → townships → villages → grids)."""
    node = resolve(session, scope, code)
    level = CHILD_LEVEL[node.level]
    if level is None:
        return {"unit": _node_dict(node), "period": p.as_dict(), "level": None, "items": []}
    figures, _ = _figures(session, node, p, children=True)
    members = _children_of(session, node, level)
    if level == "grid" and 0 in figures:
        members = [*members, (0, None, "未入网格")]
    if level != "grid":
        members = [m for m in members if scope.covers_unit(m[0])]
    items = [
        {"code": c, "name": n, "level": level, **(figures.get(i) or _empty())}
        for i, c, n in members
    ]
    return {"unit": _node_dict(node), "period": p.as_dict(), "level": level, "items": items}


def _children_of(session: Session, node: Node, level: str) -> list[tuple[int, str | None, str]]:
    """(id, code, name) of the node's current children (remembered like the nodes)."""
    found = CHILDREN.get(node.code)
    if found is None:
        sql = (
            "SELECT id, code, name FROM grids WHERE village_id = :p AND valid_to IS NULL"
            if level == "grid"
            else "SELECT id, code, name FROM admin_units WHERE parent_id = :p"
            " AND valid_to IS NULL AND level = :level"
        )
        rows = session.execute(text(sql + " ORDER BY code"), {"p": node.id, "level": level})
        found = [(r.id, r.code, r.name) for r in rows]
        CHILDREN.put(node.code, found)
    return found


def flags(session: Session, scope: Scope, code: str, p: Period) -> dict[str, Any]:
    """Flagged visits of the period by flag and review state (reviewed: accepted/rejected)."""
    node = resolve(session, scope, code)
    source = _rows(node, children=False)
    pf, params = _period_filter(p, "f")
    params.update(_rows_params(node))
    rows = session.execute(
        text(
            "SELECT f.flag, sum(f.pending)::int AS pending, sum(f.accepted)::int AS accepted,"
            f" sum(f.rejected)::int AS rejected FROM {source.table('flag_periods')} f"
            f" WHERE {source.filter('f')} AND {pf}"
            " GROUP BY 1 ORDER BY 2 DESC, 1"
        ),
        params,
    ).mappings()
    items = [
        {
            **dict(r),
            "reviewed": r["accepted"] + r["rejected"],
            "total": r["pending"] + r["accepted"] + r["rejected"],
        }
        for r in rows
    ]
    return {"unit": _node_dict(node), "period": p.as_dict(), "items": items}


def issue_breakdown(session: Session, scope: Scope, code: str, p: Period) -> dict[str, Any]:
    """Issues reported in the period by state, category and level."""
    node = resolve(session, scope, code)
    source = _rows(node, children=False)
    pf, params = _period_filter(p, "i")
    params.update(_rows_params(node))
    where = f"{source.filter('i')} AND {pf}"

    def by(column: str, names: dict[Any, str]) -> list[dict[str, Any]]:
        return [
            {"key": k, "issues": n, "name": names.get(k)}
            for k, n in session.execute(
                text(
                    f"SELECT i.{column}, sum(i.issues)::int"
                    f" FROM {source.table('issue_periods')} i WHERE {where}"
                    " GROUP BY 1 ORDER BY 2 DESC, 1"
                ),
                params,
            )
        ]

    categories = dict(session.execute(text("SELECT code, name FROM issue_categories")).all())
    return {
        "unit": _node_dict(node),
        "period": p.as_dict(),
        "by_state": by("state", STATE_LABELS),
        "by_category": by("category_code", categories),
        "by_level": by("level", {k: f"{v}级" for k, v in LEVEL_NAMES.items()}),
    }


def trend(
    session: Session, scope: Scope, code: str, *, kind: str, start: date, end: date
) -> dict[str, Any]:
    """A series per day / week / month over [start, end]: visits counted, households visited,
    flagged and rejected visits, issues reported and closed."""
    node = resolve(session, scope, code)
    if (end - start).days + 1 > MAX_RANGE_DAYS * (1 if kind == "day" else 5):
        raise _invalid("to", "时段过长")
    params = {**_rows_params(node), "kind": kind, "lo": period(kind, on=start).start, "hi": end}
    source = _rows(node, children=False)
    visit_rows, issue_rows = source.table("visit_periods"), source.table("issue_periods")
    sql = f"""
    SELECT d.start, COALESCE(vv.counted, 0) AS counted, COALESCE(vv.households, 0) AS households,
           COALESCE(vv.flagged, 0) AS flagged, COALESCE(vv.rejected, 0) AS rejected,
           COALESCE(ii.reported, 0) AS issues_reported, COALESCE(ii.closed, 0) AS issues_closed
    FROM (SELECT DISTINCT start FROM (
            SELECT start FROM {visit_rows} v WHERE {source.filter("v")}
              AND v.kind = :kind AND v.start BETWEEN :lo AND :hi
            UNION SELECT start FROM {issue_rows} i WHERE {source.filter("i")}
              AND i.kind = :kind AND i.start BETWEEN :lo AND :hi) s) d
    LEFT JOIN (SELECT v.start, sum(v.counted)::int AS counted,
                      sum(v.households_visited)::int AS households,
                      sum(v.flagged)::int AS flagged, sum(v.rejected)::int AS rejected
               FROM {visit_rows} v WHERE {source.filter("v")} AND v.kind = :kind
                 AND v.start BETWEEN :lo AND :hi GROUP BY 1) vv ON vv.start = d.start
    LEFT JOIN (SELECT i.start, sum(i.issues)::int AS reported,
                      (sum(i.issues) FILTER (WHERE i.state = 'CLOSED'))::int AS closed
               FROM {issue_rows} i WHERE {source.filter("i")} AND i.kind = :kind
                 AND i.start BETWEEN :lo AND :hi GROUP BY 1) ii ON ii.start = d.start
    ORDER BY d.start
    """
    found = {r["start"]: dict(r) for r in session.execute(text(sql), params).mappings()}
    series = []
    cursor = params["lo"]
    while cursor <= end:
        row = found.get(cursor) or {
            "counted": 0,
            "households": 0,
            "flagged": 0,
            "rejected": 0,
            "issues_reported": 0,
            "issues_closed": 0,
        }
        series.append(
            {"start": cursor.isoformat(), **{k: v for k, v in row.items() if k != "start"}}
        )
        cursor = period(kind, on=cursor).end
    return {"unit": _node_dict(node), "kind": kind, "series": series}


# -- 积分 -----------------------------------------------------------------------------------------


def _score(parts: dict[str, Any]) -> float:
    w = get_settings().dashboard.scores
    coverage = parts["coverage"] or 0.0
    value = (
        w.coverage * 100 * coverage
        + w.issue_reported * min(parts["issues_reported"], w.issue_cap)
        + w.issue_on_time * parts["issues_closed_on_time"]
        - w.overdue * parts["overdue"]
        - w.rejected_visit * parts["rejected_visits"]
    )
    return round(value, 2)


def formula() -> dict[str, Any]:
    w = get_settings().dashboard.scores
    return {
        "text": (
            f"{w.coverage:g}×100×走访覆盖率"
            f" + {w.issue_reported:g}×上报事件数（最多 {w.issue_cap} 件）"
            f" + {w.issue_on_time:g}×按期办结事件数 − {w.overdue:g}×超期未访户数"
            f" − {w.rejected_visit:g}×被驳回（虚假）走访数"
        ),
        "weights": w.model_dump(),
    }


def scores(
    session: Session,
    scope: Scope,
    code: str,
    p: Period,
    *,
    of: str,
    limit: int = 500,
    pii: bool = False,
) -> dict[str, Any]:
    """积分 of the node's members (``of=member``) or grids (``of=grid``) for a week or month,
    each with its parts; highest first. Computed from rollups only. Members' names follow the
    personal-data rule (masked unless ``pii=true`` by a role that may)."""
    shown = privacy.shown(scope, "scores", pii)
    node = resolve(session, scope, code)
    if p.kind not in ("week", "month"):
        raise _invalid("period", "积分按周（week）或月（month）计算")
    params: dict[str, Any] = {
        "villages": _ids(village_ids(session, node)),
        "grid_id": node.grid_id,
        "kind": p.kind,
        "start": p.start,
        "limit": limit,
    }
    if of == "member":
        sql = """
        SELECT m.id, m.name, v.code AS village_code, g.code AS grid_code, s.assigned, s.overdue,
               COALESCE(mp.households, 0)::int AS households_visited,
               COALESCE(mp.rejected, 0)::int AS rejected_visits,
               COALESCE(mp.reported, 0)::int AS issues_reported,
               COALESCE(mp.on_time, 0)::int AS issues_closed_on_time
        FROM dash_member_status s JOIN party_members m ON m.id = s.member_id
        JOIN admin_units v ON v.id = s.village_id
        LEFT JOIN grids g ON g.id = NULLIF(s.grid_id, 0)
        LEFT JOIN (SELECT member_id, sum(households_visited) AS households,
                          sum(rejected) AS rejected,
                          sum(issues_reported) AS reported, sum(issues_closed_on_time) AS on_time
                   FROM dash_member_periods WHERE kind = :kind AND start = :start
                     AND village_id = ANY(CAST(:villages AS bigint[])) GROUP BY 1) mp
               ON mp.member_id = s.member_id
        WHERE s.village_id = ANY(CAST(:villages AS bigint[]))
          AND (CAST(:grid_id AS bigint) IS NULL OR s.grid_id = :grid_id)
          AND (s.assigned > 0 OR mp.member_id IS NOT NULL)
        """
    elif of == "grid":
        sql = """
        SELECT g.id, g.name, v.code AS village_code, g.code AS grid_code, s.households AS assigned,
               s.overdue, COALESCE(vp.households_visited, 0) AS households_visited,
               COALESCE(vp.rejected, 0) AS rejected_visits,
               COALESCE(ip.reported, 0)::int AS issues_reported,
               COALESCE(ip.on_time, 0)::int AS issues_closed_on_time
        FROM dash_status s JOIN grids g ON g.id = s.grid_id
        JOIN admin_units v ON v.id = s.village_id
        LEFT JOIN dash_visit_periods vp ON vp.village_id = s.village_id AND vp.grid_id = s.grid_id
             AND vp.kind = :kind AND vp.start = :start
        LEFT JOIN (SELECT grid_id,
                          sum(issues) FILTER (WHERE state NOT IN ('REJECTED', 'MERGED',
                                                                  'CANCELLED')) AS reported,
                          sum(on_time) FILTER (WHERE state = 'CLOSED') AS on_time
                   FROM dash_issue_periods WHERE kind = :kind AND start = :start AND grid_id > 0
                     AND village_id = ANY(CAST(:villages AS bigint[])) GROUP BY 1) ip
               ON ip.grid_id = s.grid_id
        WHERE s.village_id = ANY(CAST(:villages AS bigint[])) AND s.grid_id > 0
          AND (CAST(:grid_id AS bigint) IS NULL OR s.grid_id = :grid_id)
        """
    else:
        raise _invalid("of", "of 应为 member 或 grid", "invalid_parameter")
    items = []
    for r in session.execute(text(sql), params).mappings():
        parts = {
            "assigned": r["assigned"],
            "households_visited": r["households_visited"],
            "coverage": _ratio(r["households_visited"], r["assigned"]),
            "issues_reported": r["issues_reported"],
            "issues_closed_on_time": r["issues_closed_on_time"],
            "overdue": r["overdue"],
            "rejected_visits": r["rejected_visits"],
        }
        items.append(
            {
                "id": r["id"],
                "name": r["name"],
                "village_code": r["village_code"],
                "grid_code": r["grid_code"],
                "score": _score(parts),
                "parts": parts,
            }
        )
    items.sort(key=lambda i: (-i["score"], i["id"]))
    items = items[:limit]
    if of == "member":
        for item in items:
            privacy.mask("party_member", item, shown=shown)
        if shown and items:
            privacy.record_read(
                session, scope, "dashboard_scores", node.code, {"members": len(items)}
            )
    return {
        "unit": _node_dict(node),
        "period": p.as_dict(),
        "of": of,
        "formula": formula(),
        "items": items,
    }


# -- 一户一档 -----------------------------------------------------------------------------------


def household_file(
    session: Session, scope: Scope, household_id: int, *, pii: bool = False, limit: int = 500
) -> dict[str, Any]:
    """One household's file: who looked after it (contact history), its visits and its issues
    with their timelines, newest first on one timeline. Names follow the personal-data rule."""
    shown = privacy.shown(scope, "household_file", pii)
    household = scope.get(session, Household, household_id, "住户")
    head = (
        session.execute(
            text(
                "SELECT h.id, h.head_name, h.phone, h.address, h.tags, h.flags, h.size,"
                " v.code AS village_code, v.name AS village_name, g.code AS grid_code,"
                " g.name AS grid_name, h.removed_at"
                " FROM households h JOIN admin_units v ON v.id = h.village_id"
                " LEFT JOIN grids g ON g.id = h.grid_id WHERE h.id = :id"
            ),
            {"id": household.id},
        )
        .mappings()
        .one()
    )
    events: list[dict[str, Any]] = []
    for r in session.execute(
        text(
            "SELECT c.id, c.role, c.valid_from, c.valid_to, c.ended_reason, m.name AS member_name"
            " FROM contacts c JOIN party_members m ON m.id = c.member_id"
            " WHERE c.household_id = :id ORDER BY c.valid_from, c.id"
        ),
        {"id": household.id},
    ).mappings():
        name = r["member_name"] if shown else privacy.mask_name(r["member_name"])
        role = "主联系党员" if r["role"] == "primary" else "协助联系党员"
        events.append(
            {
                "at": r["valid_from"].isoformat(),
                "kind": "contact_start",
                "title": f"{name}任{role}",
                "ref": {"contact_id": r["id"]},
            }
        )
        if r["valid_to"] is not None:
            events.append(
                {
                    "at": r["valid_to"].isoformat(),
                    "kind": "contact_end",
                    "title": f"{name}不再担任{role}（{r['ended_reason'] or '结束'}）",
                    "ref": {"contact_id": r["id"]},
                }
            )
    for r in session.execute(
        text(
            "SELECT v.id, v.visited_at, v.method, v.review_status, v.flags, v.notes,"
            " m.name AS member_name FROM visits v LEFT JOIN party_members m ON m.id = v.member_id"
            " WHERE v.household_id = :id ORDER BY v.visited_at DESC LIMIT :limit"
        ),
        {"id": household.id, "limit": limit},
    ).mappings():
        name = r["member_name"] if shown else privacy.mask_name(r["member_name"])
        events.append(
            {
                "at": wire.time_text(r["visited_at"]),
                "kind": "visit",
                "title": f"{name or '网格员'}走访（{METHOD_LABEL.get(r['method'], r['method'])}）",
                "ref": {"visit_id": r["id"]},
                "review_status": r["review_status"],
                "flags": r["flags"],
                "notes": r["notes"],
            }
        )
    for r in session.execute(
        text(
            "SELECT i.id, e.at, e.action, e.from_state, e.to_state, e.to_level, e.note,"
            " c.name AS category FROM issues i JOIN issue_events e ON e.issue_id = i.id"
            " JOIN issue_categories c ON c.code = i.category_code"
            " WHERE i.household_id = :id ORDER BY e.at DESC, e.id DESC LIMIT :limit"
        ),
        {"id": household.id, "limit": limit},
    ).mappings():
        events.append(
            {
                "at": wire.time_text(r["at"]),
                "kind": "issue",
                "title": f"事件 #{r['id']}（{r['category']}）：{r['action']} → {r['to_state']}",
                "ref": {"issue_id": r["id"]},
                "state": r["to_state"],
                "level": r["to_level"],
                "note": r["note"],
            }
        )
    events.sort(key=lambda e: e["at"], reverse=True)
    data = dict(head)
    data["removed_at"] = wire.time_text(data["removed_at"])
    privacy.mask("household", data, shown=shown)
    if shown:
        privacy.record_read(session, scope, "household_file", household.id)
    return {"household": data, "events": events}


METHOD_LABEL = {
    "door": "入户",
    "phone": "电话",
    "video": "视频",
    "meeting": "会面",
    "other": "其他",
}
