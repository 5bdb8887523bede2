"""The notifier's calls: pinned to the checked address, bounded by one deadline."""

import asyncio
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cure.kit import outbound as targets
from cure.notifications.notifier import DeliveryFailed, Notifier
from cure.orders.models import Order
from tests.conftest import until


async def test_the_request_goes_to_the_address_that_was_checked() -> None:
    target = await targets.check_target("http://localhost:8123/hooks/x?a=1", allow_private=True)
    assert target.url in ("http://127.0.0.1:8123/hooks/x?a=1", "http://[::1]:8123/hooks/x?a=1")
    assert target.host == "localhost:8123"
    assert target.tls_name is None
    secure = await targets.check_target("https://localhost/hook", allow_private=True)
    assert secure.url.endswith(":443/hook") and secure.tls_name == "localhost"
    with pytest.raises(targets.TargetRefused):
        await targets.check_target("http://localhost:8123/hooks/x", allow_private=False)


def failed_order(callback_url: str) -> Order:
    """An order as the notifier sees it (not stored: _callback reads only these fields)."""
    return Order(
        id=uuid.uuid4(),
        customer_id=uuid.uuid4(),
        app_id="roi_stats",
        status="FAILED",
        message="x",
        attempt=1,
        updated_at=datetime.now(UTC),
        callback_url=callback_url,
    )


def quick_notifier(settings, deadline: float) -> Notifier:
    return Notifier(
        settings.model_copy(
            update={"allow_private_callbacks": True, "callback_timeout_seconds": deadline}
        ),
        sessionmaker=None,  # type: ignore[arg-type]  (not used by _callback)
    )


class Trickler(BaseHTTPRequestHandler):
    """Answers 200 and then sends its body one byte at a time, for a minute (far past the
    notifier's deadline of 10 s), unless the test stops it first."""

    BYTES = 240  # one every 0.25 s
    stop = threading.Event()
    finished = threading.Event()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(Trickler.BYTES))
        self.end_headers()
        try:
            for _ in range(Trickler.BYTES):
                self.wfile.write(b".")
                self.wfile.flush()
                if Trickler.stop.wait(0.25):
                    return
            Trickler.finished.set()
        except OSError:
            pass  # the notifier hung up: what we want

    def log_message(self, *args: object) -> None:
        pass


async def test_a_trickling_receiver_cannot_hold_the_notifier(settings) -> None:
    Trickler.stop.clear()
    Trickler.finished.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # A roomy deadline (a loopback exchange may be slow under load), still far shorter
        # than the trickle: a notifier that read the body would fail here by its deadline, or
        # without one return only after the whole minute of body.
        notifier = quick_notifier(settings, deadline=10)
        order = failed_order(f"http://127.0.0.1:{server.server_address[1]}/hook")
        # The notifier does not read bodies at all, so it returns on the status line.
        await notifier._callback(order)
        assert not Trickler.finished.is_set()
    finally:
        Trickler.stop.set()
        server.shutdown()
        server.server_close()


async def test_a_receiver_that_never_answers_times_out(settings) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts connections, never answers
    try:
        notifier = quick_notifier(settings, deadline=1)  # it never answers: the deadline fires
        order = failed_order(f"http://127.0.0.1:{listener.getsockname()[1]}/hook")
        with pytest.raises(DeliveryFailed, match="Timeout"):
            await notifier._callback(order)
    finally:
        listener.close()


class Slow(BaseHTTPRequestHandler):
    """Holds each request until the test opens its gate, then answers 204; counts how many
    requests it holds at once."""

    gate = threading.Event()
    lock = threading.Lock()
    now = 0
    most = 0
    served = 0

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        with Slow.lock:
            Slow.now += 1
            Slow.most = max(Slow.most, Slow.now)
        Slow.gate.wait(120)  # the test opens it (the limit only ends a test that failed)
        with Slow.lock:
            Slow.now -= 1
            Slow.served += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_receiver():  # type: ignore[no-untyped-def]
    Slow.now = Slow.most = Slow.served = 0
    Slow.gate.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    Slow.gate.set()  # whatever the test did: no request stays held
    server.shutdown()
    server.server_close()


async def _orders_with_callback(settings, url: str, count: int) -> list[uuid.UUID]:  # type: ignore[no-untyped-def]
    import httpx

    from tests.conftest import started_app
    from tests.factories import customer_with_token, order_body

    roomy = settings.model_copy(update={"allow_private_callbacks": True, "max_active_orders": 100})
    async with started_app(roomy) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
            _, headers = await customer_with_token(http)
            ids = []
            for _ in range(count):
                answer = await http.post(
                    "/v1/apps/roi_stats/orders",
                    json=order_body(callback_url=url),
                    headers=headers,
                )
                assert answer.status_code == 202, answer.text
                ids.append(uuid.UUID(answer.json()["order_id"]))
    return ids


def _notifier(settings, **overrides):  # type: ignore[no-untyped-def]
    from cure.kit.db import make_engine, make_sessionmaker

    engine = make_engine(settings.database_url, pool_size=2, max_overflow=0)
    # A roomy deadline: a call stays held until the test opens the gate, however slow it is.
    tuned = settings.model_copy(
        update={"allow_private_callbacks": True, "callback_timeout_seconds": 60, **overrides}
    )
    return Notifier(tuned, make_sessionmaker(engine)), engine


def _claim(order_id: uuid.UUID):  # type: ignore[no-untyped-def]
    from cure.notifications.notifier import Claim
    from cure.orders.events import ORDER_CALLBACK

    # No outbox row behind it (-1): the delivery itself is what is observed here.
    return Claim(message_id=-1, kind=ORDER_CALLBACK, order_id=order_id, attempts=1)


async def test_no_database_connection_is_held_while_a_callback_is_called(
    settings, slow_receiver
) -> None:
    (order_id,) = await _orders_with_callback(settings, slow_receiver, 1)
    notifier, engine = _notifier(settings)
    delivery = asyncio.create_task(notifier.deliver_all([_claim(order_id)]))
    try:
        # until the receiver holds the call: it holds it until the gate opens
        await until(lambda: Slow.now == 1 or delivery.done(), 60)
        assert Slow.now == 1, delivery
        assert engine.pool.checkedout() == 0
        Slow.gate.set()
        await delivery
        assert Slow.served == 1
    finally:
        Slow.gate.set()
        await asyncio.gather(delivery, return_exceptions=True)
        await engine.dispose()


async def test_deliveries_at_once_stay_below_the_pool(settings, slow_receiver) -> None:
    ids = await _orders_with_callback(settings, slow_receiver, 8)
    notifier, engine = _notifier(settings, notify_concurrency=3)
    delivery = asyncio.create_task(notifier.deliver_all([_claim(order_id) for order_id in ids]))
    try:
        # Three calls held at once, as many as the notifier may make: held until the gate
        # opens, so the test cannot miss them. Then the rest go through, never more at once.
        await until(lambda: Slow.now >= 3 or delivery.done(), 60)
        Slow.gate.set()
        await delivery
    finally:
        Slow.gate.set()
        await asyncio.gather(delivery, return_exceptions=True)
        await engine.dispose()
    assert Slow.served == 8
    assert Slow.most == 3


async def test_a_host_that_never_resolves_is_given_up_within_the_deadline(settings) -> None:
    async def never(host: str, port: int) -> list[str]:  # a DNS server that does not answer
        await asyncio.sleep(3600)
        return []

    notifier = Notifier(
        settings.model_copy(update={"callback_timeout_seconds": 0.5}),
        sessionmaker=None,  # type: ignore[arg-type]  (not used by _callback)
        resolver=never,
    )
    with pytest.raises(DeliveryFailed, match="Timeout"):  # not after the resolver's hour
        await notifier._callback(failed_order("https://hooks.example.org/x"))


def test_notify_concurrency_must_stay_below_the_pool_size(settings) -> None:
    from pydantic import ValidationError

    from cure.config import Settings

    with pytest.raises(ValidationError, match="below CURE_DATABASE_POOL_SIZE"):
        Settings(notify_concurrency=10, database_pool_size=10)
