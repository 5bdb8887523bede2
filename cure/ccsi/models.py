import uuid
from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cure.kit.db import Base, utcnow


class Product(Base):
    """A catalogue entry: an input product (no owner, seen by all) or one CURE generated (owned)."""

    __tablename__ = "products"
    __table_args__ = (
        # Its leading column also serves every lookup and grouping by collection.
        UniqueConstraint("collection", "identifier", name="uq_products_collection_identifier"),
        CheckConstraint("end_at >= start_at", name="times_ordered"),
        Index("ix_products_start_at_end_at", "start_at", "end_at"),
        Index("ix_products_end_at", "end_at"),
        # Search by area and time in one index scan (see repository._overlapping).
        Index(
            "ix_products_footprint_period",
            "footprint",
            text("tstzrange(start_at, end_at, '[]')"),
            postgresql_using="gist",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    collection: Mapped[str] = mapped_column(String(100))
    identifier: Mapped[str] = mapped_column(String(255))
    product_type: Mapped[str] = mapped_column(String(100))
    footprint: Mapped[WKBElement] = mapped_column(
        Geometry(geometry_type="GEOMETRY", srid=4326, spatial_index=True)
    )
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # {key: {"href": S3 key or absolute URL, "type", "size", "checksum", "roles", "title"}}
    assets: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # NULL: an input product everyone sees; set: a generated product only its owner sees
    # (until an admin publishes it).
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    published: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # Lineage: the products an order's product was made from, as the order staged them:
    # [{"collection", "identifier", "source", "id" (local ones), "owner_id" (owned ones)}].
    derived_from: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
