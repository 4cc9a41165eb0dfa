"""Idempotency keys of the embedded store (an Elasticsearch `_id`, later `Idempotency-Key`).

SQLite only: in the pipeline the keys live in Redis beside the streams (keys.py), where the
request that claims them runs. One row per key digest; `token` names the request storing the
key's record while it is pending and is NULL once stored; `expires_at` (epoch seconds) is when
the key is forgotten, found through its index by the purge each claim runs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_UPGRADE = (
    """
    CREATE TABLE idempotency_keys (
        key VARCHAR(32) NOT NULL PRIMARY KEY,
        token VARCHAR(32),
        expires_at FLOAT NOT NULL
    ) WITHOUT ROWID
    """,
    "CREATE INDEX ix_idempotency_keys_expires_at ON idempotency_keys (expires_at)",
)
SQLITE_DOWNGRADE = (
    "DROP INDEX ix_idempotency_keys_expires_at",
    "DROP TABLE idempotency_keys",
)


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        for statement in SQLITE_UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        for statement in SQLITE_DOWNGRADE:
            op.execute(statement)
