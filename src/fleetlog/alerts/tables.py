"""The alert tables (migration 0010) as SQLAlchemy Core tables, on the store's metadata."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from fleetlog.store.tables import metadata

TIME = DateTime(timezone=True)
ID = BigInteger().with_variant(Integer(), "sqlite")

alert_targets = Table(
    "alert_targets",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("url", Text(), nullable=False),
    Column("format", String(16), nullable=False),
    Column("secret", String(64), nullable=False),
    Column("created_at", TIME, nullable=False),
)

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("query", Text(), nullable=False),
    Column("window_s", Integer(), nullable=False),
    Column("comparison", String(2)),
    Column("threshold", BigInteger()),
    Column("group_by", String(16)),
    Column("for_s", Integer(), nullable=False),
    Column("summary", Text()),
    Column("created_at", TIME, nullable=False),
    Column("updated_at", TIME, nullable=False),
)

alert_rule_targets = Table(
    "alert_rule_targets",
    metadata,
    Column("rule_id", Integer(), nullable=False),
    Column("target_id", Integer(), nullable=False),
    PrimaryKeyConstraint("rule_id", "target_id"),
)

alert_states = Table(
    "alert_states",
    metadata,
    Column("rule_id", Integer(), nullable=False),
    Column("group_key", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("value", Float(), nullable=False),
    Column("active_since", TIME),
    Column("fired_at", TIME),
    Column("resolved_at", TIME),
    Column("evaluated_at", TIME, nullable=False),
    PrimaryKeyConstraint("rule_id", "group_key"),
)

alert_notifications = Table(
    "alert_notifications",
    metadata,
    Column("id", ID, primary_key=True),
    Column("key", String(32), nullable=False, unique=True),
    Column("rule_id", Integer(), nullable=False),
    Column("rule_name", String(64), nullable=False),
    Column("group_key", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("value", Float(), nullable=False),
    Column("labels", JSON(), nullable=False),
    Column("annotations", JSON(), nullable=False),
    Column("starts_at", TIME, nullable=False),
    Column("ends_at", TIME),
    Column("created_at", TIME, nullable=False),
    Column("fence", BigInteger(), nullable=False),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("notification_id", BigInteger(), nullable=False),
    Column("target_id", Integer(), nullable=False),
    Column("target_name", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("last_error", Text()),
    Column("enqueued_at", TIME),
    Column("delivered_at", TIME),
    # While a job sends it: no other copy of the job sends it before then.
    Column("lease_until", TIME),
    Column("updated_at", TIME, nullable=False),
)

alert_fence = Table(
    "alert_fence",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("token", BigInteger(), nullable=False),
)
