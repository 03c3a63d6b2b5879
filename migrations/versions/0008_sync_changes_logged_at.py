"""sync_changes.logged_at (when a change was logged, so old tombstones can be pruned) and
sync_horizon.seq (the horizon is the (xid, seq) of the newest pruned tombstone)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 07:00:00

A constant default (now() is evaluated once for ALTER TABLE): no table rewrite; rows already
logged count as logged at the upgrade.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "sync_changes",
        sa.Column(
            "logged_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.add_column(
        "sync_horizon",
        sa.Column("seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("sync_horizon", "seq")
    op.drop_column("sync_changes", "logged_at")
