"""Exactly once per stream entry: a ledger of stored entries instead of a unique key per log.

PostgreSQL only (embedded SQLite has no stream). The worker stores a stream entry's logs and
its row in `stored_entries` in one transaction, and skips entries the ledger holds already, so
a redelivered entry adds nothing. Keeping one row per entry instead of a unique index entry
per log takes ~30 % off the cost of storing a log (docs/benchmarks.md). `ingest_key` stays on
every row, unindexed. An entry is known by its shard, its stream id and a digest of its
payload (were Redis ever to hand out an id again, after a failover to a replica whose clock is
behind, the new entry would not be taken for the old one). A ledger row is needed only while its
entry can still be delivered: the worker forgets rows of entries gone from their stream an
hour after they were stored (`BulkWriter.forget`).

The ledger starts with the entries of the last week whose logs are stored already, so that
entries committed but not yet acknowledged when the upgrade runs are not stored twice.
Stop the workers of the previous version before upgrading: they rely on the unique index this
migration drops. The table is locked against their inserts while the ledger is filled.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# An ingest key is `<shard>-<entry ms>-<entry seq>-<position>`.
UPGRADE = (
    """
    CREATE TABLE stored_entries (
        shard integer NOT NULL,
        entry_ms bigint NOT NULL,
        entry_seq bigint NOT NULL,
        digest bigint NOT NULL,
        stored_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (shard, entry_ms, entry_seq, digest)
    )
    """,
    "LOCK TABLE logs IN SHARE MODE",
    # The digest of an entry stored before is not known: -1 stands for "any payload".
    """
    INSERT INTO stored_entries (shard, entry_ms, entry_seq, digest)
    SELECT DISTINCT split_part(ingest_key, '-', 1)::integer,
           split_part(ingest_key, '-', 2)::bigint,
           split_part(ingest_key, '-', 3)::bigint,
           -1
    FROM logs WHERE ingest_key IS NOT NULL AND received_at > now() - interval '7 days'
    """,
    "DROP INDEX ix_logs_ingest_key",
)
DOWNGRADE = (
    "CREATE UNIQUE INDEX ix_logs_ingest_key ON logs (ingest_key, created_at)",
    "DROP TABLE stored_entries",
)


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for statement in UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for statement in DOWNGRADE:
            op.execute(statement)
