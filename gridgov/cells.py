"""The one cell sanitiser of every spreadsheet and CSV the project writes (formula injection).

Excel, WPS and LibreOffice run a cell whose text starts with ``=``, ``+``, ``-`` or ``@`` (and,
after a leading tab or carriage return, whatever follows) as a formula: a household head named
``=HYPERLINK(…)`` or an imported ``=cmd|' /C calc'!A0`` would be live in a county's ledger.
As OWASP recommends, such *text* cells get a leading ``'``, which spreadsheets show as text.
Numbers stay numbers (a negative number is not text and is never prefixed).
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A value for a spreadsheet or CSV cell: text that a spreadsheet would run is prefixed."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_cell_sql(expression: str) -> str:
    """The same rule in SQL, for CSV that PostgreSQL writes itself (COPY): ``expression`` is a
    text expression (evaluated once)."""
    return f"regexp_replace(({expression})::text, '^([=+\\-@\\t\\r])', '''\\1')"
