"""Who waits on order logs in one API process: caps on their number, and their wake-ups.

A long poll (``?wait=``) or an event stream of an order's log holds no database connection while
it waits: it waits on an ``asyncio.Event`` of its order, set when a notice on ``cure_order_logs``
names the order (records saved for it, or its final state: triggers of migration 0012, sent at
commit) and when the process's listener starts or stops hearing notices (those of the gap are
lost, so every waiter reads again). A waiter takes its order's event *before* it reads, so a
notice that arrives between its read and its wait still wakes it.

Each wait takes a slot: at most ``per_customer`` for one customer and ``per_process`` in all;
past either, ``TooManyRequests`` (429 with Retry-After). When the process stops (SIGTERM), every
wait ends at once with what it has, streams close, and new ones are refused (503, Retry-After).
"""

import asyncio
import uuid
import weakref
from collections import Counter
from types import TracebackType

from cure.kit.errors import ServiceUnavailable, TooManyRequests
from cure.kit.listen import Subscription

CHANNEL = "cure_order_logs"
RETRY_AFTER_SECONDS = 5


class Stopping(ServiceUnavailable):
    """The API process is stopping: follow the log again (another process answers)."""

    headers = {"Retry-After": "1"}


class WaitSlot:
    """One admitted wait; ``release`` (or leaving the ``with`` block) gives it back, once."""

    def __init__(self, waiters: "OrderLogWaiters", customer_id: uuid.UUID) -> None:
        self._waiters: OrderLogWaiters | None = waiters
        self.customer_id = customer_id

    def release(self) -> None:
        if self._waiters is not None:
            self._waiters._give_back(self.customer_id)
            self._waiters = None

    def __enter__(self) -> "WaitSlot":
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.release()


class OrderLogWaiters:
    def __init__(self, *, per_customer: int, per_process: int) -> None:
        self.per_customer = per_customer
        self.per_process = per_process
        self._held: Counter[uuid.UUID] = Counter()
        self._total = 0
        self._stopping = False
        # An order's event lives as long as someone waits on it.
        self._changes: weakref.WeakValueDictionary[uuid.UUID, asyncio.Event] = (
            weakref.WeakValueDictionary()
        )

    def subscription(self) -> Subscription:
        return Subscription(CHANNEL, self.on_notice, self.on_hearing)

    def held(self, customer_id: uuid.UUID | None = None) -> int:
        """Waits admitted now: the customer's, or all of this process's."""
        return self._total if customer_id is None else self._held[customer_id]

    @property
    def stopping(self) -> bool:
        """The process is stopping: waits end now and no new one starts."""
        return self._stopping

    def stop(self) -> None:
        """End every wait and stream now (they answer what they have) and admit no more."""
        self._stopping = True
        self._wake_all()

    def admit(self, customer_id: uuid.UUID) -> WaitSlot:
        """A slot for one more wait of the customer, or ``TooManyRequests``; ``Stopping`` once
        the process stops."""
        if self._stopping:
            raise Stopping("this server is stopping; ask again (another one answers)")
        if self._held[customer_id] >= self.per_customer:
            raise TooManyRequests(
                f"at most {self.per_customer} long polls and event streams of order logs "
                "at once per customer; wait for one to end",
                retry_after=RETRY_AFTER_SECONDS,
            )
        if self._total >= self.per_process:
            raise TooManyRequests(
                "this server follows as many order logs as it can now; try again shortly",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self._held[customer_id] += 1
        self._total += 1
        return WaitSlot(self, customer_id)

    def _give_back(self, customer_id: uuid.UUID) -> None:
        self._held[customer_id] -= 1
        if self._held[customer_id] <= 0:
            del self._held[customer_id]
        self._total -= 1

    def change_of(self, order_id: uuid.UUID) -> asyncio.Event:
        """An event set at the next notice about the order (take it before reading)."""
        event = self._changes.get(order_id)
        if event is None:
            event = asyncio.Event()
            if self._stopping:
                event.set()  # nothing waits any more
                return event
            self._changes[order_id] = event
        return event

    def on_notice(self, payload: str) -> None:
        try:
            order_id = uuid.UUID(payload)
        except ValueError:
            self._wake_all()  # a notice we cannot place: everyone reads again
            return
        event = self._changes.pop(order_id, None)
        if event is not None:
            event.set()

    def on_hearing(self, _hearing: bool) -> None:
        # Either way notices of the gap are lost: every waiter reads again.
        self._wake_all()

    def _wake_all(self) -> None:
        events = list(self._changes.values())
        self._changes.clear()
        for event in events:
            event.set()
