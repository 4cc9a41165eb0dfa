"""The word index of messages, and an index for every log newest first.

PostgreSQL: `fleetlog_words(message)` is the tsvector of the message's words as
`search/plan.words` finds them (runs of letters and digits, lowercased: `regexp_replace`
turns everything else into spaces, so the text parser finds nothing but those runs), under a
GIN index; queries use the same function, so they use the index. Letters other than ASCII are
found and lowercased under the "C.utf8" collation where the server has it (Debian's and the
official images do), else under the database's own. `(created_at, id)` replaces the BRIN
index: a search for the newest matches walks it backwards and stops at its page.

SQLite: an FTS5 table over `logs.message` (external content, `unicode61` keeping diacritics),
kept by triggers; `created_at` is indexed already (with the rowid, so in `(created_at, id)`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PL/pgSQL, so that the planner neither inlines it nor takes it for cheap: with its true cost
# (COST, in units of cpu_operator_cost) it walks (created_at, id) with this as a filter only
# when the words are common, and asks the GIN index otherwise. An inlined SQL function looks
# a hundred times cheaper, and a search for a rare word over all days read every message.
WORDS_FUNCTION = """
CREATE FUNCTION fleetlog_words(message text) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 1000
AS $$ BEGIN
    RETURN to_tsvector('simple'::regconfig,
                       regexp_replace(lower(message{collate}), '[^[:alnum:]]+', ' ', 'g'));
END $$
"""
POSTGRES_UPGRADE = (
    "CREATE INDEX ix_logs_words ON logs USING gin (fleetlog_words(message))",
    "CREATE INDEX ix_logs_created_id ON logs (created_at, id)",
    "DROP INDEX ix_logs_created",
)
POSTGRES_DOWNGRADE = (
    "CREATE INDEX ix_logs_created ON logs USING brin (created_at)",
    "DROP INDEX ix_logs_created_id",
    "DROP INDEX ix_logs_words",
    "DROP FUNCTION fleetlog_words(text)",
)
SQLITE_UPGRADE = (
    """
    CREATE VIRTUAL TABLE logs_fts USING fts5(
        message, content='logs', content_rowid='id', tokenize='unicode61 remove_diacritics 0'
    )
    """,
    """
    CREATE TRIGGER logs_fts_insert AFTER INSERT ON logs BEGIN
        INSERT INTO logs_fts (rowid, message) VALUES (new.id, new.message);
    END
    """,
    """
    CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
        INSERT INTO logs_fts (logs_fts, rowid, message) VALUES ('delete', old.id, old.message);
    END
    """,
    """
    CREATE TRIGGER logs_fts_update AFTER UPDATE OF message ON logs BEGIN
        INSERT INTO logs_fts (logs_fts, rowid, message) VALUES ('delete', old.id, old.message);
        INSERT INTO logs_fts (rowid, message) VALUES (new.id, new.message);
    END
    """,
    "INSERT INTO logs_fts (logs_fts) VALUES ('rebuild')",
)
SQLITE_DOWNGRADE = (
    "DROP TRIGGER logs_fts_update",
    "DROP TRIGGER logs_fts_delete",
    "DROP TRIGGER logs_fts_insert",
    "DROP TABLE logs_fts",
)


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        for statement in SQLITE_UPGRADE:
            op.execute(statement)
        return
    has_utf8 = op.get_bind().exec_driver_sql(
        "SELECT count(*) FROM pg_collation WHERE collname = 'C.utf8'"
    )
    collate = ' COLLATE "C.utf8"' if has_utf8.scalar() else ""
    op.execute(WORDS_FUNCTION.format(collate=collate))
    for statement in POSTGRES_UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    statements: tuple[str, ...] = POSTGRES_DOWNGRADE
    if op.get_context().dialect.name != "postgresql":
        statements = SQLITE_DOWNGRADE
    for statement in statements:
        op.execute(statement)
