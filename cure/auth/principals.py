"""Verified principals kept by access token in one API process, dropped the moment auth changes.

Verifying a token's principal costs reads of its client, its customer and the revocation list.
An API process keeps the answer for the token, until the first of: the token expires; a notice
that its customer, one of the customer's clients, or its revocation changed (triggers on
``customers``, ``oauth_clients`` and ``revoked_access_tokens`` send ``pg_notify`` on
``cure_auth`` at commit, migration 0010, to every API process); the backstop time
(``CURE_PRINCIPAL_CACHE_SECONDS``) since it was read, which bounds what a notice lost without the
listener noticing can cost; or the process stops hearing notices, when the whole cache is dropped
and nothing is kept until it hears again.

A revoked token or a disabled customer thus stops working on every API process as soon as the
notice arrives (the commit's own round trip to each listening connection), never later.

Entries are kept by the token's identity (``cure.auth.tokens.token_key``: its jti and a digest of
its decoded bytes), not by the text it was sent as, and a token is looked up only if it is spelled
canonically: lenient base64url decoding reads several texts as one signed token, and none of them
may outlive the token's revocation. A revocation's notice names a jti and drops every entry of it.

Read your own writes: the notice of a change reaches this process's listener a moment after the
commit, and the same client's next request may come first (verify the email, then order). A
session whose ``info["principals"]`` is this process's cache notes what it changed (customers and
clients written through the ORM, revoked tokens through ``note_revoked``) and drops those entries
from the cache itself right after its commit, before the response goes out.

Race: a request that read the database before a change committed, and stores its answer after the
change's notice arrived, would keep a stale answer. Every notice bumps ``generation``; an answer
is stored only if no notice arrived since its read began.
"""

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

from cure.auth.models import Customer, OAuthClient
from cure.auth.tokens import TokenKey, token_key
from cure.kit.listen import Subscription

CHANNEL = "cure_auth"
JTI_PREFIX = "jti:"  # a revoked token's notice; any other payload is a customer's id

P = TypeVar("P")
N = TypeVar("N")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the customer behind a verified access token, and what it may do."""

    customer_id: uuid.UUID
    client_id: str
    scopes: frozenset[str]
    is_admin: bool  # an admin customer whose token carries the admin scope
    email_verified: bool = False


@dataclass(frozen=True)
class _Entry(Generic[P]):
    principal: P
    customer_id: uuid.UUID
    expires_at: float
    text: str  # the token as it was verified


class PrincipalCache(Generic[P]):
    def __init__(
        self,
        max_entries: int = 10_000,
        *,
        ttl_seconds: float = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.generation = 0
        self.hearing = False
        self._entries: OrderedDict[TokenKey, _Entry[P]] = OrderedDict()
        self._by_customer: dict[uuid.UUID, set[TokenKey]] = {}
        self._by_jti: dict[str, set[TokenKey]] = {}
        # The text each kept token was verified as, and its identity: a lookup by the text
        # itself, instead of ``token_key`` (decoding, JSON and a digest: a tenth of a status
        # read's CPU) on every request. Only kept tokens are here, so texts nobody verified
        # take no memory; and a canonical text has one identity (``token_key`` refuses the
        # others), so a text not here has no entry: nothing kept or dropped changes.
        self._texts: dict[str, TokenKey] = {}

    def subscription(self) -> Subscription:
        return Subscription(CHANNEL, self.on_notice, self.on_hearing)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> P | None:
        """The principal kept for ``token``; None if none is, or the token is not spelled
        canonically (the caller then verifies it, and refuses it)."""
        key = self._texts.get(token)
        if key is None:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self.clock():
            self._drop(key)
            return None
        return entry.principal

    def put(
        self,
        token: str,
        principal: P,
        *,
        customer_id: uuid.UUID,
        jti: str,
        expires_at: float,
        read_at_generation: int,
    ) -> None:
        """Keep ``principal`` for ``token`` (verified, with this ``jti``), if nothing changed
        since it was read; until the token expires or the backstop time passes."""
        if not self.hearing or read_at_generation != self.generation:
            return
        key = token_key(token)
        if key.jti != jti or key in self._entries:
            return
        while len(self._entries) >= self.max_entries:
            self._drop(next(iter(self._entries)))
        expires_at = min(expires_at, self.clock() + self.ttl_seconds)
        self._entries[key] = _Entry(principal, customer_id, expires_at, token)
        self._texts[token] = key
        self._by_customer.setdefault(customer_id, set()).add(key)
        self._by_jti.setdefault(jti, set()).add(key)

    def on_notice(self, payload: str) -> None:
        self.generation += 1
        if payload.startswith(JTI_PREFIX):
            for key in list(self._by_jti.get(payload.removeprefix(JTI_PREFIX), ())):
                self._drop(key)
            return
        try:
            customer_id = uuid.UUID(payload)
        except ValueError:
            self.clear()  # a notice we cannot place: drop everything rather than guess
            return
        for key in list(self._by_customer.get(customer_id, ())):
            self._drop(key)

    def on_hearing(self, hearing: bool) -> None:
        # Either way the notices of the gap are lost: nothing kept from before is trusted.
        self.generation += 1
        self.hearing = hearing
        self.clear()

    def clear(self) -> None:
        self._entries.clear()
        self._texts.clear()
        self._by_customer.clear()
        self._by_jti.clear()

    def _drop(self, key: TokenKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._texts.pop(entry.text, None)
        _discard(self._by_customer, entry.customer_id, key)
        _discard(self._by_jti, key.jti, key)


def _discard(index: dict[N, set[TokenKey]], name: N, key: TokenKey) -> None:
    keys = index.get(name)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[name]


# -- this process's own changes ---------------------------------------------------------------

_NOTED = "principals_noted"


def note_revoked(session: Any, jtis: Iterable[str]) -> None:
    """Record, in ``session`` (sync or async), access tokens it revokes."""
    if session.info.get("principals") is not None:
        session.info.setdefault(_NOTED, set()).update(JTI_PREFIX + jti for jti in jtis)


@event.listens_for(Session, "after_flush")
def _note_changes(session: Session, _context: object) -> None:
    if session.info.get("principals") is None:
        return
    noted = session.info.setdefault(_NOTED, set())
    for changed in (*session.new, *session.dirty, *session.deleted):
        if isinstance(changed, Customer):
            noted.add(str(changed.id))
        elif isinstance(changed, OAuthClient):
            noted.add(str(changed.customer_id))


@event.listens_for(Session, "after_commit")
def _drop_changed(session: Session) -> None:
    cache = session.info.get("principals")
    noted = session.info.pop(_NOTED, ())
    if cache is not None:
        for payload in noted:
            cache.on_notice(payload)


@event.listens_for(Session, "after_soft_rollback")
def _forget_changes(session: Session, _previous: object) -> None:
    session.info.pop(_NOTED, None)
