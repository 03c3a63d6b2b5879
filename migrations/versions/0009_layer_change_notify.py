"""layer changes also NOTIFY gridgov_layer_changes (payload: the table), so that every server
process keeps the layers' data versions in memory instead of asking per tile

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 07:35:00

NOTIFY is transactional: it is delivered when the writing transaction commits, and identical
notifications of one transaction are folded into one.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE OR REPLACE FUNCTION gis_note_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO layer_changes (table_name) VALUES (TG_TABLE_NAME);{notify}
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.execute(
        FUNCTION.format(notify="\n    PERFORM pg_notify('gridgov_layer_changes', TG_TABLE_NAME);")
    )


def downgrade() -> None:
    op.execute(FUNCTION.format(notify=""))
