"""What runs where: every long-running service of CURE, in one table.

Each row says what a service does, where it runs (``api-leader``: in the one API process that
holds the ``services`` advisory lock, cure.kit.leader; ``api``: in every API process;
``worker``: in every Celery worker), which ``cure`` sub-command runs it alone (for a deployment
that splits them off the API), which PostgreSQL notices wake it and the metrics it feeds.

``start`` is the one loop that starts them: ``cure api``'s leader calls it for every
``api-leader`` service, and each stand-alone command (``cure relay``, ``cure order-events``,
``cure log-saver``) for those of its command, through ``run_alone``. The README's process table
is ``process_table()``; a test keeps the two equal.
"""

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

# Only the standard library at import: `cure` builds its command line from this table before
# `cure worker` names the metrics' multiprocess folder, which must come before prometheus_client
# is first imported (cure.kit.metrics). What the services are made of is imported when started.
if TYPE_CHECKING:
    from cure.kit.listen import Subscription
    from cure.kit.resources import Resources
    from cure.logs.saver import LogSaver
    from cure.orders.event_consumer import OrderEventConsumer
    from cure.outbox.relay import OutboxRelay

Where = Literal["api-leader", "api", "worker"]
# The notices' channels (a test checks them against their modules' constants).
OUTBOX_CHANNEL = "cure_outbox"
ORDER_LOGS_CHANNEL = "cure_order_logs"
AUTH_CHANNEL = "cure_auth"
SOURCES_CHANNEL = "cure_sources"


@dataclass
class Parts:
    """The components the services of one process share, made at their first use: the order
    events and the dead letters are one consumer's two loops, the saver and the retention one
    saver's."""

    resources: "Resources"
    relay: "OutboxRelay | None" = None
    _consumer: "OrderEventConsumer | None" = field(default=None, init=False)
    _saver: "LogSaver | None" = field(default=None, init=False)

    @property
    def outbox_relay(self) -> "OutboxRelay":
        if self.relay is None:
            self.relay = make_relay(self.resources)
        return self.relay

    @property
    def order_events(self) -> "OrderEventConsumer":
        from cure.orders.event_consumer import OrderEventConsumer

        if self._consumer is None:
            self._consumer = OrderEventConsumer(
                self.resources.settings, self.resources.sessionmaker
            )
        return self._consumer

    @property
    def log_saver(self) -> "LogSaver":
        from cure.logs.saver import LogSaver

        if self._saver is None:
            self._saver = LogSaver(self.resources.settings, self.resources.sessionmaker)
        return self._saver

    def reconciler(self) -> Awaitable[None]:
        from cure.orders.reconciler import Reconciler

        return Reconciler(self.resources.settings, self.resources.sessionmaker).run()

    def notifier(self) -> Awaitable[None]:
        from cure.notifications.notifier import Notifier

        return Notifier(self.resources.settings, self.resources.sessionmaker).run()

    def result_tidier(self) -> Awaitable[None]:
        from cure.orders.tidy import ResultTidier

        return ResultTidier(self.resources.settings, self.resources.sessionmaker).run()


@dataclass(frozen=True)
class Service:
    name: str
    does: str
    where: Where
    command: str | None  # the sub-command that runs it alone; None: only where it is
    run: Callable[[Parts], Awaitable[None]] | None = None  # None: started by its process itself
    wakes_on: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()


def make_relay(resources: "Resources") -> "OutboxRelay":
    """The outbox relay with every domain's hooks (today: orders' dispatch)."""
    from cure.orders import dispatch
    from cure.outbox.relay import OutboxRelay

    settings = resources.settings
    return OutboxRelay(
        settings,
        resources.sessionmaker,
        hooks={dispatch.RUN_ORDER: dispatch.DispatchHooks()},
        declare=functools.partial(dispatch.declare_topology, settings),
    )


def relay_wakeup(relay: "OutboxRelay") -> "Subscription":
    """Wake the relay when any process adds to the outbox, and once the notices are heard again
    (what was added while they were not is published then)."""
    from cure.kit.listen import Subscription

    return Subscription(
        OUTBOX_CHANNEL, lambda _payload: relay.wake(), lambda _hearing: relay.wake()
    )


SERVICES: tuple[Service, ...] = (
    Service(
        "outbox-relay",
        "publishes what the database's outbox holds (order jobs) to RabbitMQ, with confirms",
        "api-leader",
        "relay",
        run=lambda parts: parts.outbox_relay.run(),
        wakes_on=(OUTBOX_CHANNEL,),
        metrics=("cure_outbox_backlog", "cure_outbox_oldest_seconds"),
    ),
    Service(
        "order-events",
        "applies the workers' status events to the orders (history, final states, results)",
        "api-leader",
        "order-events",
        run=lambda parts: parts.order_events.run(),
        metrics=("cure_orders_finished_total", "cure_order_duration_seconds"),
    ),
    Service(
        "dead-letters",
        "fails the orders whose job RabbitMQ dead-lettered, naming why",
        "api-leader",
        "order-events",
        run=lambda parts: parts.order_events.run_dead_letters(),
    ),
    Service(
        "reconciler",
        "requeues or fails orders whose run went silent (no heartbeat) or stayed queued too long",
        "api-leader",
        "order-events",
        run=lambda parts: parts.reconciler(),
    ),
    Service(
        "notifier",
        "sends the emails and callbacks the outbox holds, retrying with a growing pause",
        "api-leader",
        "order-events",
        run=lambda parts: parts.notifier(),
        metrics=("cure_notifications_total",),
    ),
    Service(
        "result-tidier",
        "removes stored files no order keeps (a losing or cancelled run's)",
        "api-leader",
        "order-events",
        run=lambda parts: parts.result_tidier(),
    ),
    Service(
        "log-saver",
        "writes the log records of every process from RabbitMQ's logs queue to the database",
        "api-leader",
        "log-saver",
        run=lambda parts: parts.log_saver.run(),
        metrics=("cure_log_records_saved_total", "cure_log_records_rejected_total"),
    ),
    Service(
        "log-retention",
        "deletes log records older than their retention",
        "api-leader",
        "log-saver",
        run=lambda parts: parts.log_saver.run_retention(),
    ),
    Service(
        "notice-listener",
        "hears PostgreSQL's notices and wakes what waits on them: the relay, order-log waits, "
        "the token cache, the catalogue sources",
        "api",
        None,
        wakes_on=(OUTBOX_CHANNEL, ORDER_LOGS_CHANNEL, AUTH_CHANNEL, SOURCES_CHANNEL),
    ),
    Service(
        "leadership",
        "holds the services advisory lock; its holder runs the api-leader services",
        "api",
        None,
    ),
    Service(
        "container-sweeper",
        "removes this deployment's app containers and volumes that no run owns",
        "worker",
        None,
    ),
)

COMMANDS = tuple(dict.fromkeys(s.command for s in SERVICES if s.command))
# The old name of ``cure order-events``, kept for one release.
ALIASES = {"status-manager": "order-events"}


def services(*, command: str | None = None) -> tuple[Service, ...]:
    """The services ``cure api``'s leader starts (no command), or those of a sub-command."""
    if command is None:
        return tuple(s for s in SERVICES if s.where == "api-leader")
    command = ALIASES.get(command, command)
    return tuple(s for s in SERVICES if s.command == command)


def start(parts: Parts, chosen: tuple[Service, ...]) -> list[asyncio.Task[None]]:
    """Start each service's loop as a task named after it."""
    tasks = []
    for service in chosen:
        if service.run is None:
            raise ValueError(f"{service.name} is started by its own process")
        tasks.append(asyncio.create_task(_as_coroutine(service.run(parts)), name=service.name))
    return tasks


async def _as_coroutine(work: Awaitable[None]) -> None:
    await work


async def run_alone(command: str, resources: "Resources") -> None:
    """A sub-command's services, with a notice listener of their own for those that wake on
    notices (the relay), until they end or the process is stopped."""
    from cure.kit.listen import Listener

    parts = Parts(resources)
    chosen = services(command=command)
    tasks = start(parts, chosen)
    if any(s.name == "outbox-relay" for s in chosen):  # the only one woken by notices
        listener = Listener(resources.settings.database_url)
        listener.subscribe(relay_wakeup(parts.outbox_relay))
        tasks.append(asyncio.create_task(listener.run(), name="notice-listener"))
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if parts.relay is not None:
            await parts.relay.close()


def process_table() -> str:
    """The README's table of processes and services (Markdown)."""
    where = {
        "api-leader": "`cure api` (the leader process)",
        "api": "`cure api` (every process)",
        "worker": "`cure worker` (every worker)",
    }
    rows = [
        "| service | what it does | runs in | alone as | woken by |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in SERVICES:
        alone = f"`cure {s.command}`" if s.command else "—"
        woken = ", ".join(f"`{c}`" for c in s.wakes_on) or "—"
        rows.append(f"| {s.name} | {s.does} | {where[s.where]} | {alone} | {woken} |")
    return "\n".join(rows) + "\n"
