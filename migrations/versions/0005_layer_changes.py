"""layer_changes: one row per write statement on the tables map layers read (tile versions)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("admin_units", "grids", "households", "contacts")


def upgrade() -> None:
    op.create_table(
        "layer_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("table_name", sa.String(length=63), nullable=False),
        sa.Column(
            "changed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_layer_changes")),
    )
    op.create_index("ix_layer_changes_table_name_id", "layer_changes", ["table_name", "id"])
    op.execute(
        """
        CREATE FUNCTION gis_note_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO layer_changes (table_name) VALUES (TG_TABLE_NAME);
            RETURN NULL;
        END $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER gis_note_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
            f" ON {table} FOR EACH STATEMENT EXECUTE FUNCTION gis_note_change()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER gis_note_change ON {table}")
    op.execute("DROP FUNCTION gis_note_change()")
    op.drop_index("ix_layer_changes_table_name_id", table_name="layer_changes")
    op.drop_table("layer_changes")
