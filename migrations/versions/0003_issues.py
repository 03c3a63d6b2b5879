"""issues: 事件 with an append-only timeline, MMNN categories, the working calendar

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 03:20:00

Categories and the national holiday / 调休 calendar are seeded from the CSV files shipped in
``gridgov/seed/``; counties edit ``calendar_days`` afterwards (their own rows override the
national ``000000`` ones).
"""

import csv
from collections.abc import Sequence
from datetime import date
from importlib import resources

import geoalchemy2  # noqa: F401
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENTS_GUARD = """
CREATE OR REPLACE FUNCTION issue_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'issue_events is append-only' USING ERRCODE = 'insufficient_privilege';
END $$
"""


def _seed(name: str) -> list[dict[str, str]]:
    text = (resources.files("gridgov") / "seed" / name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def upgrade() -> None:
    op.create_table(
        "calendar_days",
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.CheckConstraint("kind IN ('holiday', 'workday')", name=op.f("ck_calendar_days_kind")),
        sa.PrimaryKeyConstraint("county_code", "day", name=op.f("pk_calendar_days")),
    )
    op.create_table(
        "issue_categories",
        sa.Column("code", sa.String(length=4), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("sla_hours", sa.Integer(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("photo_required", sa.Boolean(), nullable=False),
        sa.CheckConstraint("code ~ '^[0-9]{4}$'", name=op.f("ck_issue_categories_code_digits")),
        sa.CheckConstraint("priority BETWEEN 1 AND 4", name=op.f("ck_issue_categories_priority")),
        sa.CheckConstraint("sla_hours > 0", name=op.f("ck_issue_categories_sla_positive")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_issue_categories")),
    )
    op.create_table(
        "issues",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("client_uuid", sa.UUID(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("village_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.Column("category_code", sa.String(length=4), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "geom_3857",
            Geometry(
                geometry_type="POINT",
                srid=3857,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            sa.Computed("ST_Transform(geom, 3857)", persisted=True),
            nullable=True,
        ),
        sa.Column("photo_ids", sa.ARRAY(sa.UUID()), server_default="{}", nullable=False),
        sa.Column("reporter_id", sa.BigInteger(), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=True),
        sa.Column("duplicate_ids", sa.ARRAY(sa.BigInteger()), server_default="{}", nullable=False),
        sa.Column("flags", sa.ARRAY(sa.String(length=30)), server_default="{}", nullable=False),
        sa.Column("state", sa.String(length=20), server_default="REPORTED", nullable=False),
        sa.Column("level", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=True),
        sa.Column("handler_id", sa.BigInteger(), nullable=True),
        sa.Column("resolved_by", sa.BigInteger(), nullable=True),
        sa.Column("resolved_level", sa.SmallInteger(), nullable=True),
        sa.Column("sla_hours", sa.Integer(), nullable=False),
        sa.Column("sla_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalate_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hold_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("extended", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("rework_count", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("escalation_count", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("close_reason", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("level BETWEEN 1 AND 4", name=op.f("ck_issues_level")),
        sa.CheckConstraint("priority BETWEEN 1 AND 4", name=op.f("ck_issues_priority")),
        sa.CheckConstraint(
            "rating IS NULL OR rating BETWEEN 1 AND 5", name=op.f("ck_issues_rating")
        ),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["issue_categories.code"],
            name=op.f("fk_issues_category_code_issue_categories"),
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_issues_grid_id_grids")),
        sa.ForeignKeyConstraint(
            ["handler_id"], ["users.id"], name=op.f("fk_issues_handler_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_issues_household_id_households")
        ),
        sa.ForeignKeyConstraint(
            ["reporter_id"], ["users.id"], name=op.f("fk_issues_reporter_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["users.id"], name=op.f("fk_issues_resolved_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["admin_units.id"], name=op.f("fk_issues_unit_id_admin_units")
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["admin_units.id"], name=op.f("fk_issues_village_id_admin_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issues")),
    )
    op.create_index(
        "ix_issues_county_code_created_at", "issues", ["county_code", "created_at"], unique=False
    )
    op.create_index(
        "ix_issues_escalate_at_open",
        "issues",
        ["escalate_at"],
        unique=False,
        postgresql_where=sa.text(
            "state IN ('REPORTED', 'ACCEPTED', 'ASSIGNED', 'IN_PROGRESS', 'RETURNED', 'REWORK')"
        ),
    )
    op.create_index("ix_issues_geom", "issues", ["geom"], unique=False, postgresql_using="gist")
    op.create_index(
        "ix_issues_geom_3857", "issues", ["geom_3857"], unique=False, postgresql_using="gist"
    )
    op.create_index("ix_issues_grid_id", "issues", ["grid_id"], unique=False)
    op.create_index("ix_issues_village_id_state", "issues", ["village_id", "state"], unique=False)
    op.create_index("uq_issues_client_uuid", "issues", ["client_uuid"], unique=True)
    op.create_table(
        "issue_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("from_level", sa.SmallInteger(), nullable=True),
        sa.Column("to_level", sa.SmallInteger(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("photo_ids", sa.ARRAY(sa.UUID()), server_default="{}", nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_issue_events_issue_id_issues")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_issue_events_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issue_events")),
    )
    op.create_index("ix_issue_events_issue_id_id", "issue_events", ["issue_id", "id"], unique=False)

    # The timeline is append-only: refuse UPDATE, DELETE and TRUNCATE at the database.
    op.execute(EVENTS_GUARD)
    op.execute(
        "CREATE TRIGGER issue_events_append_only BEFORE UPDATE OR DELETE ON issue_events "
        "FOR EACH ROW EXECUTE FUNCTION issue_events_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER issue_events_no_truncate BEFORE TRUNCATE ON issue_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION issue_events_refuse_change()"
    )
    categories = sa.table(
        "issue_categories",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("priority", sa.SmallInteger),
        sa.column("sla_hours", sa.Integer),
        sa.column("public", sa.Boolean),
        sa.column("photo_required", sa.Boolean),
    )
    op.bulk_insert(
        categories,
        [
            {
                "code": r["code"],
                "name": r["name"],
                "priority": int(r["priority"]),
                "sla_hours": int(r["sla_hours"]),
                "public": r["public"] == "true",
                "photo_required": r["photo_required"] == "true",
            }
            for r in _seed("issue-categories.csv")
        ],
    )
    days = sa.table(
        "calendar_days",
        sa.column("county_code", sa.String),
        sa.column("day", sa.Date),
        sa.column("kind", sa.String),
        sa.column("name", sa.String),
        sa.column("source", sa.String),
    )
    op.bulk_insert(
        days,
        [
            {
                "county_code": "000000",
                "day": date.fromisoformat(r["date"]),
                "kind": r["kind"],
                "name": r["name"],
                "source": r["source"],
            }
            for r in _seed("cn-holidays.csv")
        ],
    )


def downgrade() -> None:
    op.drop_table("issue_events")
    op.drop_table("issues")
    op.drop_table("issue_categories")
    op.drop_table("calendar_days")
    op.execute("DROP FUNCTION IF EXISTS issue_events_refuse_change()")
