"""Long polls and event streams of an order's log: they hold no pooled connection while they
wait, are capped per customer and per process (429), are woken by a new record or the order's
end, and a pool that stays exhausted answers 503 with Retry-After, never 500."""

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from cure.kit.db import utcnow
from cure.kit.errors import TooManyRequests
from cure.kit.log_handler import ORDER_STEPS_LOGGER
from cure.kit.state import state_of
from cure.logs.dependencies import LOG_WAITERS
from cure.logs.saver import LogSaver
from cure.logs.waiters import OrderLogWaiters
from tests.conftest import loopback_address, started_app
from tests.factories import customer_with_token, order_body

SSE = {"Accept": "text/event-stream"}


@pytest.fixture(scope="module")
async def small_app(settings) -> AsyncIterator[object]:
    """An API whose request pool holds 2 connections (and 2 in overflow), where one customer
    may wait on 5 order logs at once: more waits than connections."""
    tight = settings.model_copy(
        update={"database_pool_size": 2, "log_waits_per_customer": 5, "log_waits_per_process": 50}
    )
    async with started_app(tight) as api:
        yield api


@contextlib.asynccontextmanager
async def http_of(api) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api, client=(loopback_address(), 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
        yield http


async def ordered(http: httpx.AsyncClient) -> tuple[dict, dict[str, str], str]:
    """A new customer (committed), its token's headers and its order (RECEIVED: no relay)."""
    customer, headers = await customer_with_token(http)
    submitted = await http.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
    assert submitted.status_code == 202, submitted.text
    return customer, headers, submitted.json()["order_id"]


async def until_waiting(api, customer: dict, count: int, seconds: float = 20) -> None:
    """Until ``count`` waits of ``customer`` are admitted (they wait 30 s: a state that stays)."""
    waiters: OrderLogWaiters = state_of(api).need(LOG_WAITERS)
    customer_id = uuid.UUID(customer["customer_id"])
    deadline = time.monotonic() + seconds
    while waiters.held(customer_id) < count:
        assert time.monotonic() < deadline, f"{waiters.held(customer_id)} of {count} waiting"
        await asyncio.sleep(0.05)


async def add_record(api, customer: dict, order_id: str, message: str) -> None:
    """A step record of the order, committed as the log saver commits it."""
    row = {
        "id": uuid.uuid4(),
        "time": utcnow(),
        "service": "worker",
        "host": "h",
        "level": 20,
        "logger": ORDER_STEPS_LOGGER,
        "message": message,
        "order_id": uuid.UUID(order_id),
        "customer_id": uuid.UUID(customer["customer_id"]),
        "extra": {},
    }
    await LogSaver(state_of(api).settings, state_of(api).db.sessionmaker).save([row])


def sse_events(body: str) -> list[tuple[str, str]]:
    """(event, data) of each event in a Server-Sent Events body."""
    events = []
    for block in body.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
        )
        if "event" in fields:
            events.append((fields["event"], fields.get("data", "")))
    return events


async def test_waits_past_the_customers_cap_are_refused_and_hold_no_connection(
    small_app,
) -> None:
    async with http_of(small_app) as http:
        customer, headers, order_id = await ordered(http)
        other, other_headers, other_order = await ordered(http)
        url = f"/v1/orders/{order_id}/logs"
        polls = [
            asyncio.create_task(http.get(url, params={"wait": 30}, headers=headers))
            for _ in range(5)
        ]
        try:
            await until_waiting(small_app, customer, 5)  # 5 waits, 4 pooled connections

            refused = await http.get(url, params={"wait": 30}, headers=headers)
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"] == "TooManyRequests"
            assert int(refused.headers["Retry-After"]) > 0
            streamed = await http.get(url, headers={**headers, **SSE})
            assert streamed.status_code == 429, streamed.text
            # a poll with nothing to wait for is no wait
            assert (await http.get(url, headers=headers)).status_code == 200

            # another customer's status read, and the database, answer meanwhile
            status = await http.get(f"/v1/orders/{other_order}", headers=other_headers)
            assert status.status_code == 200 and status.json()["status"] == "RECEIVED"
            assert (await http.get("/health")).status_code == 200
            assert all(not poll.done() for poll in polls)

            await add_record(small_app, customer, order_id, "step one")
            answers = await asyncio.gather(*polls)
        finally:
            for poll in polls:
                poll.cancel()
            await asyncio.gather(*polls, return_exceptions=True)
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert [r["message"] for r in answer.json()["records"]] == ["step one"]
    assert state_of(small_app).need(LOG_WAITERS).held() == 0


async def test_a_wait_is_woken_by_a_new_record_and_by_the_orders_end(small_app) -> None:
    async with http_of(small_app) as http:
        customer, headers, order_id = await ordered(http)
        url = f"/v1/orders/{order_id}/logs"
        poll = asyncio.create_task(http.get(url, params={"wait": 30}, headers=headers))
        await until_waiting(small_app, customer, 1)
        await add_record(small_app, customer, order_id, "first line")
        page = (await poll).json()
        assert [r["message"] for r in page["records"]] == ["first line"]
        assert page["finished"] is False

        after = {"after": page["next_after"], "wait": 30}
        poll = asyncio.create_task(http.get(url, params=after, headers=headers))
        await until_waiting(small_app, customer, 1)
        cancelled = await http.post(f"/v1/orders/{order_id}/cancel", headers=headers)
        assert cancelled.status_code == 200, cancelled.text
        page = (await poll).json()
        assert page["records"] == [] and page["finished"] is True
        assert page["order_status"] == "CANCELLED"
    assert state_of(small_app).need(LOG_WAITERS).held() == 0


async def test_an_event_stream_is_woken_by_records_and_ends_with_the_order(small_app) -> None:
    async with http_of(small_app) as http:
        customer, headers, order_id = await ordered(http)
        url = f"/v1/orders/{order_id}/logs"
        stream = asyncio.create_task(http.get(url, headers={**headers, **SSE}))
        await until_waiting(small_app, customer, 1)
        await add_record(small_app, customer, order_id, "streamed line")
        cancelled = await http.post(f"/v1/orders/{order_id}/cancel", headers=headers)
        assert cancelled.status_code == 200, cancelled.text
        answer = await stream
    assert answer.status_code == 200
    events = sse_events(answer.text)
    assert [kind for kind, _ in events] == ["record", "end"]
    assert '"message":"streamed line"' in events[0][1]
    assert '"order_status": "CANCELLED"' in events[1][1]
    assert state_of(small_app).need(LOG_WAITERS).held() == 0


def test_waits_are_capped_per_customer_and_per_process() -> None:
    waiters = OrderLogWaiters(per_customer=2, per_process=3)
    ana, ben, cleo = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with waiters.admit(ana), waiters.admit(ana):
        with pytest.raises(TooManyRequests, match="per customer"):
            waiters.admit(ana)
        with waiters.admit(ben):
            with pytest.raises(TooManyRequests, match="this server"):
                waiters.admit(cleo)
            assert (waiters.held(), waiters.held(ana), waiters.held(ben)) == (3, 2, 1)
        with waiters.admit(cleo):
            assert waiters.held() == 3
    assert waiters.held() == 0 and waiters.held(ana) == 0


async def test_an_exhausted_pool_answers_503_with_retry_after(settings) -> None:
    tight = settings.model_copy(
        update={"database_pool_size": 2, "database_pool_timeout_seconds": 0.5}
    )
    async with started_app(tight) as api, http_of(api) as http:
        _, headers, order_id = await ordered(http)
        async with contextlib.AsyncExitStack() as held:
            for _ in range(2 * tight.database_pool_size):  # the pool and its overflow
                await held.enter_async_context(state_of(api).db.engine.connect())
            for path in ("/health", f"/v1/orders/{order_id}", f"/v1/orders/{order_id}/logs"):
                answer = await http.get(path, headers=headers)
                assert answer.status_code == 503, (path, answer.text)
                assert answer.json()["error"] == "ServiceUnavailable"
                assert int(answer.headers["Retry-After"]) > 0
        assert (await http.get("/health")).status_code == 200


@pytest.mark.parametrize("last_event_id", ["²".encode("latin-1"), b"-1", b"1e3", b"9" * 20])
async def test_a_last_event_id_that_is_no_seq_is_refused(client, last_event_id) -> None:
    _, headers, order_id = await ordered(client)
    answer = await client.get(
        f"/v1/orders/{order_id}/logs", headers={**headers, **SSE, "Last-Event-ID": last_event_id}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "BadRequest"
    assert "Last-Event-ID" in answer.json()["detail"]
