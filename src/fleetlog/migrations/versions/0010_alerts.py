"""Alert rules, their webhook targets, alert states, and the history of notifications.

* `alert_targets`: webhooks, each with its signing secret (kept in the clear: it signs).
* `alert_rules` and `alert_rule_targets`: what to watch and whom to tell.
* `alert_states`: per rule and group (a device, a level, or '' ungrouped), pending or firing
  or resolved, as the evaluator last found it.
* `alert_notifications`: one row per transition per group (firing, resolved), kept after
  its rule is removed; `alert_deliveries`: one per notification and target, the outbox that
  the evaluator hands to the webhook jobs and that they mark delivered or dead; a job
  leases its delivery while sending, so two copies of one job never both send it.
* `alert_fence`: one row, the newest fencing token that wrote. Every evaluator write raises
  it to its own token in the same transaction, or is refused when a newer one wrote first.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_targets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("window_s", sa.Integer(), nullable=False),
        sa.Column("comparison", sa.String(2)),
        sa.Column("threshold", sa.BigInteger()),
        sa.Column("group_by", sa.String(16)),
        sa.Column("for_s", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text()),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_table(
        "alert_rule_targets",
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", "target_id"),
    )
    op.create_index("ix_alert_rule_targets_target", "alert_rule_targets", ["target_id"])
    op.create_table(
        "alert_states",
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("group_key", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("active_since", TIME),
        sa.Column("fired_at", TIME),
        sa.Column("resolved_at", TIME),
        sa.Column("evaluated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("rule_id", "group_key"),
    )
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("key", sa.String(32), nullable=False, unique=True),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("rule_name", sa.String(64), nullable=False),
        sa.Column("group_key", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("starts_at", TIME, nullable=False),
        sa.Column("ends_at", TIME),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("fence", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_alert_notifications_rule", "alert_notifications", ["rule_id"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("target_name", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("enqueued_at", TIME),
        sa.Column("delivered_at", TIME),
        sa.Column("lease_until", TIME),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_index("ix_alert_deliveries_notification", "alert_deliveries", ["notification_id"])
    op.create_index("ix_alert_deliveries_enqueued", "alert_deliveries", ["enqueued_at"])
    fence = op.create_table(
        "alert_fence",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(fence, [{"id": 1, "token": 0}])


def downgrade() -> None:
    op.drop_table("alert_fence")
    op.drop_index("ix_alert_deliveries_enqueued", "alert_deliveries")
    op.drop_index("ix_alert_deliveries_notification", "alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index("ix_alert_notifications_rule", "alert_notifications")
    op.drop_table("alert_notifications")
    op.drop_table("alert_states")
    op.drop_index("ix_alert_rule_targets_target", "alert_rule_targets")
    op.drop_table("alert_rule_targets")
    op.drop_table("alert_rules")
    op.drop_table("alert_targets")
