"""Retention rules: how long logs of a level and/or a device prefix are kept.

A rule names a level, a device prefix, both, or neither (the default rule); `days` is how
many days of event time its logs are kept. The unique index on the coalesced pair allows one
rule per combination, NULLs included, on both stores. On SQLite the database is also switched
to incremental auto-vacuum (store/migrate.py), so that the pages retention frees go back to the
file system a step at a time.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retention_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("log_level", sa.String(10)),
        sa.Column("device_prefix", sa.String(128)),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_retention_rules_match",
        "retention_rules",
        [sa.text("coalesce(log_level, '')"), sa.text("coalesce(device_prefix, '')")],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_retention_rules_match", table_name="retention_rules")
    op.drop_table("retention_rules")
