"""Verified principals kept by access token in one API process, dropped the moment auth changes.

Verifying a token's principal costs reads of its client, its customer and the revocation list.
An API process keeps the answer for the token, until the first of: the token expires; a notice
that its customer, one of the customer's clients, or its revocation changed (triggers on
``customers``, ``oauth_clients`` and ``revoked_access_tokens`` send ``pg_notify`` on
``cure_auth`` at commit, migration 0010, to every API process); or the process stops hearing
notices, when the whole cache is dropped and nothing is kept until it hears again. There is no
time-to-live: a cached answer is exactly as good as the notices.

A revoked token or a disabled customer thus stops working on every API process as soon as the
notice arrives (the commit's own round trip to each listening connection), never later.

Race: a request that read the database before a change committed, and stores its answer after the
change's notice arrived, would keep a stale answer. Every notice bumps ``generation``; an answer
is stored only if no notice arrived since its read began.
"""

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from cure.kit.listen import Subscription

CHANNEL = "cure_auth"
JTI_PREFIX = "jti:"  # a revoked token's notice; any other payload is a customer's id

P = TypeVar("P")


@dataclass(frozen=True)
class _Entry(Generic[P]):
    principal: P
    customer_id: uuid.UUID
    jti: str
    expires_at: float


class PrincipalCache(Generic[P]):
    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self.generation = 0
        self.hearing = False
        self._entries: OrderedDict[str, _Entry[P]] = OrderedDict()
        self._by_customer: dict[uuid.UUID, set[str]] = {}
        self._by_jti: dict[str, str] = {}

    def subscription(self) -> Subscription:
        return Subscription(CHANNEL, self.on_notice, self.on_hearing)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> P | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if entry.expires_at <= time.time():
            self._drop(token)
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
        """Keep ``principal`` for ``token``, if nothing changed since it was read."""
        if not self.hearing or read_at_generation != self.generation:
            return
        if token in self._entries:
            return
        while len(self._entries) >= self.max_entries:
            self._drop(next(iter(self._entries)))
        self._entries[token] = _Entry(principal, customer_id, jti, expires_at)
        self._by_customer.setdefault(customer_id, set()).add(token)
        self._by_jti[jti] = token

    def on_notice(self, payload: str) -> None:
        self.generation += 1
        if payload.startswith(JTI_PREFIX):
            token = self._by_jti.get(payload.removeprefix(JTI_PREFIX))
            if token is not None:
                self._drop(token)
            return
        try:
            customer_id = uuid.UUID(payload)
        except ValueError:
            self.clear()  # a notice we cannot place: drop everything rather than guess
            return
        for token in list(self._by_customer.get(customer_id, ())):
            self._drop(token)

    def on_hearing(self, hearing: bool) -> None:
        # Either way the notices of the gap are lost: nothing kept from before is trusted.
        self.generation += 1
        self.hearing = hearing
        self.clear()

    def clear(self) -> None:
        self._entries.clear()
        self._by_customer.clear()
        self._by_jti.clear()

    def _drop(self, token: str) -> None:
        entry = self._entries.pop(token, None)
        if entry is None:
            return
        tokens = self._by_customer.get(entry.customer_id)
        if tokens is not None:
            tokens.discard(token)
            if not tokens:
                del self._by_customer[entry.customer_id]
        if self._by_jti.get(entry.jti) == token:
            del self._by_jti[entry.jti]
