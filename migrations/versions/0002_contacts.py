"""contacts: 党员联系户 assignments with history

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 03:00:00

One active primary contact per household is enforced here, twice over: a partial unique index
(the check two racing transactions cannot both pass) and an exclusion constraint that keeps the
primary periods of a household from overlapping in time (needs btree_gist for ``=`` on bigint in a
GiST index; a trusted extension, so the database owner may create it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

END_REASONS = (
    "manual",
    "replaced",
    "rebalance",
    "invalid",
    "member_left",
    "member_moved",
    "member_died",
    "household_split",
    "household_moved",
    "household_removed",
)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table(
        "contacts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("village_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("valid_from", sa.Date(), server_default=sa.text("CURRENT_DATE"), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("source", sa.String(length=10), server_default="manual", nullable=False),
        sa.Column("batch_id", sa.UUID(), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("ended_by", sa.BigInteger(), nullable=True),
        sa.Column("ended_reason", sa.String(length=20), nullable=True),
        sa.Column("ended_note", sa.String(length=200), nullable=True),
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
        postgresql.ExcludeConstraint(
            (sa.column("household_id"), "="),
            (sa.text("daterange(valid_from, valid_to)"), "&&"),
            where=sa.text("role = 'primary'"),
            using="gist",
            name="ex_contacts_primary_overlap",
        ),
        sa.CheckConstraint(
            "ended_reason IS NULL OR ended_reason IN ("
            + ", ".join(f"'{r}'" for r in END_REASONS)
            + ")",
            name=op.f("ck_contacts_ended_reason"),
        ),
        sa.CheckConstraint("role IN ('primary', 'secondary')", name=op.f("ck_contacts_role")),
        sa.CheckConstraint("source IN ('manual', 'auto')", name=op.f("ck_contacts_source")),
        sa.CheckConstraint(
            "(valid_to IS NULL) = (ended_reason IS NULL)",
            name=op.f("ck_contacts_ended_with_reason"),
        ),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to >= valid_from", name=op.f("ck_contacts_valid_range")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_contacts_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["ended_by"], ["users.id"], name=op.f("fk_contacts_ended_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_contacts_household_id_households")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["party_members.id"], name=op.f("fk_contacts_member_id_party_members")
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["admin_units.id"], name=op.f("fk_contacts_village_id_admin_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
    )
    op.create_index(
        "ix_contacts_batch_id",
        "contacts",
        ["batch_id"],
        unique=False,
        postgresql_where=sa.text("batch_id IS NOT NULL"),
    )
    op.create_index("ix_contacts_county_code", "contacts", ["county_code"], unique=False)
    op.create_index(
        "ix_contacts_household_id_valid_from",
        "contacts",
        ["household_id", "valid_from"],
        unique=False,
    )
    op.create_index(
        "ix_contacts_member_id_valid_from", "contacts", ["member_id", "valid_from"], unique=False
    )
    op.create_index(
        "ix_contacts_village_id_active",
        "contacts",
        ["village_id"],
        unique=False,
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_index(
        "uq_contacts_active_member_household",
        "contacts",
        ["member_id", "household_id"],
        unique=True,
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_index(
        "uq_contacts_active_primary",
        "contacts",
        ["household_id"],
        unique=True,
        postgresql_where=sa.text("role = 'primary' AND valid_to IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("contacts")
    # btree_gist stays: other objects may use it, and it holds no data.
