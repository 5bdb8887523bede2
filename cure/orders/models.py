import uuid
from datetime import date, datetime
from typing import Any

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cure.kit.db import Base, utcnow
from cure.orders.lifecycle import OrderStatus

_STATUSES = ", ".join(f"'{s.value}'" for s in OrderStatus)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status_known"),
        CheckConstraint("end_date >= start_date", name="dates_ordered"),
        Index("ix_orders_customer_id_created_at", "customer_id", "created_at"),
        Index("ix_orders_customer_id_updated_at", "customer_id", "updated_at"),
        # A customer's orders in a box, in one index scan (btree_gist; migration 0011).
        Index("ix_orders_customer_id_roi", "customer_id", "roi", postgresql_using="gist"),
        Index(
            "ix_orders_active_status",
            "status",
            "updated_at",
            postgresql_where=text("status IN ('QUEUED', 'RUNNING')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    app_id: Mapped[str] = mapped_column(String(64), index=True)
    app_version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.RECEIVED.value)
    roi: Mapped[WKBElement] = mapped_column(
        Geometry(geometry_type="GEOMETRY", srid=4326, spatial_index=True)
    )
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    message: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(default=1)
    # How many times the current attempt's task was published (the reconciler republishes an
    # order that waited in the queue too long; past max_dispatches it fails instead).
    dispatches: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    progress: Mapped[int | None] = mapped_column(default=None)
    result_key: Mapped[str | None] = mapped_column(String(512))
    result_size: Mapped[int | None] = mapped_column(BigInteger)
    result_media_type: Mapped[str | None] = mapped_column(String(128))
    result_checksum: Mapped[str | None] = mapped_column(String(100))
    # Every output of a successful run, by role: {"key", "size", "media_type", "checksum",
    # "title", "primary"}; the primary one is also the result above.
    assets: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    notify_email: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Last sign of life from the worker running the current attempt (see the reconciler).
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)

    events: Mapped[list["OrderEvent"]] = relationship(
        lazy="raise", order_by="OrderEvent.id", back_populates="order"
    )


class OrderEvent(Base):
    """One stored transition (or progress report) of an order."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(default=1)
    actor: Mapped[str] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[int | None] = mapped_column(default=None)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship(lazy="raise", back_populates="events")


class IdempotencyKey(Base):
    """A client's Idempotency-Key on submit: the same key and body give back the same order."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("customer_id", "key", name="uq_idempotency_keys_customer_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
