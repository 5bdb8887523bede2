"""Customer registration."""

import asyncio

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cure.apps import registry as app_registry
from cure.auth import service as auth_service
from cure.auth.passwords import hash_password
from cure.config import Settings
from cure.crm import repository
from cure.crm.exceptions import EmailTaken, WeakPassword
from cure.crm.models import Customer
from cure.crm.schemas import CustomerCreate, CustomerRegistered


def default_scopes(settings: Settings) -> list[str]:
    """What a new customer may do: the configured base scopes and every public app."""
    apps = [f"app:{app.id}" for app in app_registry.get_registry(settings).public()]
    return sorted({*settings.default_scopes, *apps})


async def register(
    session: AsyncSession, settings: Settings, data: CustomerCreate
) -> CustomerRegistered:
    email = data.email.lower()
    if data.password.strip().lower() == email:
        raise WeakPassword("the password must not be the email address")
    if await repository.get_by_email(session, email) is not None:
        raise EmailTaken("an account with this email exists already")
    password_hash = await asyncio.to_thread(hash_password, data.password)
    customer = Customer(
        name=data.name, email=email, password_hash=password_hash, organisation=data.organisation
    )
    try:
        async with session.begin_nested():
            await repository.add(session, customer)
    except IntegrityError as exc:  # a concurrent registration with the same email won
        raise EmailTaken("an account with this email exists already") from exc
    client, secret = await auth_service.create_client(
        session, customer_id=customer.id, scopes=default_scopes(settings)
    )
    return CustomerRegistered(
        customer_id=customer.id,
        name=customer.name,
        email=customer.email,
        client_id=client.client_id,
        client_secret=secret,
        scopes=client.scopes,
    )
