"""sync_changes: the change log of grids, households, contacts and visits for mobile delta sync

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 03:40:00

Statement-level triggers with transition tables (one INSERT per statement, not per row, so bulk
imports stay fast). Rows already present are logged once at upgrade, so a first pull from an
existing database gets everything.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# entity → (table, SELECT of (entity_id, county_code, village_id, grid_id) from a row set "r")
SOURCES = {
    "grid": ("grids", "SELECT r.id, r.county_code, r.village_id, r.id FROM {rows} r"),
    "household": (
        "households",
        "SELECT r.id, r.county_code, r.village_id, r.grid_id FROM {rows} r",
    ),
    # Contacts are seen through their household's grid.
    "contact": (
        "contacts",
        "SELECT r.id, r.county_code, r.village_id, h.grid_id FROM {rows} r "
        "LEFT JOIN households h ON h.id = r.household_id",
    ),
    "visit": ("visits", "SELECT r.id, r.county_code, r.village_id, r.grid_id FROM {rows} r"),
}
COLUMNS = "INSERT INTO sync_changes (entity, entity_id, county_code, village_id, grid_id) "


def _function(entity: str, source: str) -> str:
    new = source.format(rows="new_rows")
    old = source.format(rows="old_rows")
    # An update that moves a row to another village or grid is logged under the old place too.
    moved = (
        f"SELECT o.* FROM ({old}) AS o(id, county_code, village_id, grid_id) "
        f"JOIN ({new}) AS n(id, county_code, village_id, grid_id) ON n.id = o.id "
        "WHERE (o.village_id, o.grid_id) IS DISTINCT FROM (n.village_id, n.grid_id)"
    )
    return f"""
CREATE FUNCTION sync_log_{entity}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {COLUMNS} SELECT '{entity}', s.* FROM ({new}) AS s;
    ELSIF TG_OP = 'UPDATE' THEN
        {COLUMNS} SELECT '{entity}', s.* FROM ({new}) AS s;
        {COLUMNS} SELECT '{entity}', s.* FROM ({moved}) AS s;
    ELSE
        {COLUMNS} SELECT '{entity}', s.* FROM ({old}) AS s;
    END IF;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "sync_changes",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "xid",
            sa.BigInteger(),
            server_default=sa.text("(pg_current_xact_id()::text)::bigint"),
            nullable=False,
        ),
        sa.Column("entity", sa.String(length=10), nullable=False),
        sa.Column("entity_id", sa.BigInteger(), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("village_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_sync_changes")),
    )
    op.create_index("ix_sync_changes_xid_seq", "sync_changes", ["xid", "seq"])
    op.create_index("ix_sync_changes_village_id_xid", "sync_changes", ["village_id", "xid"])
    op.create_index("ix_sync_changes_grid_id_xid", "sync_changes", ["grid_id", "xid"])
    for entity, (table, source) in SOURCES.items():
        op.execute(_function(entity, source))
        for event, rows in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        ):
            op.execute(
                f"CREATE TRIGGER sync_log_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {rows} FOR EACH STATEMENT EXECUTE FUNCTION sync_log_{entity}()"
            )
        op.execute(f"{COLUMNS} SELECT '{entity}', s.* FROM ({source.format(rows=table)}) AS s")


def downgrade() -> None:
    for entity, (table, _) in SOURCES.items():
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER sync_log_{event} ON {table}")
        op.execute(f"DROP FUNCTION sync_log_{entity}()")
    op.drop_table("sync_changes")
