import uuid

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cure.crm.models import Customer


async def get_by_email(session: AsyncSession, email: str) -> Customer | None:
    return (
        await session.execute(select(Customer).where(Customer.email == email.lower()))
    ).scalar_one_or_none()


async def get(
    session: AsyncSession, customer_id: uuid.UUID, *, for_update: bool = False
) -> Customer | None:
    query = select(Customer).where(Customer.id == customer_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def add(session: AsyncSession, customer: Customer) -> Customer:
    session.add(customer)
    await session.flush()
    return customer


def _conditions(
    *, search: str | None, is_active: bool | None, is_admin: bool | None, country: str | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if search:
        # A literal substring: LIKE wildcards in the search are escaped.
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        conditions.append(
            or_(
                Customer.email.like(pattern, escape="\\"),
                func.lower(Customer.name).like(pattern, escape="\\"),
                func.lower(Customer.organisation).like(pattern, escape="\\"),
            )
        )
    if is_active is not None:
        conditions.append(Customer.is_active.is_(is_active))
    if is_admin is not None:
        conditions.append(Customer.is_admin.is_(is_admin))
    if country is not None:
        conditions.append(Customer.country == country)
    return conditions


async def list_page(
    session: AsyncSession,
    *,
    search: str | None,
    is_active: bool | None,
    is_admin: bool | None,
    country: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Customer], int]:
    conditions = _conditions(search=search, is_active=is_active, is_admin=is_admin, country=country)
    total = (
        await session.execute(select(func.count()).select_from(Customer).where(*conditions))
    ).scalar_one()
    rows = await session.execute(
        select(Customer)
        .where(*conditions)
        .order_by(Customer.created_at.desc(), Customer.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows.scalars()), int(total)
