"""The schema as SQLAlchemy Core tables; migrations create it, queries are built on it."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

logs = Table(
    "logs",
    metadata,
    # On SQLite an INTEGER PRIMARY KEY is the rowid: no separate index, ids grow by one.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("device_id", String(128), nullable=False),
    Column("log_level", String(10), nullable=False),
    Column("message", Text(), nullable=False),
    Column("log_data", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # "<shard>-<stream entry id>-<position>" in Redis mode (the message id the client got),
    # NULL in embedded mode. On PostgreSQL the table is partitioned by day on created_at
    # (migration 0001); each stream entry is stored once by the `stored_entries` ledger
    # (migration 0003), so `ingest_key` is not indexed.
    Column("ingest_key", Text().with_variant(Text(collation="C"), "postgresql")),
    Index("ix_logs_device_created", "device_id", "created_at"),
    Index("ix_logs_level_created", "log_level", "created_at"),
    # PostgreSQL has (created_at, id) instead, as ix_logs_created_id (migration 0006), and a
    # word index on fleetlog_words(message); SQLite has the FTS5 table logs_fts.
    Index("ix_logs_created", "created_at"),
)

# Credentials: API keys are kept as the SHA-256 of the key (high-entropy, so no slow hash is
# needed), people's passwords as argon2 hashes. Revoked keys stay, so names are never reused.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("hint", String(16), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("device_prefix", String(50)),
    Column("rate", Float()),
    Column("burst", Integer()),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text(), nullable=False),
    # Bumped by a password change: tokens issued before it stop working.
    Column("token_version", Integer(), nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The largest id or counter an INTEGER column holds on every store (PostgreSQL's int4).
MAX_ID = 2**31 - 1

# One row per sign-in: the family of every token issued from it. Tokens carry the row's random
# id and its generation; a refresh moves `generation` on, so each refresh token works once, and
# presenting a used one again ends the family (`revoked_at`). A row outlives the last token
# issued from it, then goes at the next sign-in.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", Integer(), nullable=False),
    Column("generation", Integer(), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_sessions_user_id", "user_id"),
    Index("ix_sessions_expires_at", "expires_at"),
)

# Rollups (migration 0005), kept by the writers in the same transaction as the logs. `bucket` is
# the start of the minute of the logs' event time.
log_counts = Table(
    "log_counts",
    metadata,
    Column("device_id", String(128), nullable=False),
    Column("bucket", DateTime(timezone=True), nullable=False),
    Column("log_level", String(10), nullable=False),
    Column("count", BigInteger(), nullable=False),
    PrimaryKeyConstraint("device_id", "bucket", "log_level"),
    Index("ix_log_counts_bucket", "bucket", postgresql_using="brin"),
    sqlite_with_rowid=False,
)

# The same without the device: fleet-wide counts read one row per minute and level.
level_counts = Table(
    "level_counts",
    metadata,
    Column("bucket", DateTime(timezone=True), nullable=False),
    Column("log_level", String(10), nullable=False),
    Column("count", BigInteger(), nullable=False),
    PrimaryKeyConstraint("bucket", "log_level"),
    sqlite_with_rowid=False,
)

# Every device ever heard from, by receive time. On PostgreSQL `last_seen` moves only when it
# moves on by over a second (store/bulk.py).
devices = Table(
    "devices",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    sqlite_with_rowid=False,
)

# Idempotency keys of the embedded store (migration 0007; in Redis in the pipeline): a key's
# digest, the token of the request storing its record while pending (NULL once stored), and
# when it is forgotten (epoch seconds). A request's Idempotency-Key also keeps its fingerprint,
# what its records were queued as and its first answer (migration 0008).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(32), primary_key=True),
    Column("token", String(32)),
    Column("expires_at", Float(), nullable=False),
    Column("fingerprint", String(32)),
    Column("received_us", BigInteger()),
    Column("first_id", BigInteger()),
    Column("id_count", Integer()),
    Column("answer_status", Integer()),
    Column("answer_headers", Text()),
    Column("answer_body", LargeBinary()),
    Index("ix_idempotency_keys_expires_at", "expires_at"),
    sqlite_with_rowid=False,
)

# Retention rules (migration 0009): how many days logs of a level and/or a device prefix are
# kept; neither named is the default rule. At most one rule per (level, prefix), NULLs
# included (a unique index on their coalesced values).
retention_rules = Table(
    "retention_rules",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("log_level", String(10)),
    Column("device_prefix", String(128)),
    Column("days", Integer(), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
