"""visits and attachments: 走访记录 uploaded from the phone, photos stored by content hash

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 03:30:00

A plain table for now (indexes for per-household/per-person histories and the verification
checks); monthly partitions by visited_at are the planned next step (see gridgov/visits/models.py).
"""

from collections.abc import Sequence

import geoalchemy2  # noqa: F401
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

METHODS = ("door", "phone", "video", "meeting", "other")
REVIEW_STATES = ("clean", "pending", "accepted", "rejected")
MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.create_table(
        "visits",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("client_uuid", sa.Uuid(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("village_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("visited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("notes", sa.String(length=2000), nullable=True),
        sa.Column(
            "needs", postgresql.ARRAY(sa.String(length=200)), server_default="{}", nullable=False
        ),
        sa.Column(
            "attachment_ids", postgresql.ARRAY(sa.Uuid()), server_default="{}", nullable=False
        ),
        sa.Column(
            "flags", postgresql.ARRAY(sa.String(length=30)), server_default="{}", nullable=False
        ),
        sa.Column("review_status", sa.String(length=10), server_default="clean", nullable=False),
        sa.Column("reviewed_by", sa.BigInteger(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_reason", sa.String(length=200), nullable=True),
        sa.CheckConstraint(_in("method", METHODS), name=op.f("ck_visits_method")),
        sa.CheckConstraint(
            _in("review_status", REVIEW_STATES), name=op.f("ck_visits_review_status")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_visits_grid_id_grids")),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_visits_household_id_households")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["party_members.id"], name=op.f("fk_visits_member_id_party_members")
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["users.id"], name=op.f("fk_visits_reviewed_by_users")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_visits_user_id_users")),
        sa.ForeignKeyConstraint(
            ["village_id"], ["admin_units.id"], name=op.f("fk_visits_village_id_admin_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visits")),
    )
    op.create_index("uq_visits_client_uuid", "visits", ["client_uuid"], unique=True)
    for name, columns in [
        ("ix_visits_household_id_visited_at", ["household_id", "visited_at"]),
        ("ix_visits_user_id_visited_at", ["user_id", "visited_at"]),
        ("ix_visits_member_id_visited_at", ["member_id", "visited_at"]),
        ("ix_visits_village_id_visited_at", ["village_id", "visited_at"]),
        ("ix_visits_grid_id_visited_at", ["grid_id", "visited_at"]),
        ("ix_visits_county_code", ["county_code"]),
    ]:
        op.create_index(name, "visits", columns, unique=False)
    op.create_index(
        "ix_visits_attachment_ids", "visits", ["attachment_ids"], postgresql_using="gin"
    )
    op.create_index(
        "ix_visits_pending",
        "visits",
        ["village_id"],
        postgresql_where=sa.text("review_status = 'pending'"),
    )

    op.create_table(
        "attachments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=20), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(_in("media_type", MEDIA_TYPES), name=op.f("ck_attachments_media_type")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_attachments_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    op.create_index("ix_attachments_sha256", "attachments", ["sha256"], unique=False)
    op.create_index("ix_attachments_user_id", "attachments", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("attachments")
    op.drop_table("visits")
