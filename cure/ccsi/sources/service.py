"""Catalogue sources: adding, replacing, listing, enabling and removing them (admins, through the
API or ``cure ccsi sources``), and the runtime view every process has of the enabled ones.

Runtime:

- ``SourceRegistry`` (one per API process, under ``SOURCES`` in its state): the enabled sources with
  their secrets, each with its credentials object (``Source.auth``, kept while its version lasts
  so a token is reused). It reads them again after a ``cure_sources`` notice (a trigger sends one
  at the commit of any change, migration 0013), whenever it is not hearing notices, after its own
  process committed a change, and at least every ``CURE_SOURCES_REFRESH_SECONDS``.
- ``load_source`` / ``load_source_with`` / ``load_source_sync``: one enabled source by name, with
  its secrets, for the worker (no web framework here).

A source whose stored secrets cannot be read (``CURE_SOURCES_KEY`` missing or changed) or whose
stored document no longer validates is left out, with the reason in ``SourceRegistry.problems``
and in the log (which names it, never a secret).
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from cure.ccsi.sources import repository, sealing
from cure.ccsi.sources.auth import SourceAuth, source_auth
from cure.ccsi.sources.exceptions import (
    InvalidSource,
    SecretsUnreadable,
    SourceExists,
    SourceNotFound,
    StoredSourceInvalid,
)
from cure.ccsi.sources.models import CatalogueSource
from cure.ccsi.sources.schemas import SourceDocument, SourceRead
from cure.config import Settings
from cure.kit.db import is_transient
from cure.kit.listen import Subscription

log = logging.getLogger(__name__)

CHANNEL = "cure_sources"  # the payload is the changed source's name

AfterCommit = Callable[[], None]


# -- managing sources ----------------------------------------------------------------------------


def to_read(row: CatalogueSource) -> SourceRead:
    return SourceRead.model_validate(
        {
            **sealing.masked(row.document, enabled=row.enabled),
            "version": row.version,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
    )


def _after_commit(session: AsyncSession, callback: AfterCommit | None) -> None:
    """Run ``callback`` once this session's transaction commits (this process's registry reads
    again at once instead of on the notice a moment later: read your own writes)."""
    if callback is not None:
        event.listen(session.sync_session, "after_commit", lambda _session: callback(), once=True)


def _refuse_masks(document: SourceDocument) -> None:
    if masks := sealing.masked_fields(document):
        raise InvalidSource(
            f"auth.{masks[0]}: give the secret itself ({sealing.MASK!r} keeps a secret already "
            "stored, when a source is replaced)"
        )


async def add(
    session: AsyncSession,
    settings: Settings,
    document: SourceDocument,
    *,
    after_commit: AfterCommit | None = None,
) -> SourceRead:
    """Add a source; SourceExists (409) when one has its name."""
    _refuse_masks(document)
    parts = sealing.split(document)
    sealed = sealing.seal(settings, document.name, parts.secrets)
    row = await repository.add(
        session,
        name=document.name,
        document=parts.public,
        sealed=sealed,
        enabled=document.enabled,
    )
    if row is None:
        raise SourceExists(f"a source named {document.name} exists; replace it with PUT")
    _after_commit(session, after_commit)
    log.info("catalogue source %s added (%s, %s)", document.name, document.kind, _auth_kind(row))
    return to_read(row)


async def put(
    session: AsyncSession,
    settings: Settings,
    name: str,
    document: SourceDocument,
    *,
    after_commit: AfterCommit | None = None,
) -> tuple[SourceRead, bool]:
    """Replace the source ``name`` with ``document``, or add it: (the source, whether it was
    added). A secret given as ``"**********"`` keeps the one stored for that field."""
    if document.name != name:
        raise InvalidSource(f"the document names the source {document.name}, the path {name}")
    row = await repository.get(session, name, for_update=True)
    if row is None:
        try:
            return await add(session, settings, document, after_commit=after_commit), True
        except SourceExists:  # added by another request meanwhile: replace that one
            row = await repository.get(session, name, for_update=True)
            assert row is not None
    parts = sealing.split(document)
    secrets = dict(parts.secrets)
    if masks := sealing.masked_fields(document):
        stored = sealing.unseal(settings, name, row.sealed_secrets)
        stored_kind = row.document.get("auth", {}).get("type")
        for secret in masks:
            if stored_kind != document.auth.type or secret not in stored:
                raise InvalidSource(
                    f"auth.{secret}: no secret of this kind is stored to keep; give it itself"
                )
            secrets[secret] = stored[secret]
    sealed = sealing.seal(settings, name, secrets)
    await repository.replace(
        session, row, document=parts.public, sealed=sealed, enabled=document.enabled
    )
    _after_commit(session, after_commit)
    log.info("catalogue source %s replaced (version %d)", name, row.version)
    return to_read(row), False


async def list_sources(session: AsyncSession) -> list[SourceRead]:
    return [to_read(row) for row in await repository.all_sources(session)]


async def get(session: AsyncSession, name: str) -> SourceRead:
    row = await repository.get(session, name)
    if row is None:
        raise SourceNotFound(f"no source named {name}")
    return to_read(row)


async def remove(
    session: AsyncSession, name: str, *, after_commit: AfterCommit | None = None
) -> None:
    if not await repository.remove(session, name):
        raise SourceNotFound(f"no source named {name}")
    _after_commit(session, after_commit)
    log.info("catalogue source %s removed", name)


async def set_enabled(
    session: AsyncSession,
    name: str,
    *,
    enabled: bool,
    after_commit: AfterCommit | None = None,
) -> SourceRead:
    row = await repository.set_enabled(session, name, enabled=enabled)
    if row is None:
        raise SourceNotFound(f"no source named {name}")
    _after_commit(session, after_commit)
    log.info("catalogue source %s %s", name, "enabled" if enabled else "disabled")
    return to_read(row)


def _auth_kind(row: CatalogueSource) -> str:
    kind = row.document.get("auth", {}).get("type", "none")
    return f"auth {kind}"


# -- the runtime view ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """An enabled source as the federation and the worker use it. ``document`` has its secrets
    (``SecretStr``): never logged, never returned. ``auth`` gives its credentials for calls."""

    document: SourceDocument
    version: int
    auth: SourceAuth = field(compare=False)

    @property
    def name(self) -> str:
        return self.document.name

    @property
    def priority(self) -> int:
        return self.document.priority

    def __repr__(self) -> str:
        return f"Source(name={self.document.name!r}, version={self.version})"


def _source(settings: Settings, row: Any, **auth_options: Any) -> Source:
    """The source of a stored row, its secrets decrypted. A pydantic error is never let out: its
    text would quote the document, secrets and all."""
    secrets = sealing.unseal(settings, row.name, row.sealed_secrets)
    try:
        document = sealing.join(row.document, secrets, enabled=True)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'document'}: {error['msg']}"
            for error in exc.errors()[:5]
        )
        raise StoredSourceInvalid(
            f"the stored document of the source {row.name} is no longer valid ({problems}); "
            "add it again"
        ) from None
    return Source(document, row.version, source_auth(document, **auth_options))


class SourceRegistry:
    """The enabled sources of one process, read again on change (see the module's docstring).

    ``auth_options`` go to ``source_auth`` (an httpx client, a clock) for every source.
    """

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        refresh_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        **auth_options: Any,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.refresh_seconds = refresh_seconds or settings.sources_refresh_seconds
        self.clock = clock
        self.auth_options = auth_options
        self.hearing = False
        self.problems: dict[str, str] = {}  # sources left out, and why (safe to show an admin)
        self._sources: dict[str, Source] = {}
        self._generation = 0  # bumped by every notice: what was read before is stale
        self._read_generation: int | None = None
        self._read_at = 0.0
        self._lock: asyncio.Lock | None = None

    def subscription(self) -> Subscription:
        return Subscription(CHANNEL, self.on_notice, self.on_hearing)

    def on_notice(self, _payload: str) -> None:
        self._generation += 1

    def on_hearing(self, hearing: bool) -> None:
        self.hearing = hearing
        self._generation += 1  # notices may have been lost meanwhile

    def invalidate(self) -> None:
        """Read again at the next use (this process committed a change)."""
        self._generation += 1

    async def enabled(self) -> list[Source]:
        """The enabled sources, by priority, then name."""
        await self._fresh()
        return sorted(self._sources.values(), key=lambda s: (s.document.priority, s.name))

    async def get(self, name: str) -> Source | None:
        await self._fresh()
        return self._sources.get(name)

    def _current(self) -> bool:
        return (
            self.hearing
            and self._read_generation == self._generation
            and self.clock() - self._read_at < self.refresh_seconds
        )

    async def _fresh(self) -> None:
        if self._current():
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._current():
                return
            generation, started = self._generation, self.clock()
            try:
                async with self.sessionmaker() as session:
                    rows = await repository.enabled(session)
            except Exception as exc:
                if not is_transient(exc) or self._read_generation is None:
                    raise
                log.warning("catalogue sources not read again (%s); using those known", exc)
                return
            self._sources, self.problems = self._build(rows)
            self._read_generation, self._read_at = generation, started

    def _build(self, rows: Any) -> tuple[dict[str, Source], dict[str, str]]:
        sources: dict[str, Source] = {}
        problems: dict[str, str] = {}
        for row in rows:
            known = self._sources.get(row.name)
            if known is not None and known.version == row.version:
                sources[row.name] = known  # same version: keep its credentials (its token)
                continue
            try:
                sources[row.name] = _source(self.settings, row, **self.auth_options)
            except (SecretsUnreadable, StoredSourceInvalid) as exc:
                problems[row.name] = exc.message
            else:
                continue
            log.error("catalogue source %s left out: %s", row.name, problems[row.name])
        return sources, problems


# -- the worker's loader -------------------------------------------------------------------------


async def load_source(
    session: AsyncSession, settings: Settings, name: str, **auth_options: Any
) -> Source | None:
    """The enabled source ``name`` with its secrets, or None (unknown or disabled). Raises
    SecretsUnreadable when its secrets cannot be decrypted here, StoredSourceInvalid when its
    stored document is no longer valid (both name the source, never a secret)."""
    row = await repository.enabled_one(session, name)
    if row is None:
        return None
    return _source(settings, row, **auth_options)


async def load_source_with(
    engine: AsyncEngine, settings: Settings, name: str, **auth_options: Any
) -> Source | None:
    """``load_source`` on an engine of the caller's (the worker keeps one per process)."""
    async with AsyncSession(engine) as session:
        return await load_source(session, settings, name, **auth_options)


def load_source_sync(settings: Settings, name: str, **auth_options: Any) -> Source | None:
    """``load_source`` from synchronous code with no event loop running (a Celery task's body):
    on a connection of its own, closed before returning. The source's ``auth`` is then used
    in whichever event loop the caller runs next."""

    async def load() -> Source | None:
        engine = create_async_engine(settings.database_url, poolclass=NullPool)
        try:
            return await load_source_with(engine, settings, name, **auth_options)
        finally:
            await engine.dispose()

    return asyncio.run(load())
