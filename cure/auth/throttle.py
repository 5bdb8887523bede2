"""Brute-force throttling, in the database so that every API replica sees the same counts.

Failures are counted under keys (digests: the table holds no email or address in clear): the
client address and the account together (a *pair*), the account alone, the address alone.

- Passwords (slow to check, guessable): an attempt is counted as a failure *before* its hash,
  in a short transaction of its own on the side pool, under a lock per key, so that a burst of
  parallel guesses is counted exactly and none holds a second connection of the request pool;
  a right password takes its count back. A pair past ``throttle_pair_failures`` is refused
  before the hash; an account past ``throttle_account_failures`` is *under attack* and an address
  past ``throttle_address_failures`` is *abusive*: each only adds a growing delay, and only both
  together refuse. So a fuzzer behind a NAT slows its own address down without locking out the
  others behind it, and nobody can lock an account out from addresses it does not share.
- Cheap random credentials (client secrets, refresh and reset tokens: 256 bits, checked with
  one lookup) are checked first, so the right one is never refused; wrong ones are counted per
  address and, past the limit, answered 429 instead of 401/400.
- Requests that cost something whether right or wrong (password-reset mails, registrations) are
  counted and refused past their limits.
"""

import asyncio
import hashlib
import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.auth import repository
from cure.auth.exceptions import TooManyAttempts
from cure.auth.passwords import PasswordHasher
from cure.config import Settings
from cure.kit.db import utcnow

# Advisory locks of the throttle live in their own namespace (the two-int form of the key).
LOCK_NAMESPACE = 0x7468  # "th"


def digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()


@dataclass(frozen=True)
class Limit:
    key: str
    max_failures: int


@dataclass
class Attempt:
    """A password attempt admitted by the throttle: counted as a failure until ``forget``."""

    failure_ids: list[int]
    delay: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Throttle:
    """The brute-force guard of one request: its client address, the side pool its records are
    committed on, and the bounded threads that hash passwords."""

    settings: Settings
    address: str
    sessionmaker: async_sessionmaker[AsyncSession]  # the side pool: short, self-committing
    hasher: PasswordHasher

    # -- keys ----------------------------------------------------------------------------------

    def address_limit(self, kind: str = "address") -> Limit:
        """Failures from this address; ``kind`` keeps separate counts per kind of credential."""
        return Limit(digest(kind, self.address), self.settings.throttle_address_failures)

    def account_limit(self, kind: str, account: str) -> Limit:
        """Failures against one account: ``kind`` is "user" (an email) or "client" (a client_id)."""
        return Limit(digest(kind, account.lower()), self.settings.throttle_account_failures)

    def pair_limit(self, kind: str, account: str) -> Limit:
        value = f"{self.address}\x00{kind}\x00{account.lower()}"
        return Limit(digest("pair", value), self.settings.throttle_pair_failures)

    def reset_limit(self, email: str) -> Limit:
        return Limit(digest("reset", email.lower()), self.settings.throttle_reset_requests)

    def registration_limit(self) -> Limit:
        return Limit(digest("register", self.address), self.settings.throttle_registrations)

    def verification_limit(self, customer_id: uuid.UUID) -> Limit:
        return Limit(digest("verify", str(customer_id)), self.settings.throttle_reset_requests)

    # -- passwords -------------------------------------------------------------------------------

    async def admit(self, session: AsyncSession, kind: str, account: str) -> Attempt:
        """Before a password is checked: refuse (TooManyAttempts), or count the attempt as a
        failure now and say how long to wait before checking it.

        ``session`` is a side-pool session in a transaction the caller commits at once.
        """
        pair = self.pair_limit(kind, account)
        acct = self.account_limit(kind, account)
        addr = self.address_limit()
        limits = (pair, acct, addr)
        # Decisions on one account (from one address, or from all) are serialised, so parallel
        # guesses are admitted exactly up to the limits; the address's count only slows guesses
        # down, so a burst from one address across accounts is not made to queue on it.
        await repository.lock_keys(session, LOCK_NAMESPACE, [pair.key, acct.key])
        now = utcnow()
        since = now - self._window
        counts = await repository.count_failures(session, [lim.key for lim in limits], since=since)
        n_pair, n_acct, n_addr = (counts.get(limit.key, 0) for limit in limits)
        if n_pair >= pair.max_failures:
            raise await self._refusal(session, pair, now=now)
        if n_acct >= acct.max_failures and n_addr >= addr.max_failures:
            # Both an account under attack and an abusive address: the first to calm down lifts it.
            waits = [await self._wait(session, limit, now=now) for limit in (acct, addr)]
            raise TooManyAttempts("too many attempts; try again later", retry_after=min(waits))
        ids = await repository.add_failures(session, [lim.key for lim in limits], now=now)
        await self._maybe_purge(session, now=now)
        delay = self._delay(n_pair, excess=(n_acct - acct.max_failures, n_addr - addr.max_failures))
        return Attempt(ids, delay, {"pair": n_pair, "account": n_acct, "address": n_addr})

    def _delay(self, pair_failures: int, *, excess: tuple[int, ...]) -> float:
        """A growing wait: doubling with each earlier failure of the pair, and with each failure
        past the account's or the address's limit; capped."""
        base = self.settings.throttle_delay_base_seconds
        steps = [pair_failures - 1] + [n for n in excess if n >= 0]
        steps = [n for n in steps if n >= 0]
        if not steps or base == 0:
            return 0.0
        return float(min(base * 2 ** min(max(steps), 16), self.settings.throttle_delay_max_seconds))

    async def wait(self, attempt: Attempt) -> None:
        if attempt.delay > 0:
            await asyncio.sleep(attempt.delay)  # no connection or thread is held meanwhile

    async def forget(self, attempt: Attempt) -> None:
        """The password was right: the attempt was no failure after all."""
        async with self.sessionmaker() as session, session.begin():
            await repository.delete_failures(session, attempt.failure_ids)

    # -- cheap credentials and costly requests ---------------------------------------------------

    async def failed(self, *limits: Limit) -> None:
        """Count a wrong cheap credential; TooManyAttempts when a limit was already used up."""
        async with self.sessionmaker() as session, session.begin():
            # Every wrong one is counted; whether the answer is a 401 or a 429 at the very limit
            # may race, which costs nothing: the right credential is never refused anyway.
            now = utcnow()
            counts = await repository.count_failures(
                session, [limit.key for limit in limits], since=now - self._window
            )
            await repository.add_failures(session, [limit.key for limit in limits], now=now)
            await self._maybe_purge(session, now=now)
            over = [limit for limit in limits if counts.get(limit.key, 0) >= limit.max_failures]
            if not over:
                return
            waits = [await self._wait(session, limit, now=now) for limit in over]
        raise TooManyAttempts("too many failed attempts; try again later", retry_after=max(waits))

    async def spend(self, *limits: Limit) -> None:
        """Count one request under each limit, or refuse it (uncounted) when one is used up."""
        async with self.sessionmaker() as session, session.begin():
            await repository.lock_keys(session, LOCK_NAMESPACE, [limit.key for limit in limits])
            now = utcnow()
            counts = await repository.count_failures(
                session, [limit.key for limit in limits], since=now - self._window
            )
            over = [limit for limit in limits if counts.get(limit.key, 0) >= limit.max_failures]
            if over:
                waits = [await self._wait(session, limit, now=now) for limit in over]
                raise TooManyAttempts("too many attempts; try again later", retry_after=max(waits))
            await repository.add_failures(session, [limit.key for limit in limits], now=now)
            await self._maybe_purge(session, now=now)

    # -- helpers ---------------------------------------------------------------------------------

    @property
    def _window(self) -> timedelta:
        return timedelta(seconds=self.settings.throttle_window_seconds)

    async def _wait(self, session: AsyncSession, limit: Limit, *, now: datetime) -> int:
        """Seconds until the limit's oldest counted failure leaves the window."""
        nth = await repository.nth_latest_failure(
            session, limit.key, since=now - self._window, n=limit.max_failures
        )
        if nth is None:
            return 1
        return max(1, math.ceil((nth + self._window - now).total_seconds()))

    async def _refusal(self, session: AsyncSession, limit: Limit, *, now: datetime) -> Exception:
        wait = await self._wait(session, limit, now=now)
        return TooManyAttempts("too many failed attempts; try again later", retry_after=wait)

    async def _maybe_purge(self, session: AsyncSession, *, now: datetime) -> None:
        # Now and then rather than on every record: concurrent purges of the same rows wait on
        # each other, and old rows do no harm meanwhile (every count looks at the window only).
        if random.random() < 1 / 16:  # noqa: S311 (not security: how often to tidy up)
            await repository.purge_failures(session, before=now - self._window)
