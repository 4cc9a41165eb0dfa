"""Idempotency-Key answers in the embedded store: a request's key remembers its fingerprint,
what its records were queued as, and the first answer.

SQLite only, as 0007: in the pipeline request keys are Redis hashes beside the streams. The
columns stay NULL for an Elasticsearch `_id`. `received_us` (epoch µs), `first_id` and
`id_count` are set in the group commit that stored the request's records; `answer_*` once
the route answered.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("fingerprint", "VARCHAR(32)"),
    ("received_us", "INTEGER"),
    ("first_id", "INTEGER"),
    ("id_count", "INTEGER"),
    ("answer_status", "INTEGER"),
    ("answer_headers", "TEXT"),
    ("answer_body", "BLOB"),
)


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        for name, kind in COLUMNS:
            op.execute(f"ALTER TABLE idempotency_keys ADD COLUMN {name} {kind}")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        for name, _ in reversed(COLUMNS):
            op.execute(f"ALTER TABLE idempotency_keys DROP COLUMN {name}")
