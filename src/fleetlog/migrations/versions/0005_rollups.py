"""Rollups: counts of logs per minute, kept beside the logs, and the devices heard from.

* `log_counts`: per minute of event time × device × level. Its key leads with the device, for
  the counts of one device or a prefix; a BRIN (PostgreSQL) or B-tree (SQLite) index on
  `bucket` serves the fleet-wide reads by device over a window.
* `level_counts`: per minute × level, without the device, so that fleet-wide counts over a
  day read ~7,200 rows, not one per device-minute.
* `devices`: each device's first and last receive time. `last_seen` has no index, so that
  updating it stays cheap: the devices heard from last are found by sorting them all.

A minute's `bucket` is the start of the minute of `created_at` (UTC). The writers keep the
three in the same transaction as the logs (store/sqlite_writer.py, store/bulk.py). The upgrade
fills them from the logs stored so far; on PostgreSQL the logs are locked against inserts
meanwhile. Stop the workers and servers of the previous version first: they would store logs
without counting them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRES_MINUTE = "date_bin('1 minute', created_at, timestamptz '1970-01-01 00:00:00+00')"
# SQLite keeps times as text, 'YYYY-MM-DD HH:MM:SS.ffffff': its minute starts with 17 of them.
SQLITE_MINUTE = "substr(created_at, 1, 17) || '00.000000'"
BACKFILL = (
    """
    INSERT INTO log_counts (device_id, bucket, log_level, count)
    SELECT device_id, {minute}, log_level, count(*) FROM logs GROUP BY 1, 2, 3
    """,
    """
    INSERT INTO level_counts (bucket, log_level, count)
    SELECT bucket, log_level, sum(count) FROM log_counts GROUP BY 1, 2
    """,
    """
    INSERT INTO devices (device_id, first_seen, last_seen)
    SELECT device_id, min(received_at), max(received_at) FROM logs GROUP BY 1
    """,
)


def upgrade() -> None:
    postgres = op.get_context().dialect.name == "postgresql"
    # WITHOUT ROWID on SQLite: the key is the table, no second B-tree beside it.
    options = {} if postgres else {"sqlite_with_rowid": False}
    op.create_table(
        "log_counts",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("log_level", sa.String(10), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "bucket", "log_level"),
        **options,
    )
    op.create_index("ix_log_counts_bucket", "log_counts", ["bucket"], postgresql_using="brin")
    op.create_table(
        "level_counts",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("log_level", sa.String(10), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "log_level"),
        **options,
    )
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(128), primary_key=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        **options,
    )
    if postgres:
        # Small tables whose rows every batch updates: room on each page keeps the updates
        # HOT (no new index entries).
        op.execute("ALTER TABLE level_counts SET (fillfactor = 50)")
        op.execute("ALTER TABLE devices SET (fillfactor = 50)")
        op.execute("LOCK TABLE logs IN SHARE MODE")
    minute = POSTGRES_MINUTE if postgres else SQLITE_MINUTE
    for statement in BACKFILL:
        op.execute(statement.format(minute=minute))


def downgrade() -> None:
    op.drop_table("devices")
    op.drop_table("level_counts")
    op.drop_table("log_counts")
