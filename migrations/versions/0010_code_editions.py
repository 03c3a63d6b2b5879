"""official code editions: admin_units.code_edition and successor_id (撤并), division_codes
(the imported 统计用区划代码 lists per edition), and import jobs of kind 'units' (code lists)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 18:30:00

Units may now exist before their boundary (admin_units.geom was already nullable).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_import_jobs_kind"), "import_jobs", type_="check")
    op.create_check_constraint(
        op.f("ck_import_jobs_kind"), "import_jobs", "kind IN ('boundaries', 'households', 'units')"
    )
    op.add_column("admin_units", sa.Column("code_edition", sa.String(length=10), nullable=True))
    op.add_column("admin_units", sa.Column("successor_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_admin_units_successor_id_admin_units"),
        "admin_units",
        "admin_units",
        ["successor_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_table(
        "division_codes",
        sa.Column("edition", sa.String(length=10), nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("urban_rural_code", sa.String(length=3), nullable=True),
        sa.Column(
            "imported_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "level IN ('county', 'township', 'village')", name=op.f("ck_division_codes_level")
        ),
        sa.CheckConstraint(
            "left(code, 6) = county_code", name=op.f("ck_division_codes_county_prefix")
        ),
        sa.PrimaryKeyConstraint("edition", "code", name=op.f("pk_division_codes")),
    )
    op.create_index(
        "ix_division_codes_county_code_edition",
        "division_codes",
        ["county_code", "edition"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_division_codes_county_code_edition", table_name="division_codes")
    op.drop_table("division_codes")
    op.drop_constraint(
        op.f("fk_admin_units_successor_id_admin_units"), "admin_units", type_="foreignkey"
    )
    op.drop_column("admin_units", "successor_id")
    op.drop_column("admin_units", "code_edition")
    op.execute("DELETE FROM import_jobs WHERE kind = 'units'")
    op.drop_constraint(op.f("ck_import_jobs_kind"), "import_jobs", type_="check")
    op.create_check_constraint(
        op.f("ck_import_jobs_kind"), "import_jobs", "kind IN ('boundaries', 'households')"
    )
