"""Every domain's tables, imported in one place so Alembic sees them all."""

from cure.auth.models import OAuthClient
from cure.crm.models import Customer
from cure.kit.db import Base
from cure.orders.models import IdempotencyKey, Order, OrderEvent
from cure.outbox.models import OutboxMessage

__all__ = [
    "Base",
    "Customer",
    "IdempotencyKey",
    "OAuthClient",
    "Order",
    "OrderEvent",
    "OutboxMessage",
]
