"""hierarchy, people, users, audit

Revision ID: 0001
Revises:
Create Date: 2026-11-25 02:11:39.341989
"""

from collections.abc import Sequence

import geoalchemy2  # noqa: F401
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUDIT_GUARD = """
CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$
"""


def upgrade() -> None:
    # Present already where the bootstrap ran as superuser; IF NOT EXISTS then needs no privilege.
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "admin_units",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column(
            "geom_3857",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=3857,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            sa.Computed("ST_Transform(geom, 3857)", persisted=True),
            nullable=True,
        ),
        sa.Column("valid_from", sa.Date(), server_default=sa.text("CURRENT_DATE"), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
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
        sa.CheckConstraint(
            "(level = 'county') = (parent_id IS NULL)", name=op.f("ck_admin_units_parent_by_level")
        ),
        sa.CheckConstraint(
            "code ~ '^[0-9]+$' AND length(code) = CASE level WHEN 'county' THEN 6 WHEN 'township' THEN 9 ELSE 12 END",
            name=op.f("ck_admin_units_code_format"),
        ),
        sa.CheckConstraint(
            "level IN ('county', 'township', 'village')", name=op.f("ck_admin_units_level")
        ),
        sa.CheckConstraint(
            "left(code, 6) = county_code", name=op.f("ck_admin_units_county_prefix")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["admin_units.id"],
            name=op.f("fk_admin_units_parent_id_admin_units"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_units")),
    )
    op.create_index(
        "ix_admin_units_county_code_level", "admin_units", ["county_code", "level"], unique=False
    )
    op.create_index(
        "ix_admin_units_geom", "admin_units", ["geom"], unique=False, postgresql_using="gist"
    )
    op.create_index(
        "ix_admin_units_geom_3857",
        "admin_units",
        ["geom_3857"],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index("ix_admin_units_parent_id", "admin_units", ["parent_id"], unique=False)
    op.create_index(
        "uq_admin_units_current_code",
        "admin_units",
        ["code"],
        unique=True,
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=True),
        sa.Column("county_code", sa.String(length=6), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_county_code_at", "audit_log", ["county_code", "at"], unique=False)
    op.create_index(
        "ix_audit_log_entity_entity_id", "audit_log", ["entity", "entity_id"], unique=False
    )
    op.create_index("ix_audit_log_user_id_at", "audit_log", ["user_id", "at"], unique=False)
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    op.create_index("ix_login_attempts_client_at", "login_attempts", ["client", "at"], unique=False)
    op.create_index(
        "ix_login_attempts_username_at", "login_attempts", ["username", "at"], unique=False
    )
    op.create_table(
        "grids",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=15), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("village_id", sa.BigInteger(), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("chief_member_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
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
                geometry_type="MULTIPOLYGON",
                srid=3857,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            sa.Computed("ST_Transform(geom, 3857)", persisted=True),
            nullable=True,
        ),
        sa.Column("valid_from", sa.Date(), server_default=sa.text("CURRENT_DATE"), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
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
        sa.CheckConstraint("code ~ '^[0-9]{15}$'", name=op.f("ck_grids_code_format")),
        sa.CheckConstraint(
            "kind = CASE WHEN substr(code, 13, 3)::int >= 900 THEN 'dedicated' ELSE 'general' END AND substr(code, 13, 3) <> '000'",
            name=op.f("ck_grids_kind_by_serial"),
        ),
        sa.CheckConstraint("left(code, 6) = county_code", name=op.f("ck_grids_county_prefix")),
        sa.ForeignKeyConstraint(
            ["village_id"], ["admin_units.id"], name=op.f("fk_grids_village_id_admin_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grids")),
    )
    op.create_index("ix_grids_county_code", "grids", ["county_code"], unique=False)
    op.create_index("ix_grids_geom", "grids", ["geom"], unique=False, postgresql_using="gist")
    op.create_index(
        "ix_grids_geom_3857", "grids", ["geom_3857"], unique=False, postgresql_using="gist"
    )
    op.create_index("ix_grids_village_id", "grids", ["village_id"], unique=False)
    op.create_index(
        "uq_grids_current_code",
        "grids",
        ["code"],
        unique=True,
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_table(
        "party_orgs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("secretary_name", sa.String(length=50), nullable=True),
        sa.Column("secretary_phone", sa.String(length=20), nullable=True),
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
        sa.CheckConstraint(
            "kind IN ('committee', 'general_branch', 'branch')", name=op.f("ck_party_orgs_kind")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["party_orgs.id"], name=op.f("fk_party_orgs_parent_id_party_orgs")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["admin_units.id"], name=op.f("fk_party_orgs_unit_id_admin_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_party_orgs")),
    )
    op.create_index("ix_party_orgs_county_code", "party_orgs", ["county_code"], unique=False)
    op.create_index("ix_party_orgs_unit_id", "party_orgs", ["unit_id"], unique=False)
    op.create_table(
        "households",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("village_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("head_name", sa.String(length=50), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("id_number", sa.String(length=18), nullable=True),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("hamlet", sa.String(length=50), nullable=True),
        sa.Column("size", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("tags", sa.ARRAY(sa.String(length=20)), server_default="{}", nullable=False),
        sa.Column("flags", sa.ARRAY(sa.String(length=30)), server_default="{}", nullable=False),
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
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_reason", sa.String(length=200), nullable=True),
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
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_households_grid_id_grids")
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["admin_units.id"], name=op.f("fk_households_village_id_admin_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_households")),
    )
    op.create_index("ix_households_county_code", "households", ["county_code"], unique=False)
    op.create_index(
        "ix_households_geom", "households", ["geom"], unique=False, postgresql_using="gist"
    )
    op.create_index(
        "ix_households_geom_3857",
        "households",
        ["geom_3857"],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index("ix_households_grid_id", "households", ["grid_id"], unique=False)
    op.create_index(
        "ix_households_tags", "households", ["tags"], unique=False, postgresql_using="gin"
    )
    op.create_index("ix_households_village_id", "households", ["village_id"], unique=False)
    op.create_index(
        "uq_households_county_external_id",
        "households",
        ["county_code", "external_id"],
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.create_table(
        "party_members",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("party_org_id", sa.BigInteger(), nullable=False),
        sa.Column("village_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("gender", sa.String(length=1), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("id_number", sa.String(length=18), nullable=True),
        sa.Column("status", sa.String(length=15), server_default="full", nullable=False),
        sa.Column("flowing", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("is_hub", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("capacity", sa.SmallInteger(), nullable=True),
        sa.Column("joined_year", sa.SmallInteger(), nullable=True),
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
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_reason", sa.String(length=200), nullable=True),
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
        sa.CheckConstraint("gender IN ('M', 'F')", name=op.f("ck_party_members_gender")),
        sa.CheckConstraint(
            "status IN ('full', 'probationary')", name=op.f("ck_party_members_status")
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_party_members_grid_id_grids")
        ),
        sa.ForeignKeyConstraint(
            ["party_org_id"],
            ["party_orgs.id"],
            name=op.f("fk_party_members_party_org_id_party_orgs"),
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["admin_units.id"], name=op.f("fk_party_members_village_id_admin_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_party_members")),
    )
    op.create_index("ix_party_members_county_code", "party_members", ["county_code"], unique=False)
    op.create_index(
        "ix_party_members_geom", "party_members", ["geom"], unique=False, postgresql_using="gist"
    )
    op.create_index("ix_party_members_grid_id", "party_members", ["grid_id"], unique=False)
    op.create_index(
        "ix_party_members_party_org_id", "party_members", ["party_org_id"], unique=False
    )
    op.create_index("ix_party_members_village_id", "party_members", ["village_id"], unique=False)
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=50), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=True),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.Column("member_id", sa.BigInteger(), nullable=True),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(role = 'grid_member') = (grid_id IS NOT NULL)", name=op.f("ck_users_grid_role")
        ),
        sa.CheckConstraint(
            "role IN ('grid_member', 'village_admin', 'township_admin', 'county_admin', 'gis_editor', 'auditor')",
            name=op.f("ck_users_role"),
        ),
        sa.CheckConstraint(
            "(unit_id IS NULL) <> (grid_id IS NULL)", name=op.f("ck_users_bound_once")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_users_grid_id_grids")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["party_members.id"], name=op.f("fk_users_member_id_party_members")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["admin_units.id"], name=op.f("fk_users_unit_id_admin_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_index("ix_users_county_code", "users", ["county_code"], unique=False)
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column(
            "options", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("processed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=True),
        sa.Column("report", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('boundaries', 'households')", name=op.f("ck_import_jobs_kind")
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'validated')",
            name=op.f("ck_import_jobs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_import_jobs_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_jobs")),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("family", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_refresh_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
    )
    op.create_index("ix_refresh_tokens_family", "refresh_tokens", ["family"], unique=False)
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"], unique=False)
    # grids <-> party_members reference each other; the grid chief's key comes last.
    op.create_foreign_key(
        op.f("fk_grids_chief_member_id_party_members"),
        "grids",
        "party_members",
        ["chief_member_id"],
        ["id"],
        ondelete="SET NULL",
    )
    # The audit log is append-only: refuse UPDATE, DELETE and TRUNCATE at the database.
    op.execute(AUDIT_GUARD)
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_grids_chief_member_id_party_members"), "grids", type_="foreignkey")
    op.drop_index("ix_refresh_tokens_user_id", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_family", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_table("import_jobs")
    op.drop_index("ix_users_county_code", table_name="users")
    op.drop_table("users")
    op.drop_index("ix_party_members_village_id", table_name="party_members")
    op.drop_index("ix_party_members_party_org_id", table_name="party_members")
    op.drop_index("ix_party_members_grid_id", table_name="party_members")
    op.drop_index("ix_party_members_geom", table_name="party_members", postgresql_using="gist")
    op.drop_index("ix_party_members_county_code", table_name="party_members")
    op.drop_table("party_members")
    op.drop_index(
        "uq_households_county_external_id",
        table_name="households",
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.drop_index("ix_households_village_id", table_name="households")
    op.drop_index("ix_households_tags", table_name="households", postgresql_using="gin")
    op.drop_index("ix_households_grid_id", table_name="households")
    op.drop_index("ix_households_geom_3857", table_name="households", postgresql_using="gist")
    op.drop_index("ix_households_geom", table_name="households", postgresql_using="gist")
    op.drop_index("ix_households_county_code", table_name="households")
    op.drop_table("households")
    op.drop_index("ix_party_orgs_unit_id", table_name="party_orgs")
    op.drop_index("ix_party_orgs_county_code", table_name="party_orgs")
    op.drop_table("party_orgs")
    op.drop_index(
        "uq_grids_current_code", table_name="grids", postgresql_where=sa.text("valid_to IS NULL")
    )
    op.drop_index("ix_grids_village_id", table_name="grids")
    op.drop_index("ix_grids_geom_3857", table_name="grids", postgresql_using="gist")
    op.drop_index("ix_grids_geom", table_name="grids", postgresql_using="gist")
    op.drop_index("ix_grids_county_code", table_name="grids")
    op.drop_table("grids")
    op.drop_index("ix_login_attempts_username_at", table_name="login_attempts")
    op.drop_index("ix_login_attempts_client_at", table_name="login_attempts")
    op.drop_table("login_attempts")
    op.drop_index("ix_audit_log_user_id_at", table_name="audit_log")
    op.drop_index("ix_audit_log_entity_entity_id", table_name="audit_log")
    op.drop_index("ix_audit_log_county_code_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.execute("DROP FUNCTION IF EXISTS audit_log_refuse_change()")
    op.drop_index(
        "uq_admin_units_current_code",
        table_name="admin_units",
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.drop_index("ix_admin_units_parent_id", table_name="admin_units")
    op.drop_index("ix_admin_units_geom_3857", table_name="admin_units", postgresql_using="gist")
    op.drop_index("ix_admin_units_geom", table_name="admin_units", postgresql_using="gist")
    op.drop_index("ix_admin_units_county_code_level", table_name="admin_units")
    op.drop_table("admin_units")
