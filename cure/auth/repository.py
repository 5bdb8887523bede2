import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cure.auth.models import OAuthClient
from cure.crm.models import Customer


async def add_client(session: AsyncSession, client: OAuthClient) -> OAuthClient:
    session.add(client)
    await session.flush()
    return client


async def get_active_client(
    session: AsyncSession, client_id: str
) -> tuple[OAuthClient, Customer] | None:
    row = (
        await session.execute(
            select(OAuthClient, Customer)
            .join(Customer, Customer.id == OAuthClient.customer_id)
            .where(OAuthClient.client_id == client_id, OAuthClient.revoked_at.is_(None))
        )
    ).first()
    return (row[0], row[1]) if row else None


async def get_customer(session: AsyncSession, customer_id: uuid.UUID) -> Customer | None:
    return await session.get(Customer, customer_id)
