"""dashboard unit totals (dash_unit_*): a township's and a county's figures per period, summed
from its villages' total rows by the refresher, so that a county dashboard reads one row per
figure instead of summing every village per request; open issues in the status rows (with the
next moment one of them becomes due soon or overdue, when the refresher recomputes them)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_COUNTS = ("open_issues", "open_overdue", "open_due_soon")


def _counts(*names: str) -> list[sa.Column]:
    return [sa.Column(n, sa.Integer(), nullable=False) for n in names]


def _key(*extra: sa.Column) -> list[sa.Column]:
    return [
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=5), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        *extra,
    ]


# (unit table, village table, grouping columns beyond the unit and period, summed columns)
BACKFILL = (
    (
        "dash_unit_visit_periods",
        "dash_visit_periods",
        (),
        ("visits", "counted", "pending", "accepted", "rejected", "flagged", "households_visited"),
    ),
    ("dash_unit_flag_periods", "dash_flag_periods", ("flag",), ("pending", "accepted", "rejected")),
    (
        "dash_unit_issue_periods",
        "dash_issue_periods",
        ("category_code", "level", "state"),
        ("issues", "on_time", "reworked", "extended", "in_grid", "rated", "rating_sum"),
    ),
    (
        "dash_unit_status",
        "dash_status",
        (),
        (
            "households",
            "with_primary",
            "overdue",
            "due_soon",
            "never_visited",
            "members",
            "members_over_normal",
            "members_over_capacity",
            *OPEN_COUNTS,
        ),
    ),
)


def upgrade() -> None:
    for name in OPEN_COUNTS:
        op.add_column(
            "dash_status", sa.Column(name, sa.Integer(), nullable=False, server_default="0")
        )
    op.add_column("dash_status", sa.Column("next_change_at", sa.DateTime(timezone=True)))
    # Recomputed by the first refresh (the open counts start at 0).
    op.execute(
        "INSERT INTO dash_dirty (village_id, day) SELECT DISTINCT village_id, '-infinity'::date"
        " FROM dash_status"
    )
    op.create_table(
        "dash_unit_visit_periods",
        *_key(),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        *_counts(
            "visits", "counted", "pending", "accepted", "rejected", "flagged", "households_visited"
        ),
        sa.PrimaryKeyConstraint(
            "unit_id", "kind", "start", name=op.f("pk_dash_unit_visit_periods")
        ),
    )
    op.create_table(
        "dash_unit_flag_periods",
        *_key(sa.Column("flag", sa.String(length=30), nullable=False)),
        *_counts("pending", "accepted", "rejected"),
        sa.PrimaryKeyConstraint(
            "unit_id", "kind", "start", "flag", name=op.f("pk_dash_unit_flag_periods")
        ),
    )
    op.create_table(
        "dash_unit_issue_periods",
        *_key(
            sa.Column("category_code", sa.String(length=4), nullable=False),
            sa.Column("level", sa.SmallInteger(), nullable=False),
            sa.Column("state", sa.String(length=20), nullable=False),
        ),
        *_counts("issues", "on_time", "reworked", "extended", "in_grid", "rated", "rating_sum"),
        sa.PrimaryKeyConstraint(
            "unit_id",
            "kind",
            "start",
            "category_code",
            "level",
            "state",
            name=op.f("pk_dash_unit_issue_periods"),
        ),
    )
    op.create_table(
        "dash_unit_status",
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        *_counts(
            "households",
            "with_primary",
            "overdue",
            "due_soon",
            "never_visited",
            "members",
            "members_over_normal",
            "members_over_capacity",
            *OPEN_COUNTS,
        ),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("unit_id", name=op.f("pk_dash_unit_status")),
    )
    # The totals of what the rollups already hold (the refresher keeps them from here on).
    units = (
        "FROM admin_units u JOIN admin_units v ON v.county_code = u.county_code"
        " AND v.level = 'village' AND v.valid_to IS NULL AND v.code LIKE u.code || '%'"
        " JOIN {source} p ON p.village_id = v.id AND p.grid_id = -1"
        " WHERE u.level IN ('county', 'township') AND u.valid_to IS NULL"
    )
    for table, source, group, sums in BACKFILL:
        status = source == "dash_status"
        period = "" if status else ", p.kind, p.start"
        county = table in ("dash_unit_visit_periods", "dash_unit_status")
        keys = period + "".join(f", p.{c}" for c in group)
        columns = ["unit_id", *([] if status else ["kind", "start"]), *group]
        columns += [*(["county_code"] if county else []), *sums]
        values = ["u.id" + keys, *(["min(u.county_code)"] if county else [])]
        values += [f"sum(p.{c})" for c in sums]
        if status:
            columns += ["as_of", "refreshed_at"]
            values += ["min(p.as_of)", "min(p.refreshed_at)"]
        op.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} "
            + units.format(source=source)
            + f" GROUP BY u.id{keys}"
        )


def downgrade() -> None:
    for name in (*OPEN_COUNTS, "next_change_at"):
        op.drop_column("dash_status", name)
    for table in (
        "dash_unit_status",
        "dash_unit_issue_periods",
        "dash_unit_flag_periods",
        "dash_unit_visit_periods",
    ):
        op.drop_table(table)
