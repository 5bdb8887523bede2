from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cure.crm.models import Customer


async def get_by_email(session: AsyncSession, email: str) -> Customer | None:
    return (
        await session.execute(select(Customer).where(Customer.email == email.lower()))
    ).scalar_one_or_none()


async def add(session: AsyncSession, customer: Customer) -> Customer:
    session.add(customer)
    await session.flush()
    return customer
