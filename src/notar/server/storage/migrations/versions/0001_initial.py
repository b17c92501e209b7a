"""Initial schema: tuf_files, changefeed, server_keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Follows notary-server's SQL schema (``migrations/server/postgresql``): ``tuf_files`` with UNIQUE (gun, role,
version) and ``changefeed``; plus ``server_keys`` for the timestamp/snapshot keys notar holds itself (notary
keeps those in notary-signer). Differences from notary: no gorm ``deleted_at`` column (deletes are hard),
the changefeed category is a CHECK constraint instead of a foreign key to a ``change_category`` table, and
deletion rows carry a NULL sha256.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created_at(name: str = "created_at") -> sa.Column[object]:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "tuf_files",
        sa.Column("id", sa.Integer(), nullable=False),
        _created_at(),
        _created_at("updated_at"),
        sa.Column("gun", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.CHAR(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tuf_files")),
        sa.UniqueConstraint("gun", "role", "version", name=op.f("uq_tuf_files_gun_role_version")),
    )
    op.create_index(
        op.f("ix_tuf_files_gun_role_sha256"), "tuf_files", ["gun", "role", "sha256"], unique=False
    )

    op.create_table(
        "changefeed",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _created_at(),
        sa.Column("gun", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.CHAR(length=64), nullable=True),
        sa.Column("category", sa.String(length=20), server_default=sa.text("'update'"), nullable=False),
        sa.CheckConstraint("category IN ('update', 'deletion')", name=op.f("ck_changefeed_category")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_changefeed")),
        sqlite_autoincrement=True,  # IDs are never reused: changefeed readers page by ID
    )
    op.create_index(op.f("ix_changefeed_gun_id"), "changefeed", ["gun", "id"], unique=False)

    op.create_table(
        "server_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        _created_at(),
        sa.Column("gun", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=255), nullable=False),
        sa.Column("key_id", sa.String(length=255), nullable=False),
        sa.Column("algorithm", sa.String(length=50), nullable=False),
        sa.Column("public", sa.LargeBinary(), nullable=False),
        sa.Column("private", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_keys")),
        sa.UniqueConstraint("gun", "role", "key_id", name=op.f("uq_server_keys_gun_role_key_id")),
    )


def downgrade() -> None:
    op.drop_table("server_keys")
    op.drop_index(op.f("ix_changefeed_gun_id"), table_name="changefeed")
    op.drop_table("changefeed")
    op.drop_index(op.f("ix_tuf_files_gun_role_sha256"), table_name="tuf_files")
    op.drop_table("tuf_files")
