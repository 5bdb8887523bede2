"""Final-state emails and signed callbacks from a running stack, through real SMTP and HTTP."""

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cure.notifications import signing
from tests.conftest import Stack, running_stack, write_apps_dir
from tests.factories import order_body, wait_final


class Receiver:
    """A callback receiver on 127.0.0.1 that fails its first ``failures`` requests."""

    def __init__(self, failures: int) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.failures = failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                failing = len(receiver.requests) <= receiver.failures
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/cure"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def stack(engine, smtp, tmp_path_factory) -> Iterator[Stack]:
    with running_stack(
        "notify",
        CURE_APPS_DIR=str(write_apps_dir(tmp_path_factory.mktemp("notify"))),
        CURE_SMTP_PORT=str(smtp.port),
        CURE_ALLOW_PRIVATE_CALLBACKS="true",  # the receiver is on loopback
        CURE_NOTIFY_RETRY_BASE_SECONDS="0.5",
        CURE_NOTIFY_RETRY_MAX_SECONDS="1",
    ) as running:
        yield running


def auth(account: dict[str, str]) -> dict[str, str]:
    return {"Authorization": account["Authorization"]}


async def order(http, account, app: str = "probe", **fields) -> dict:
    response = await http.post(
        f"/v1/apps/{app}/orders", json=order_body(**fields), headers=auth(account)
    )
    assert response.status_code == 202, response.text
    return await wait_final(http, response.json()["order_id"], auth(account))


async def test_failed_and_invalid_orders_email_their_reason(http, smtp, account) -> None:
    failed = await order(http, account, params={"mode": "crash"})
    invalid = await order(http, account, params={"mode": "invalid"})
    assert (failed["status"], invalid["status"]) == ("FAILED", "INVALID")
    deadline = time.monotonic() + 15
    while len(smtp.mailbox.to(account["email"])) < 2:
        assert time.monotonic() < deadline, "the emails did not arrive"
        await asyncio.sleep(0.2)
    by_subject = {m["Subject"]: m.get_content() for m in smtp.mailbox.to(account["email"])}
    failed_mail = by_subject[f"CURE order {failed['order_id']}: FAILED"]
    invalid_mail = by_subject[f"CURE order {invalid['order_id']}: INVALID"]
    assert "Reason: the app exited with code 7: something broke" in failed_mail
    assert "Reason: no product for this date" in invalid_mail


async def test_opting_out_sends_no_email(http, smtp, account) -> None:
    final = await order(http, account, app="roi_stats", notify_email=False)
    assert final["status"] == "SUCCESS"
    await asyncio.sleep(3)
    assert smtp.mailbox.to(account["email"]) == []


async def test_signed_callback_is_retried_until_delivered(http, smtp, account) -> None:
    receiver = Receiver(failures=2)
    try:
        final = await order(http, account, app="roi_stats", callback_url=receiver.url)
        deadline = time.monotonic() + 20
        while len(receiver.requests) < 3:
            assert time.monotonic() < deadline, f"{len(receiver.requests)} callback requests"
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)
        assert len(receiver.requests) == 3  # two failures, one success, then nothing more
    finally:
        receiver.close()
    secret = (await http.get("/v1/callbacks/secret", headers=auth(account))).json()["secret"]
    headers, body = receiver.requests[-1]
    assert signing.verify(secret, body, headers["X-Cure-Signature"])
    assert not signing.verify(secret, body + b" ", headers["X-Cure-Signature"])
    assert not signing.verify("another secret", body, headers["X-Cure-Signature"])
    payload = json.loads(body)
    assert payload["event"] == "order.finished"
    assert payload["order_id"] == final["order_id"]
    assert payload["status"] == "SUCCESS"
    assert payload["result"]["checksum"] == final["result"]["checksum"]
    # every try carries the same payload
    assert {b for _, b in receiver.requests} == {body}
