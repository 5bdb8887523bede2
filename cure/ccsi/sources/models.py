import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, String, Text, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cure.kit.db import Base, utcnow


class CatalogueSource(Base):
    """A remote catalogue an operator added (migration 0013; a trigger notifies ``cure_sources``
    of every change). ``document`` is its document without ``enabled`` and without secrets;
    ``sealed_secrets`` holds the inline secrets, encrypted (``cure.ccsi.sources.sealing``)."""

    __tablename__ = "catalogue_sources"
    __table_args__ = (CheckConstraint("version > 0", name="version_positive"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    sealed_secrets: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    version: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:  # the sealed secrets stay out of every repr
        return f"CatalogueSource(name={self.name!r}, version={self.version})"
