import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, String, Text, Uuid, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cure.kit.db import Base, utcnow


class OutboxMessage(Base):
    """Work for another process, written in the same transaction as the change that causes it.

    A row with a ``routing_key`` is a broker message: the relay publishes ``payload`` as its JSON
    body to ``exchange`` with that routing key, ``headers`` and ``properties``. A row without one
    is delivered by whoever handles its ``kind`` (e.g. the notifier's emails and callbacks).
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_unsent", "id", postgresql_where=text("sent_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    # What the message is about (an order, say); the outbox itself never looks inside.
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    payload: Mapped[Any] = mapped_column(JSONB)
    exchange: Mapped[str] = mapped_column(String(255), default="", server_default="")
    routing_key: Mapped[str | None] = mapped_column(String(255), default=None)
    headers: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    # Not before this time: a failed send backs off by pushing it forward.
    available_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
