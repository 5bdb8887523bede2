"""Database plumbing: the declarative base, engines and sessionmakers, and error classification.

No engine is cached here: whoever runs (the API's lifespan, a command, a task) builds its own from
its settings, so two apps with different settings can live in one process.
"""

from datetime import UTC, datetime

import asyncpg
from sqlalchemy import DateTime, MetaData
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


# Connection exceptions (class 08), shutdown or start-up (57P01-57P03), out of resources (53).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53")


def means_unavailable(sqlstate: str) -> bool:
    """Whether a PostgreSQL error code means the server is unreachable or not serving now."""
    return bool(sqlstate) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same work again later may succeed (the database or network was down),
    as opposed to an error the same input will always raise."""
    if isinstance(exc, (OSError, TimeoutError, sa_exc.TimeoutError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        orig = exc.orig
        sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", "") or "")
        if means_unavailable(sqlstate) or exc.connection_invalidated:
            return True
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)) and not sqlstate:
            return not isinstance(orig, asyncpg.exceptions.DataError)
        return False
    if isinstance(exc, asyncpg.PostgresError):
        return means_unavailable(str(getattr(exc, "sqlstate", "")))
    return isinstance(exc, asyncpg.exceptions.InterfaceError) and not isinstance(
        exc, asyncpg.exceptions.DataError
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int | None = None) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
