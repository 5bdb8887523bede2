"""Every query of catalogue sources."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from cure.ccsi.sources.models import CatalogueSource
from cure.kit.db import utcnow


async def get(
    session: AsyncSession, name: str, *, for_update: bool = False
) -> CatalogueSource | None:
    statement = select(CatalogueSource).where(CatalogueSource.name == name)
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


async def all_sources(session: AsyncSession) -> Sequence[CatalogueSource]:
    statement = select(CatalogueSource).order_by(CatalogueSource.name)
    return (await session.execute(statement)).scalars().all()


async def enabled(session: AsyncSession) -> Sequence[Any]:
    """The enabled sources' rows (name, version, document, sealed secrets), by name."""
    statement = (
        select(
            CatalogueSource.name,
            CatalogueSource.version,
            CatalogueSource.document,
            CatalogueSource.sealed_secrets,
        )
        .where(CatalogueSource.enabled)
        .order_by(CatalogueSource.name)
    )
    return (await session.execute(statement)).all()


async def enabled_one(session: AsyncSession, name: str) -> Any | None:
    statement = select(
        CatalogueSource.name,
        CatalogueSource.version,
        CatalogueSource.document,
        CatalogueSource.sealed_secrets,
    ).where(CatalogueSource.enabled, CatalogueSource.name == name)
    return (await session.execute(statement)).one_or_none()


async def add(
    session: AsyncSession,
    *,
    name: str,
    document: dict[str, Any],
    sealed: str | None,
    enabled: bool,
) -> CatalogueSource | None:
    """The new source, or None when one of that name exists (ON CONFLICT DO NOTHING: a
    duplicate is an answer, and the transaction goes on)."""
    now = utcnow()
    statement = (
        pg_insert(CatalogueSource)
        .values(
            name=name,
            document=document,
            sealed_secrets=sealed,
            enabled=enabled,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[CatalogueSource.name])
        .returning(CatalogueSource)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def replace(
    session: AsyncSession,
    source: CatalogueSource,
    *,
    document: dict[str, Any],
    sealed: str | None,
    enabled: bool,
) -> None:
    source.document = document
    source.sealed_secrets = sealed
    source.enabled = enabled
    source.version += 1
    source.updated_at = utcnow()
    await session.flush()


async def set_enabled(session: AsyncSession, name: str, *, enabled: bool) -> CatalogueSource | None:
    """The source after the change (its version bumped only if it changed), or None."""
    statement = (
        update(CatalogueSource)
        .where(CatalogueSource.name == name, CatalogueSource.enabled.is_not(enabled))
        .values(enabled=enabled, version=CatalogueSource.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.execute(statement)
    found = select(CatalogueSource).where(CatalogueSource.name == name)
    found = found.execution_options(populate_existing=True)
    return (await session.execute(found)).scalar_one_or_none()


async def remove(session: AsyncSession, name: str) -> bool:
    statement = delete(CatalogueSource).where(CatalogueSource.name == name)
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))
