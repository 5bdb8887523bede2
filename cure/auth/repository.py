"""Every query of the OAuth2 server."""

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, delete, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cure.auth.models import (
    AuthFailure,
    Customer,
    EmailVerificationToken,
    OAuthClient,
    PasswordResetToken,
    RefreshToken,
    RevokedAccessToken,
)
from cure.auth.principals import note_revoked
from cure.kit.pagination import keyset

# Not a SHA-256 hex digest (it holds "!"), so no client secret ever matches it.
LOCKED_OUT_SECRET_HASH = "!locked-out: rotate the secret to use this client"  # noqa: S105

# -- clients -------------------------------------------------------------------------------------


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


async def get_customer_client(
    session: AsyncSession, *, customer_id: uuid.UUID, client_id: str, for_update: bool = False
) -> OAuthClient | None:
    query = select(OAuthClient).where(
        OAuthClient.client_id == client_id,
        OAuthClient.customer_id == customer_id,
        OAuthClient.revoked_at.is_(None),
    )
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def list_customer_clients(session: AsyncSession, customer_id: uuid.UUID) -> list[OAuthClient]:
    rows = await session.execute(
        select(OAuthClient)
        .where(OAuthClient.customer_id == customer_id, OAuthClient.revoked_at.is_(None))
        .order_by(OAuthClient.created_at, OAuthClient.client_id)
    )
    return list(rows.scalars())


async def remove_scope_from_clients(
    session: AsyncSession, *, customer_id: uuid.UUID, scope: str
) -> None:
    await session.execute(
        update(OAuthClient)
        .where(OAuthClient.customer_id == customer_id, OAuthClient.scopes.is_not(None))
        .values(scopes=func.array_remove(OAuthClient.scopes, scope))
    )


async def lock_out_customer_clients(
    session: AsyncSession, customer_id: uuid.UUID, *, now: datetime
) -> None:
    """Replace every client secret of the customer by a value no secret hashes to (a SHA-256
    hex digest never contains "!"), and refuse the tokens issued with the old ones."""
    await session.execute(
        update(OAuthClient)
        .where(OAuthClient.customer_id == customer_id, OAuthClient.revoked_at.is_(None))
        .values(secret_hash=LOCKED_OUT_SECRET_HASH, secret_rotated_at=now)
    )


# -- customers (the one place that reads the customers table) ---------------------------------


async def get_customer(session: AsyncSession, customer_id: uuid.UUID) -> Customer | None:
    return await session.get(Customer, customer_id)


async def get_customer_by_email(session: AsyncSession, email: str) -> Customer | None:
    return (
        await session.execute(select(Customer).where(Customer.email == email.lower()))
    ).scalar_one_or_none()


async def get_customer_locked(
    session: AsyncSession, customer_id: uuid.UUID, *, for_update: bool = False
) -> Customer | None:
    query = select(Customer).where(Customer.id == customer_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def add_customer(session: AsyncSession, customer: Customer) -> Customer:
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


async def list_customers(
    session: AsyncSession,
    *,
    search: str | None,
    is_active: bool | None,
    is_admin: bool | None,
    country: str | None,
    limit: int,
    offset: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[Customer], int]:
    """Newest first; one row more than ``limit`` when another page follows, and the total."""
    conditions = _conditions(search=search, is_active=is_active, is_admin=is_admin, country=country)
    total = (
        await session.execute(select(func.count()).select_from(Customer).where(*conditions))
    ).scalar_one()
    query = keyset(
        select(Customer).where(*conditions),
        column=Customer.created_at,
        id_column=Customer.id,
        descending=True,
        after=after,
        limit=limit,
    )
    rows = await session.execute(query.offset(offset))
    return list(rows.scalars()), int(total)


# -- access tokens -------------------------------------------------------------------------------


async def is_revoked(session: AsyncSession, jti: str) -> bool:
    return bool(
        (await session.execute(select(exists().where(RevokedAccessToken.jti == jti)))).scalar()
    )


async def revoke_access_tokens(
    session: AsyncSession, tokens: list[tuple[str, datetime]], *, now: datetime
) -> None:
    """Record (jti, expiry) pairs as revoked; already revoked or expired ones are skipped."""
    rows = [{"jti": jti, "expires_at": exp, "revoked_at": now} for jti, exp in tokens if exp > now]
    note_revoked(session, [jti for jti, exp in tokens if exp > now])
    if rows:
        await session.execute(insert(RevokedAccessToken).values(rows).on_conflict_do_nothing())


async def purge_revoked_access_tokens(session: AsyncSession, *, now: datetime) -> None:
    await session.execute(delete(RevokedAccessToken).where(RevokedAccessToken.expires_at <= now))


# -- refresh tokens ------------------------------------------------------------------------------


async def add_refresh_token(session: AsyncSession, token: RefreshToken) -> RefreshToken:
    session.add(token)
    await session.flush()
    return token


async def get_refresh_token(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    return (
        await session.execute(
            select(RefreshToken)
            .where(RefreshToken.token_hash == token_hash)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def lock_refresh_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    """Serialise every use of one token family until the transaction ends.

    A transaction-level advisory lock rather than row locks: a losing request then holds no row
    that the family's revocation (committed in a transaction of its own) has to wait for.
    """
    key = int.from_bytes(family_id.bytes[:8], "big", signed=True)
    await session.execute(select(func.pg_advisory_xact_lock(key)))


async def claim_refresh_token(session: AsyncSession, token_id: uuid.UUID, *, now: datetime) -> bool:
    """Mark an unused, unrevoked refresh token used; False when another request got there first."""
    claimed = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.id == token_id,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(used_at=now)
        .returning(RefreshToken.id)
    )
    return claimed.first() is not None


async def link_replacement(
    session: AsyncSession, token_id: uuid.UUID, replaced_by_id: uuid.UUID
) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id)
        .values(replaced_by_id=replaced_by_id)
    )


async def _revoke_refresh_where(session: AsyncSession, condition: object, *, now: datetime) -> None:
    """Revoke the refresh tokens matching ``condition`` and the access tokens issued with them."""
    issued = await session.execute(
        update(RefreshToken)
        .where(condition, RefreshToken.revoked_at.is_(None))  # type: ignore[arg-type]
        .values(revoked_at=now)
        .returning(RefreshToken.access_token_jti, RefreshToken.access_token_expires_at)
    )
    await revoke_access_tokens(session, [(jti, exp) for jti, exp in issued.all()], now=now)


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, *, now: datetime) -> None:
    await _revoke_refresh_where(session, RefreshToken.family_id == family_id, now=now)


async def revoke_customer_refresh_tokens(
    session: AsyncSession, customer_id: uuid.UUID, *, now: datetime
) -> None:
    await _revoke_refresh_where(session, RefreshToken.customer_id == customer_id, now=now)


async def revoke_client_refresh_tokens(
    session: AsyncSession, client_id: str, *, now: datetime
) -> None:
    await _revoke_refresh_where(session, RefreshToken.client_id == client_id, now=now)


# -- password reset tokens -----------------------------------------------------------------------


async def add_reset_token(session: AsyncSession, token: PasswordResetToken) -> None:
    session.add(token)
    await session.flush()


async def get_reset_token_for_update(
    session: AsyncSession, token_hash: str
) -> PasswordResetToken | None:
    return (
        await session.execute(
            select(PasswordResetToken)
            .where(PasswordResetToken.token_hash == token_hash)
            .with_for_update()
        )
    ).scalar_one_or_none()


async def use_all_reset_tokens(
    session: AsyncSession, customer_id: uuid.UUID, *, now: datetime
) -> None:
    await session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.customer_id == customer_id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
    )


# -- email verification tokens -------------------------------------------------------------------


async def add_verification_token(session: AsyncSession, token: EmailVerificationToken) -> None:
    session.add(token)
    await session.flush()


async def get_verification_token_for_update(
    session: AsyncSession, token_hash: str
) -> EmailVerificationToken | None:
    return (
        await session.execute(
            select(EmailVerificationToken)
            .where(EmailVerificationToken.token_hash == token_hash)
            .with_for_update()
        )
    ).scalar_one_or_none()


# -- throttling ----------------------------------------------------------------------------------


async def lock_keys(session: AsyncSession, namespace: int, keys: list[str]) -> None:
    """Serialise, until the transaction ends, every throttle decision on these keys (in one
    order, so two decisions never wait on each other)."""
    for key in sorted(set(keys)):
        objid = int.from_bytes(bytes.fromhex(key[:8]), "big", signed=True)
        await session.execute(select(func.pg_advisory_xact_lock(namespace, objid)))


async def count_failures(
    session: AsyncSession, keys: list[str], *, since: datetime
) -> dict[str, int]:
    rows = await session.execute(
        select(AuthFailure.key, func.count())
        .where(AuthFailure.key.in_(keys), AuthFailure.occurred_at > since)
        .group_by(AuthFailure.key)
    )
    return {key: int(count) for key, count in rows.all()}


async def add_failures(session: AsyncSession, keys: list[str], *, now: datetime) -> list[int]:
    rows = await session.execute(
        insert(AuthFailure)
        .values([{"key": key, "occurred_at": now} for key in keys])
        .returning(AuthFailure.id)
    )
    return [int(row_id) for row_id in rows.scalars()]


async def delete_failures(session: AsyncSession, ids: list[int]) -> None:
    if ids:
        await session.execute(delete(AuthFailure).where(AuthFailure.id.in_(ids)))


async def nth_latest_failure(
    session: AsyncSession, key: str, *, since: datetime, n: int
) -> datetime | None:
    """When the n-th most recent failure under ``key`` after ``since`` happened, if there are n."""
    return (
        await session.execute(
            select(AuthFailure.occurred_at)
            .where(AuthFailure.key == key, AuthFailure.occurred_at > since)
            .order_by(AuthFailure.occurred_at.desc())
            .offset(n - 1)
            .limit(1)
        )
    ).scalar_one_or_none()


async def purge_failures(session: AsyncSession, *, before: datetime) -> None:
    await session.execute(delete(AuthFailure).where(AuthFailure.occurred_at <= before))
