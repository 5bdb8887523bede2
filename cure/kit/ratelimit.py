"""A token bucket per client, in this process's memory: cheap enough to guard cheap reads.

The brute-force throttle (``cure.auth.throttle``) keeps its counts in the database so every replica
sees them; a guard on every anonymous catalogue read cannot cost a write per request, so each API
process keeps its own buckets. With N processes a client may read up to N times the rate.
"""

import math
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_CLIENTS = 10_000  # buckets kept; the least recently seen client is forgotten first


class TokenBuckets:
    """``per_minute`` requests a minute per client, in bursts of up to a minute's worth."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when

    def take(self, client: str) -> int:
        """Take a token: 0 when there was one, else the whole seconds until there is."""
        now = self.clock()
        tokens, then = self._buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - then) * self.rate)
        if tokens >= 1:
            tokens -= 1
            wait = 0
        else:
            wait = max(1, math.ceil((1 - tokens) / self.rate))
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait
