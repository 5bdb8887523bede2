"""Every domain's tables, imported in one place so Alembic sees them all."""

from cure.auth.models import (
    AuthFailure,
    Customer,
    OAuthClient,
    PasswordResetToken,
    RefreshToken,
    RevokedAccessToken,
)
from cure.ccsi.models import Product
from cure.ccsi.sources.models import CatalogueSource
from cure.kit.db import Base
from cure.logs.models import LogRecord
from cure.orders.models import IdempotencyKey, Order, OrderEvent
from cure.outbox.models import OutboxMessage

__all__ = [
    "AuthFailure",
    "Base",
    "CatalogueSource",
    "Customer",
    "IdempotencyKey",
    "LogRecord",
    "OAuthClient",
    "Order",
    "OrderEvent",
    "OutboxMessage",
    "Product",
    "PasswordResetToken",
    "RefreshToken",
    "RevokedAccessToken",
]
