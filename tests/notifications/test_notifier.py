"""The notifier's calls: pinned to the checked address, bounded by one deadline."""

import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cure.kit import outbound as targets
from cure.notifications.notifier import DeliveryFailed, Notifier
from cure.orders.models import Order


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


def quick_notifier(settings) -> Notifier:
    return Notifier(
        settings.model_copy(
            update={"allow_private_callbacks": True, "callback_timeout_seconds": 1}
        ),
        sessionmaker=None,  # type: ignore[arg-type]  (not used by _callback)
    )


class Trickler(BaseHTTPRequestHandler):
    """Answers 200 and then sends its body one byte at a time, for a long while."""

    finished = threading.Event()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "40")
        self.end_headers()
        try:
            for _ in range(40):
                self.wfile.write(b".")
                self.wfile.flush()
                time.sleep(0.25)
            Trickler.finished.set()
        except OSError:
            pass  # the notifier hung up: what we want

    def log_message(self, *args: object) -> None:
        pass


async def test_a_trickling_receiver_cannot_hold_the_notifier(settings) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        notifier = quick_notifier(settings)
        order = failed_order(f"http://127.0.0.1:{server.server_address[1]}/hook")
        # Without a deadline on the whole exchange this call would wait for the slow body; the
        # notifier does not read bodies at all, so it returns on the status line.
        await notifier._callback(order)
        assert not Trickler.finished.is_set()
    finally:
        server.shutdown()
        server.server_close()


async def test_a_receiver_that_never_answers_times_out(settings) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts connections, never answers
    try:
        notifier = quick_notifier(settings)
        order = failed_order(f"http://127.0.0.1:{listener.getsockname()[1]}/hook")
        with pytest.raises(DeliveryFailed, match="Timeout"):
            await notifier._callback(order)
    finally:
        listener.close()
