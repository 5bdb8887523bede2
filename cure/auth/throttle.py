"""Brute-force throttling: failures counted per account and per client address, in the database
so that every API replica sees the same counts."""

import hashlib
import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.auth import repository
from cure.auth.exceptions import TooManyAttempts
from cure.config import Settings
from cure.kit.db import utcnow


@dataclass(frozen=True)
class Limit:
    key: str  # a digest: the table never holds an email or address in clear
    max_failures: int


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()


@dataclass(frozen=True)
class Throttle:
    settings: Settings
    address: str
    # For records that must outlive the request, whose own transaction rolls back on its error.
    sessionmaker: async_sessionmaker[AsyncSession]

    def address_limit(self) -> Limit:
        return Limit(_digest("address", self.address), self.settings.throttle_address_failures)

    def account_limit(self, kind: str, account: str) -> Limit:
        """Failures against one account: ``kind`` is "user" (an email) or "client" (a client_id)."""
        return Limit(_digest(kind, account.lower()), self.settings.throttle_account_failures)

    def reset_limit(self, email: str) -> Limit:
        return Limit(_digest("reset", email.lower()), self.settings.throttle_reset_requests)

    async def check(self, session: AsyncSession, *limits: Limit) -> None:
        """Raise TooManyAttempts (with the seconds to wait) when any limit is used up."""
        now = utcnow()
        window = timedelta(seconds=self.settings.throttle_window_seconds)
        wait = 0
        for limit in limits:
            nth = await repository.nth_latest_failure(
                session, limit.key, since=now - window, n=limit.max_failures
            )
            if nth is not None:
                wait = max(wait, math.ceil((nth + window - now).total_seconds()))
        if wait > 0:
            raise TooManyAttempts("too many attempts; try again later", retry_after=wait)

    async def record(self, *limits: Limit) -> None:
        """Count a failure under each limit's key.

        Written and committed in a transaction of its own: the request that failed rolls back.
        """
        now = utcnow()
        async with self.sessionmaker() as session, session.begin():
            await repository.add_failures(session, [limit.key for limit in limits], now=now)
            before = now - timedelta(seconds=self.settings.throttle_window_seconds)
            await repository.purge_failures(session, before=before)
