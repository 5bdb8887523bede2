import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from cure.orders.models import Order, OrderEvent


async def add(session: AsyncSession, order: Order, event: OrderEvent) -> Order:
    session.add(order)
    await session.flush()
    event.order_id = order.id
    session.add(event)
    await session.flush()
    return order


async def get_with_events(
    session: AsyncSession, order_id: uuid.UUID, *, customer_id: uuid.UUID | None
) -> Order | None:
    """The order with its history; ``customer_id`` limits it to that customer's orders."""
    query = select(Order).options(selectinload(Order.events)).where(Order.id == order_id)
    if customer_id is not None:
        query = query.where(Order.customer_id == customer_id)
    return (await session.execute(query)).scalar_one_or_none()


async def get_for_update(session: AsyncSession, order_id: uuid.UUID) -> Order | None:
    return (
        await session.execute(select(Order).where(Order.id == order_id).with_for_update())
    ).scalar_one_or_none()


async def event_exists(session: AsyncSession, event_id: uuid.UUID) -> bool:
    found = await session.execute(select(OrderEvent.id).where(OrderEvent.event_id == event_id))
    return found.first() is not None


async def add_event(session: AsyncSession, event: OrderEvent) -> None:
    session.add(event)
    await session.flush()
