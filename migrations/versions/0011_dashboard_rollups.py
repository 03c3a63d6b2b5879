"""dashboard rollups (dash_*): figures per grid / village and period, kept current from the raw
tables; triggers note which village and day changed (dash_dirty)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 19:00:00

The notes are appended by statement-level triggers (one INSERT per statement, from the
transition table), so a 500-visit batch adds one small INSERT, and no two writers ever wait
for each other on a note.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOCAL_DAY = "({col} AT TIME ZONE 'Asia/Shanghai')::date"
# (table, function, the day a row's change affects): visits and issues by their own day,
# the others only the village's current state (-infinity).
MARKED = (
    ("visits", "dash_note_visits", LOCAL_DAY.format(col="visited_at")),
    ("issues", "dash_note_issues", LOCAL_DAY.format(col="created_at")),
    ("contacts", "dash_note_contacts", "'-infinity'::date"),
    ("households", "dash_note_households", "'-infinity'::date"),
    ("party_members", "dash_note_members", "'-infinity'::date"),
)
FUNCTION = """
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO dash_dirty (village_id, day)
        SELECT DISTINCT village_id, {day} FROM new_rows;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO dash_dirty (village_id, day)
        SELECT DISTINCT village_id, {day} FROM old_rows;
    END IF;
    RETURN NULL;
END $$
"""
EVENTS = (
    ("insert", "INSERT", "NEW TABLE AS new_rows"),
    ("update", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("delete", "DELETE", "OLD TABLE AS old_rows"),
)


def _counts(*names: str) -> list[sa.Column]:
    return [sa.Column(n, sa.Integer(), nullable=False) for n in names]


def _key(*extra: sa.Column) -> list[sa.Column]:
    return [
        sa.Column("village_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=5), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        *extra,
    ]


def upgrade() -> None:
    op.create_table(
        "dash_dirty",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("village_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "marked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dash_dirty")),
    )
    op.create_table(
        "dash_visit_periods",
        *_key(),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        *_counts(
            "visits",
            "counted",
            "pending",
            "accepted",
            "rejected",
            "flagged",
            "households_visited",
            "members_visiting",
        ),
        sa.PrimaryKeyConstraint(
            "village_id", "grid_id", "kind", "start", name=op.f("pk_dash_visit_periods")
        ),
    )
    op.create_table(
        "dash_flag_periods",
        *_key(sa.Column("flag", sa.String(length=30), nullable=False)),
        *_counts("pending", "accepted", "rejected"),
        sa.PrimaryKeyConstraint(
            "village_id", "grid_id", "kind", "start", "flag", name=op.f("pk_dash_flag_periods")
        ),
    )
    op.create_table(
        "dash_issue_periods",
        *_key(
            sa.Column("category_code", sa.String(length=4), nullable=False),
            sa.Column("level", sa.SmallInteger(), nullable=False),
            sa.Column("state", sa.String(length=20), nullable=False),
        ),
        *_counts("issues", "on_time", "reworked", "extended", "in_grid", "rated", "rating_sum"),
        sa.PrimaryKeyConstraint(
            "village_id",
            "grid_id",
            "kind",
            "start",
            "category_code",
            "level",
            "state",
            name=op.f("pk_dash_issue_periods"),
        ),
    )
    op.create_table(
        "dash_member_periods",
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("village_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=5), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        *_counts(
            "visits_counted",
            "households_visited",
            "rejected",
            "issues_reported",
            "issues_closed_on_time",
        ),
        sa.PrimaryKeyConstraint(
            "member_id", "village_id", "kind", "start", name=op.f("pk_dash_member_periods")
        ),
    )
    op.create_table(
        "dash_status",
        sa.Column("village_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
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
        ),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("village_id", "grid_id", name=op.f("pk_dash_status")),
    )
    op.create_table(
        "dash_member_status",
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("village_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        *_counts("assigned", "primaries", "overdue"),
        sa.Column("over_normal", sa.Boolean(), nullable=False),
        sa.Column("over_capacity", sa.Boolean(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_dash_member_status")),
    )
    for table, name, day in MARKED:
        op.execute(FUNCTION.format(name=name, day=day))
        for suffix, event, referencing in EVENTS:
            op.execute(
                f"CREATE TRIGGER {name}_{suffix} AFTER {event} ON {table} "
                f"REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )


def downgrade() -> None:
    for table, name, _ in MARKED:
        for suffix, _event, _ref in EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}_{suffix} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    for table in (
        "dash_member_status",
        "dash_status",
        "dash_member_periods",
        "dash_issue_periods",
        "dash_flag_periods",
        "dash_visit_periods",
        "dash_dirty",
    ):
        op.drop_table(table)
