"""generic outbox: messages name their exchange, routing key, headers and properties

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 16:20:00

The outbox no longer knows orders: ``order_id`` becomes ``subject_id``, and a broker message
carries its whole envelope, so the relay publishes any kind without building it. Unsent order
tasks written by the old code are rewritten into Celery messages for the default orders queue
(``cure.orders``); a deployment that renamed that queue should let its outbox drain first.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TASK_ID = "'order-' || (payload->>'order_id') || '-' || coalesce(payload->>'attempt', '1')"
_ARGS = "jsonb_build_array(payload->>'order_id', coalesce((payload->>'attempt')::int, 1))"
# Built from the constants above, never from input.
_TO_CELERY = f"""
UPDATE outbox_messages SET
  routing_key = 'cure.orders',
  headers = jsonb_build_object(
    'lang', 'py', 'task', 'cure.run_order', 'id', {_TASK_ID}, 'shadow', NULL, 'eta', NULL,
    'expires', NULL, 'group', NULL, 'group_index', NULL, 'retries', 0,
    'timelimit', jsonb_build_array(NULL, NULL), 'root_id', {_TASK_ID}, 'parent_id', NULL,
    'argsrepr', {_ARGS}::text, 'kwargsrepr', '{{}}', 'origin', 'cure-api', 'ignore_result', true),
  properties = jsonb_build_object(
    'correlation_id', {_TASK_ID}, 'content_type', 'application/json',
    'content_encoding', 'utf-8'),
  payload = jsonb_build_array(
    {_ARGS}, '{{}}'::jsonb,
    '{{"callbacks": null, "errbacks": null, "chain": null, "chord": null}}'::jsonb)
WHERE kind = 'run_order' AND sent_at IS NULL
"""  # noqa: S608
_FROM_CELERY = """
UPDATE outbox_messages SET
  payload = jsonb_build_object('order_id', payload->0->>0, 'attempt', (payload->0->>1)::int)
WHERE kind = 'run_order' AND sent_at IS NULL AND jsonb_typeof(payload) = 'array'
"""


def upgrade() -> None:
    op.alter_column("outbox_messages", "order_id", new_column_name="subject_id")
    op.add_column(
        "outbox_messages",
        sa.Column("exchange", sa.String(length=255), server_default="", nullable=False),
    )
    op.add_column("outbox_messages", sa.Column("routing_key", sa.String(length=255)))
    op.add_column("outbox_messages", sa.Column("headers", postgresql.JSONB(astext_type=sa.Text())))
    op.add_column(
        "outbox_messages", sa.Column("properties", postgresql.JSONB(astext_type=sa.Text()))
    )
    op.execute(_TO_CELERY)


def downgrade() -> None:
    op.execute(_FROM_CELERY)
    op.drop_column("outbox_messages", "properties")
    op.drop_column("outbox_messages", "headers")
    op.drop_column("outbox_messages", "routing_key")
    op.drop_column("outbox_messages", "exchange")
    op.alter_column("outbox_messages", "subject_id", new_column_name="order_id")
