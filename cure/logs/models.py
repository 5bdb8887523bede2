"""The ``log_records`` table, range-partitioned by day on ``time`` (see ``retention``)."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Sequence, SmallInteger, String, Text, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cure.kit.db import Base, utcnow

SEQUENCE = Sequence("log_records_seq")


class LogRecord(Base):
    __tablename__ = "log_records"
    __table_args__ = (
        Index("ix_log_records_order_id_seq", "order_id", "seq"),
        Index("ix_log_records_customer_id_time", "customer_id", "time"),
        Index("ix_log_records_service_time", "service", "time"),
        Index("ix_log_records_level_time", "level", "time"),
        {"postgresql_partition_by": "RANGE (time)"},
    )

    # The primary key holds the partition key, as PostgreSQL requires; the id comes from the
    # producer, so a record delivered twice is stored once.
    time: Mapped[datetime] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # Saving order: savers take one lock per batch, so seq grows in commit order and a reader
    # following an order's log by seq never skips a record committed late.
    seq: Mapped[int] = mapped_column(
        BigInteger, SEQUENCE, server_default=SEQUENCE.next_value(), nullable=False
    )
    service: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    level: Mapped[int] = mapped_column(SmallInteger)  # 10 DEBUG ... 50 CRITICAL
    logger: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    extra: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    received_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))
