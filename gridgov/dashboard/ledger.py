"""XLSX ledgers (台账) of a unit and period: the dashboard's figures per child unit, the flagged
visits, the issues by category, and the 积分 of members and grids — Chinese headers, a frozen
header row, widths and number formats set, every text cell through the one cell sanitiser.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from gridgov.auth.scope import Scope
from gridgov.cells import safe_cell
from gridgov.dashboard import service as dashboard_service
from gridgov.dashboard.service import Period

PERCENT = "0.0%"
INTEGER = "#,##0"
DECIMAL = "0.00"

Column = tuple[str, Callable[[dict[str, Any]], Any], str | None, int]  # title, value, format, width

UNIT_COLUMNS: Sequence[Column] = (
    ("代码", lambda r: r["code"], "@", 17),
    ("名称", lambda r: r["name"], None, 18),
    ("在册户数", lambda r: r["contacts"]["households"], INTEGER, 10),
    ("已落实主联系党员户数", lambda r: r["contacts"]["with_primary"], INTEGER, 12),
    ("未落实户数", lambda r: r["contacts"]["uncovered"], INTEGER, 10),
    ("联系户覆盖率", lambda r: r["contacts"]["coverage"], PERCENT, 10),
    ("在册党员", lambda r: r["contacts"]["members"], INTEGER, 9),
    ("超出上限党员", lambda r: r["contacts"]["members_over_capacity"], INTEGER, 10),
    ("走访记录", lambda r: r["visits"]["visits"], INTEGER, 9),
    ("计入走访", lambda r: r["visits"]["counted"], INTEGER, 9),
    ("走访户数", lambda r: r["visits"]["households_visited"], INTEGER, 9),
    ("走访覆盖率", lambda r: r["visits"]["coverage"], PERCENT, 10),
    ("待核走访", lambda r: r["visits"]["pending"], INTEGER, 9),
    ("驳回走访", lambda r: r["visits"]["rejected"], INTEGER, 9),
    ("超期未访户数", lambda r: r["visits"]["overdue"], INTEGER, 10),
    ("7日内到期户数", lambda r: r["visits"]["due_soon"], INTEGER, 10),
    ("上报事件", lambda r: r["issues"]["total"], INTEGER, 9),
    ("已结案", lambda r: r["issues"]["closed"], INTEGER, 8),
    ("结案率", lambda r: r["issues"]["closure_rate"], PERCENT, 8),
    ("按期结案率", lambda r: r["issues"]["on_time_rate"], PERCENT, 10),
    ("网格内解决率", lambda r: r["issues"]["in_grid_rate"], PERCENT, 10),
    ("满意度", lambda r: r["issues"]["satisfaction"], DECIMAL, 8),
    ("未办结事件", lambda r: r["issues"]["open"], INTEGER, 10),
    ("超期事件", lambda r: r["issues"]["open_overdue"], INTEGER, 9),
    ("预警", lambda r: COLOUR_LABEL[r["warning"]["colour"]], None, 6),
)
COLOUR_LABEL = {"green": "绿", "yellow": "黄", "red": "红"}
COLOUR_FILL = {"green": "C6EFCE", "yellow": "FFEB9C", "red": "FFC7CE"}
FLAG_COLUMNS: Sequence[Column] = (
    ("标记", lambda r: FLAG_LABEL.get(r["flag"], r["flag"]), None, 18),
    ("标记代码", lambda r: r["flag"], None, 20),
    ("待核", lambda r: r["pending"], INTEGER, 8),
    ("审核通过", lambda r: r["accepted"], INTEGER, 9),
    ("驳回", lambda r: r["rejected"], INTEGER, 8),
    ("合计", lambda r: r["total"], INTEGER, 8),
)
FLAG_LABEL = {
    "far_from_household": "距住户过远",
    "poor_accuracy": "定位精度差",
    "no_location": "入户无定位",
    "impossible_speed": "移动速度不合理",
    "future_visited_at": "走访时间在未来",
    "late_upload": "上传过晚",
    "photo_reused": "照片重复使用",
    "burst": "短时间内大量走访",
    "not_assigned": "非本人联系户",
}
ISSUE_COLUMNS: Sequence[Column] = (
    ("类别代码", lambda r: r["key"], "@", 10),
    ("类别", lambda r: r.get("name"), None, 16),
    ("事件数", lambda r: r["issues"], INTEGER, 9),
)
SCORE_COLUMNS: Sequence[Column] = (
    ("名称", lambda r: r["name"], None, 16),
    ("所属村代码", lambda r: r["village_code"], "@", 15),
    ("网格代码", lambda r: r["grid_code"], "@", 17),
    ("积分", lambda r: r["score"], DECIMAL, 9),
    ("联系户数", lambda r: r["parts"]["assigned"], INTEGER, 9),
    ("走访户数", lambda r: r["parts"]["households_visited"], INTEGER, 9),
    ("走访覆盖率", lambda r: r["parts"]["coverage"], PERCENT, 10),
    ("上报事件", lambda r: r["parts"]["issues_reported"], INTEGER, 9),
    ("按期办结", lambda r: r["parts"]["issues_closed_on_time"], INTEGER, 9),
    ("超期未访户数", lambda r: r["parts"]["overdue"], INTEGER, 10),
    ("驳回走访", lambda r: r["parts"]["rejected_visits"], INTEGER, 9),
)


def _sheet(
    book: Any, title: str, heading: str, columns: Sequence[Column], rows: list[dict[str, Any]]
) -> Any:
    from openpyxl.styles import Alignment, Font, PatternFill

    ws = book.create_sheet(title)
    ws.append([safe_cell(heading)])
    ws["A1"].font = Font(bold=True, size=12)
    ws.append([c[0] for c in columns])
    for cell in ws[2]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
    for row in rows:
        ws.append([safe_cell(value(row)) for _, value, _, _ in columns])
    for index, (_, _, number_format, width) in enumerate(columns, start=1):
        letter = ws.cell(row=2, column=index).column_letter
        ws.column_dimensions[letter].width = width
        if number_format:
            for (cell,) in ws.iter_rows(min_row=3, min_col=index, max_col=index):
                cell.number_format = number_format
    ws.freeze_panes = "A3"  # title and header stay in view
    return ws


def ledger(session: Session, scope: Scope, code: str, p: Period) -> tuple[bytes, str]:
    """The workbook's bytes and a file name."""
    import openpyxl
    from openpyxl.styles import PatternFill

    summary = dashboard_service.summary(session, scope, code, p)
    children = dashboard_service.children(session, scope, code, p)
    unit = summary["unit"]
    heading = f"{unit['name']}（{unit['code']}）{p.label} 网格治理台账"
    book = openpyxl.Workbook()
    book.remove(book.active)
    total = {"code": unit["code"], "name": f"{unit['name']}（合计）", **summary}
    rows = [*children["items"], total]
    ws = _sheet(book, "汇总", heading, UNIT_COLUMNS, rows)
    colour_col = len(UNIT_COLUMNS)
    for offset, row in enumerate(rows, start=3):
        ws.cell(row=offset, column=colour_col).fill = PatternFill(
            "solid", fgColor=COLOUR_FILL[row["warning"]["colour"]]
        )
    flags = dashboard_service.flags(session, scope, code, p)["items"]
    _sheet(book, "走访标记", heading, FLAG_COLUMNS, flags)
    issues = dashboard_service.issue_breakdown(session, scope, code, p)["by_category"]
    _sheet(book, "事件类别", heading, ISSUE_COLUMNS, issues)
    if p.kind in ("week", "month"):
        for of, title in (("member", "党员积分"), ("grid", "网格积分")):
            scores = dashboard_service.scores(session, scope, code, p, of=of)
            _sheet(
                book,
                title,
                f"{heading} · {scores['formula']['text']}",
                SCORE_COLUMNS,
                scores["items"],
            )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue(), f"{unit['code']}_{p.start:%Y%m%d}_台账.xlsx"
