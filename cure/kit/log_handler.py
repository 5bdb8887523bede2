"""The logging handler every CURE process logs through, and the console format (plumbing: any
layer may log into an order's own log through it, orders and workers included).

``BrokerHandler.emit`` never does I/O: it turns the record into a dict and puts it in a bounded
buffer. A thread of the handler's own publishes the buffer to the logs queue in batches, with
publisher confirms, reconnecting with a growing pause while the broker is away. When the buffer
is full the record is dropped and counted (``dropped`` and ``cure_log_records_dropped_total``):
a slow or stopped broker never blocks or crashes the code that logs.
"""

import contextlib
import contextvars
import json
import logging
import os
import queue
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from cure.kit.metrics import LOG_RECORDS_DROPPED
from cure.kit.redact import redact

# Loggers whose records belong in an order's own log, shown to the order's owner.
ORDER_STEPS_LOGGER = "cure.order.steps"  # what the pipeline does (finding inputs, running ...)
ORDER_APP_LOGGER = "cure.order.app"  # the app container's stdout and stderr, line by line
ORDER_LOGGERS = (ORDER_STEPS_LOGGER, ORDER_APP_LOGGER)

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "cure_log_context", default=None
)
BATCH = 200


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Fields (order_id, customer_id, ...) added to every record logged inside the block."""
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_json_safe(v) for v in value]
    return redact(str(value))


def record_fields(record: logging.LogRecord, *, service: str, host: str) -> dict[str, Any]:
    """The wire form of a record: time, service, host, level, logger, message, order and
    customer ids where known, and every extra field (secrets redacted)."""
    extra: dict[str, Any] = dict(_CONTEXT.get() or {})
    extra.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
    order_id = extra.pop("order_id", None)
    customer_id = extra.pop("customer_id", None)
    if record.exc_info:
        extra["exception"] = "".join(traceback.format_exception(*record.exc_info))[-8000:]
    level = logging.getLevelName(record.levelno) if record.levelno % 10 == 0 else None
    return {
        "id": str(uuid.uuid4()),
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
        "service": service,
        "host": host,
        "level": level if level in _LEVELS else _nearest(record.levelno),
        "logger": record.name[:255],
        "message": redact(record.getMessage())[:32768],
        "order_id": str(order_id) if order_id else None,
        "customer_id": str(customer_id) if customer_id else None,
        "extra": _json_safe(extra),
    }


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _nearest(levelno: int) -> str:
    return _LEVELS[max(0, min(4, levelno // 10 - 1))]


class BrokerHandler(logging.Handler):
    def __init__(
        self,
        broker_url: str,
        queue_name: str,
        *,
        service: str,
        capacity: int = 10000,
        host: str | None = None,
        level: int = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        self.broker_url = broker_url
        self.queue_name = queue_name
        self.service = service
        self.host = host or socket.gethostname()
        self.capacity = capacity
        self.dropped = 0
        self.published = 0
        self._closed = False
        self._start()
        if hasattr(os, "register_at_fork"):
            # A forked pool process gets a buffer and a publisher thread of its own.
            os.register_at_fork(after_in_child=self._start)

    def _start(self) -> None:
        if self._closed:
            return
        # The broker client and its transport are imported here, in the starting thread, not
        # by the publisher thread: a thread importing kombu while the main thread imports
        # Celery (which imports kombu) can meet a half-initialised module and die with an
        # ImportError, and a worker then stops at its start (seen in the tests).
        from kombu import Connection

        with contextlib.suppress(Exception):
            Connection(self.broker_url).transport  # noqa: B018 (loads the transport module)
        self._buffer: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=self.capacity)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._publish_loop, name="cure-logs", daemon=True)
        self._thread_id: int | None = None
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        if threading.get_ident() == self._thread_id:
            return  # the publisher's own records (the broker client's) would feed themselves
        try:
            fields = record_fields(record, service=self.service, host=self.host)
        except Exception:
            self.handleError(record)
            return
        try:
            self._buffer.put_nowait(fields)
        except queue.Full:
            self.dropped += 1
            LOG_RECORDS_DROPPED.labels(self.service).inc()

    def _take_batch(self, timeout: float) -> list[dict[str, Any]]:
        try:
            batch = [self._buffer.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(batch) < BATCH:
            try:
                batch.append(self._buffer.get_nowait())
            except queue.Empty:
                break
        return batch

    def _publish_loop(self) -> None:
        from kombu import Connection

        self._thread_id = threading.get_ident()
        pending: list[dict[str, Any]] = []
        pause = 0.5
        while True:
            if self._stop.is_set() and not pending and self._buffer.empty():
                return
            try:
                with Connection(
                    self.broker_url,
                    connect_timeout=2,
                    transport_options={"confirm_publish": True},
                ) as connection:
                    connection.ensure_connection(max_retries=1, timeout=2)
                    producer = connection.Producer()
                    connection.default_channel.queue_declare(
                        queue=self.queue_name, durable=True, auto_delete=False
                    )
                    pause = 0.5
                    while True:
                        if not pending:
                            pending = self._take_batch(0.2)
                        if not pending:
                            if self._stop.is_set():
                                return
                            continue
                        producer.publish(
                            json.dumps(pending).encode(),
                            routing_key=self.queue_name,
                            exchange="",
                            content_type="application/json",
                            content_encoding="utf-8",
                            delivery_mode=2,
                            retry=False,
                        )
                        self.published += len(pending)
                        pending = []
            except Exception:  # any broker failure: wait, then reconnect
                if self._stop.is_set():
                    return  # closing with the broker away: nothing more can be sent
                time.sleep(pause)
                pause = min(pause * 2, 10)

    def flush(self, timeout: float = 5) -> None:
        """Wait (bounded) until the buffer is empty: for tests and clean exits."""
        deadline = time.monotonic() + timeout
        while not self._buffer.empty() and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        self._closed = True
        self._stop.set()
        if self._thread.is_alive() and threading.get_ident() != self._thread_id:
            self._thread.join(timeout=3)
        super().close()


class ConsoleFormatter(logging.Formatter):
    """Readable lines for a terminal: time, level, logger, the order it concerns, the message,
    then any extra fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        extra = {**(_CONTEXT.get() or {})}
        extra.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        order = extra.pop("order_id", None)
        extra.pop("customer_id", None)
        where = f" [order {str(order)[:8]}]" if order else ""
        tail = " ".join(f"{k}={v}" for k, v in extra.items() if v is not None)
        line = f"{stamp} {record.levelname:<7} {record.name}{where}: {record.getMessage()}"
        if tail:
            line += f"  ({tail})"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


_INSTALLED: list[logging.Handler] = []


def configure_logging(
    *,
    service: str,
    level: str = "INFO",
    broker_url: str | None = None,
    queue_name: str = "cure.logs",
    capacity: int = 10000,
) -> BrokerHandler | None:
    """Log to the terminal, readably, and (with ``broker_url``) to the logs queue as structured
    records. Replaces what an earlier call installed; returns the broker handler."""
    root = logging.getLogger()
    for handler in _INSTALLED:
        root.removeHandler(handler)
        handler.close()
    _INSTALLED.clear()
    console = logging.StreamHandler()
    console.setFormatter(ConsoleFormatter())
    _INSTALLED.append(console)
    broker: BrokerHandler | None = None
    if broker_url:
        broker = BrokerHandler(broker_url, queue_name, service=service, capacity=capacity)
        _INSTALLED.append(broker)
    for handler in _INSTALLED:
        root.addHandler(handler)
    root.setLevel(level)
    # The broker clients are chatty at INFO about every reconnect; httpx logs every request's
    # URL at INFO, and a presigned link's query is a credential.
    for noisy in (
        "aio_pika",
        "aiormq",
        "amqp",
        "kombu",
        "botocore",
        "urllib3",
        "docker",
        "httpx",
        "httpcore",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return broker
