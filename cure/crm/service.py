"""Customers: registration, profile, and the admin's view of every customer."""

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cure.auth import repository as auth_repository
from cure.auth import scopes as scope_rules
from cure.auth import service as auth_service
from cure.auth.models import Customer
from cure.auth.passwords import PasswordHasher
from cure.auth.principals import Principal
from cure.auth.throttle import Throttle
from cure.config import Settings
from cure.crm.exceptions import (
    CannotChangeSelf,
    CustomerNotFound,
    EmailTaken,
    ScopeNotGrantable,
    UnknownScope,
)
from cure.crm.schemas import (
    CustomerCreate,
    CustomerPage,
    CustomerRead,
    CustomerRegistered,
    CustomerUpdate,
)
from cure.kit.db import utcnow
from cure.kit.pagination import InvalidCursor, decode_cursor, page_of

CUSTOMER_SORT = "-created_at"  # the admin list's one order: newest first


def default_scopes(settings: Settings) -> list[str]:
    """What a new customer may do: the configured base scopes and every public app."""
    return scope_rules.defaults(settings)


async def _create(
    session: AsyncSession,
    settings: Settings,
    data: CustomerCreate,
    *,
    scopes: list[str],
    is_admin: bool = False,
    hasher: PasswordHasher | None = None,
) -> Customer:
    email = data.email.lower()
    auth_service.check_password_policy(settings, data.password, email=email, name=data.name)
    # The hash first, holding no database connection (the request has not used one yet).
    password_hash = await auth_service.hash_password(settings, data.password, hasher=hasher)
    if await auth_repository.get_customer_by_email(session, email) is not None:
        raise EmailTaken("an account with this email exists already")
    customer = Customer(
        name=data.name,
        email=email,
        password_hash=password_hash,
        organisation=data.organisation,
        country=data.country,
        scopes=sorted(set(scopes)),
        is_admin=is_admin,
        # Admins are made on the server by an operator, who vouches for the address.
        email_verified_at=utcnow() if is_admin else None,
    )
    try:
        async with session.begin_nested():
            await auth_repository.add_customer(session, customer)
    except IntegrityError as exc:  # a concurrent registration with the same email won
        raise EmailTaken("an account with this email exists already") from exc
    return customer


async def register(
    session: AsyncSession, settings: Settings, throttle: Throttle, data: CustomerCreate
) -> tuple[CustomerRegistered, auth_service.VerificationMail | None]:
    """A new customer with working client credentials at once (the original platform's flow),
    and, when verification is required, the link to mail (otherwise it is mailed on request).
    Registrations are limited per client address.

    A taken email answers 409 EmailTaken: a product decision (README, "Security"), since the
    answer carries working credentials and so cannot look the same for a taken email.
    """
    await throttle.spend(throttle.registration_limit())
    customer = await _create(
        session, settings, data, scopes=default_scopes(settings), hasher=throttle.hasher
    )
    # The default client follows the customer's scopes, so later grants reach it too.
    client, secret = await auth_service.create_client(session, customer_id=customer.id)
    mail = None
    if settings.require_email_verification:
        mail = await auth_service.new_verification(session, settings, customer)
    registered = CustomerRegistered(
        customer_id=customer.id,
        name=customer.name,
        email=customer.email,
        client_id=client.client_id,
        client_secret=secret,
        scopes=customer.scopes,
        email_verified=False,
    )
    return registered, mail


async def create_admin(session: AsyncSession, settings: Settings, data: CustomerCreate) -> Customer:
    """An admin account (for the `cure admin create` command; no endpoint creates admins)."""
    scopes = [*default_scopes(settings), scope_rules.ADMIN]
    return await _create(session, settings, data, scopes=scopes, is_admin=True)


async def get(
    session: AsyncSession, customer_id: uuid.UUID, *, for_update: bool = False
) -> Customer:
    customer = await auth_repository.get_customer_locked(
        session, customer_id, for_update=for_update
    )
    if customer is None:
        raise CustomerNotFound(f"no customer with id {customer_id}")
    return customer


async def get_me(session: AsyncSession, principal: Principal) -> Customer:
    return await get(session, principal.customer_id)


def _apply(customer: Customer, data: CustomerUpdate) -> Customer:
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(customer, field, value)
    return customer


async def update_me(session: AsyncSession, principal: Principal, data: CustomerUpdate) -> Customer:
    customer = await get(session, principal.customer_id, for_update=True)
    _apply(customer, data)
    await session.flush()
    return customer


# -- admin ---------------------------------------------------------------------------------------


async def list_customers(
    session: AsyncSession,
    *,
    search: str | None,
    is_active: bool | None,
    is_admin: bool | None,
    country: str | None,
    limit: int,
    offset: int,
    cursor: str | None,
) -> CustomerPage:
    if cursor and offset:
        raise InvalidCursor("give either cursor or offset, not both")
    after = decode_cursor(cursor, CUSTOMER_SORT) if cursor else None
    rows, total = await auth_repository.list_customers(
        session,
        search=search,
        is_active=is_active,
        is_admin=is_admin,
        country=country,
        limit=limit,
        offset=offset,
        after=after,
    )
    items, next_cursor = page_of(
        rows, limit=limit, sort=CUSTOMER_SORT, key=lambda c: (c.created_at, c.id)
    )
    return CustomerPage(
        items=[CustomerRead.model_validate(c) for c in items],
        total=total,
        limit=limit,
        offset=offset,
        next_cursor=next_cursor,
    )


async def update_customer(
    session: AsyncSession, customer_id: uuid.UUID, data: CustomerUpdate
) -> Customer:
    customer = await get(session, customer_id, for_update=True)
    _apply(customer, data)
    await session.flush()
    return customer


async def set_active(
    session: AsyncSession, admin: Principal, customer_id: uuid.UUID, *, active: bool
) -> Customer:
    """Disable (every token stops working at once, refresh tokens are revoked) or re-enable."""
    if customer_id == admin.customer_id:
        raise CannotChangeSelf("admins cannot disable or re-enable themselves")
    customer = await get(session, customer_id, for_update=True)
    customer.is_active = active
    if not active:
        await auth_service.end_sessions(session, customer.id)
    await session.flush()
    return customer


def _check_scope(settings: Settings, scope: str) -> None:
    if scope not in scope_rules.known(settings):
        raise UnknownScope(f"unknown scope '{scope}'")


async def grant_scope(
    session: AsyncSession, settings: Settings, customer_id: uuid.UUID, scope: str
) -> Customer:
    _check_scope(settings, scope)
    customer = await get(session, customer_id, for_update=True)
    if scope == scope_rules.ADMIN and not customer.is_admin:
        raise ScopeNotGrantable(
            "the admin scope is only for admin accounts (made with `cure admin create`)"
        )
    customer.scopes = sorted({*customer.scopes, scope})
    await session.flush()
    return customer


async def withdraw_scope(
    session: AsyncSession, settings: Settings, admin: Principal, customer_id: uuid.UUID, scope: str
) -> Customer:
    """Withdraw a scope from the customer and all its clients; its tokens lose it at once."""
    _check_scope(settings, scope)
    if customer_id == admin.customer_id and scope == scope_rules.ADMIN:
        raise CannotChangeSelf("admins cannot withdraw their own admin scope")
    customer = await get(session, customer_id, for_update=True)
    customer.scopes = sorted(set(customer.scopes) - {scope})
    await auth_service.withdraw_client_scope(session, customer_id=customer.id, scope=scope)
    await session.flush()
    return customer
