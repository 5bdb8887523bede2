"""log records: a table partitioned by day, written by the log saver

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 18:00:00

Partitions (one per UTC day, ``log_records_pYYYYMMDD``) are created by the saver as days come
and dropped by its retention pass, so removing a day of records is a DROP TABLE, not a DELETE.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE log_records_seq")
    op.create_table(
        "log_records",
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "seq",
            sa.BigInteger(),
            server_default=sa.text("nextval('log_records_seq')"),
            nullable=False,
        ),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("logger", sa.String(length=255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column(
            "extra",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("time", "id", name=op.f("pk_log_records")),
        postgresql_partition_by="RANGE (time)",
    )
    op.execute("ALTER SEQUENCE log_records_seq OWNED BY log_records.seq")
    op.create_index("ix_log_records_order_id_seq", "log_records", ["order_id", "seq"])
    op.create_index("ix_log_records_customer_id_time", "log_records", ["customer_id", "time"])
    op.create_index("ix_log_records_service_time", "log_records", ["service", "time"])
    op.create_index("ix_log_records_level_time", "log_records", ["level", "time"])


def downgrade() -> None:
    op.drop_table("log_records")  # its partitions go with it
    op.execute("DROP SEQUENCE IF EXISTS log_records_seq")
