"""The handler every process logs through: records reach the table with every field, and a
broker that is away never blocks the caller (the drops are counted)."""

import logging
import socket
import uuid
from datetime import timedelta

from prometheus_client import REGISTRY

from cure.kit.db import utcnow
from cure.kit.log_handler import BrokerHandler, log_context
from cure.logs.models import LogRecord
from tests.conftest import free_port
from tests.logs.conftest import saved


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"tests.logs.{uuid.uuid4().hex[:8]}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger


async def test_records_reach_the_table_with_every_field(settings, sessionmaker, saver) -> None:
    handler = BrokerHandler(settings.broker_url, settings.log_queue, service="test-handler")
    logger = _logger(handler)
    marker = uuid.uuid4().hex
    order_id, customer_id = uuid.uuid4(), uuid.uuid4()
    before = utcnow()
    try:
        for level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            logger.log(
                getattr(logging, level),
                "%s at %s with password=hunter22",
                marker,
                level,
                extra={"order_id": order_id, "customer_id": customer_id, "city": "Vienna", "n": 3},
            )
        with log_context(order_id=str(order_id)):
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("%s failed", marker)
        rows = await saved(sessionmaker, LogRecord.message.startswith(marker), count=6)
    finally:
        handler.close()

    assert [r.level for r in rows] == [10, 20, 30, 40, 50, 40]
    for row in rows:
        assert row.service == "test-handler" and row.host == socket.gethostname()
        assert row.logger == logger.name
        assert row.order_id == order_id
        assert before - timedelta(seconds=1) <= row.time <= utcnow()
    first = rows[0]
    assert first.message == f"{marker} at DEBUG with password=[REDACTED]"
    assert first.customer_id == customer_id
    assert first.extra == {"city": "Vienna", "n": 3}
    assert rows[-1].customer_id is None  # the context named only the order
    assert "ValueError: boom" in rows[-1].extra["exception"]
    assert handler.dropped == 0


def test_a_stopped_broker_never_blocks_the_caller_and_drops_are_counted() -> None:
    # Nothing listens on this port: to the handler, the broker is down.
    handler = BrokerHandler(
        f"amqp://guest:guest@127.0.0.1:{free_port()}/",
        "cure.logs",
        service="no-broker",
        capacity=50,
    )
    logger = _logger(handler)
    metric = ("cure_log_records_dropped_total", {"service": "no-broker"})
    before = REGISTRY.get_sample_value(*metric) or 0
    try:
        for n in range(2000):
            logger.info("record %d", n)
    finally:
        handler.close()
    # The caller never waited for the broker: past the buffer and one batch in the publisher's
    # hands, records were dropped (a handler that waited would have dropped none).
    assert handler.dropped >= 2000 - 50 - 200
    assert handler.published == 0
    assert REGISTRY.get_sample_value(*metric) == before + handler.dropped


def test_the_broker_client_is_imported_before_the_publisher_thread_starts() -> None:
    """A publisher thread importing kombu while the main thread imports Celery could meet a
    half-initialised module: a `cure worker` died at its start with "cannot import name
    'fxrange' from partially initialized module 'kombu.utils.functional'". The handler loads
    kombu and its transport in the thread that makes it, before its thread runs."""
    import subprocess
    import sys

    check = (
        "import sys, threading\n"
        "from cure.kit.log_handler import BrokerHandler\n"
        "before = set(sys.modules)\n"
        "started = threading.Thread.start\n"
        "seen = []\n"
        "def start(self):\n"
        "    seen.append('kombu.transport.pyamqp' in sys.modules)\n"
        "    started(self)\n"
        "threading.Thread.start = start\n"
        "h = BrokerHandler('amqp://guest:guest@127.0.0.1:9/', 'q', service='t')\n"
        "h.close()\n"
        "print('kombu' not in before, seen)\n"
    )
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[-2] == "True [True]", out.stdout + out.stderr
