"""order lifecycle

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 22:23:40.929639
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "outbox_messages",
        sa.Column(
            "available_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_idempotency_keys_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_idempotency_keys_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("customer_id", "key", name="uq_idempotency_keys_customer_key"),
    )
    op.add_column(
        "orders", sa.Column("notify_email", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column("orders", sa.Column("callback_url", sa.String(length=2048), nullable=True))
    op.add_column("orders", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_orders_active_status",
        "orders",
        ["status", "updated_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('QUEUED', 'RUNNING')"),
    )
    op.create_index(
        "ix_orders_customer_id_updated_at", "orders", ["customer_id", "updated_at"], unique=False
    )


def downgrade() -> None:
    op.drop_column("outbox_messages", "available_at")
    op.drop_index("ix_orders_customer_id_updated_at", table_name="orders")
    op.drop_index(
        "ix_orders_active_status",
        table_name="orders",
        postgresql_where=sa.text("status IN ('QUEUED', 'RUNNING')"),
    )
    op.drop_column("orders", "heartbeat_at")
    op.drop_column("orders", "callback_url")
    op.drop_column("orders", "notify_email")
    op.drop_table("idempotency_keys")
