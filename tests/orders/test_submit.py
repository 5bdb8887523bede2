"""Submitting safely (Idempotency-Key, limits, callback targets), cancel, events, the old name."""

import uuid

import pytest

from cure.orders.models import Order
from tests.factories import customer_with_token, order_body, problems


async def submit(client, headers, key: str | None = None, **overrides):
    extra = {"Idempotency-Key": key} if key else {}
    return await client.post(
        "/v1/apps/roi_stats/orders", json=order_body(**overrides), headers={**headers, **extra}
    )


async def test_same_idempotency_key_and_body_give_the_same_order(client, session) -> None:
    customer, headers = await customer_with_token(client)
    first = await submit(client, headers, key="order-2024-07")
    again = await submit(client, headers, key="order-2024-07")
    assert first.status_code == again.status_code == 202
    assert again.json()["order_id"] == first.json()["order_id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = await submit(client, headers, key="order-2024-08")
    assert other.json()["order_id"] != first.json()["order_id"]
    # keys are per customer: another customer's same key is a new order
    _, stranger = await customer_with_token(client)
    theirs = await submit(client, stranger, key="order-2024-07")
    assert theirs.json()["order_id"] != first.json()["order_id"]


async def test_same_key_with_another_body_is_refused(client) -> None:
    _, headers = await customer_with_token(client)
    await submit(client, headers, key="k1")
    changed = await submit(client, headers, key="k1", start_date="2024-08-01", end_date=None)
    assert changed.status_code == 422
    assert changed.json()["error"] == "IdempotencyKeyReused"


async def test_active_order_limit_is_429_with_retry_after(client, settings, app) -> None:
    from cure.kit.dependencies import get_settings

    limited = settings.model_copy(update={"max_active_orders": 2})
    app.dependency_overrides[get_settings] = lambda: limited
    try:
        _, headers = await customer_with_token(client)
        assert (await submit(client, headers)).status_code == 202
        assert (await submit(client, headers)).status_code == 202
        refused = await submit(client, headers)
        assert refused.status_code == 429
        assert refused.json()["error"] == "TooManyOrders"
        assert int(refused.headers["retry-after"]) > 0
    finally:
        app.dependency_overrides.clear()


async def test_orders_per_window_limit(client, settings, app) -> None:
    from cure.kit.dependencies import get_settings

    limited = settings.model_copy(update={"max_orders_per_window": 1, "orders_window_seconds": 600})
    app.dependency_overrides[get_settings] = lambda: limited
    try:
        _, headers = await customer_with_token(client)
        assert (await submit(client, headers)).status_code == 202
        refused = await submit(client, headers)
        assert refused.status_code == 429
        assert 500 < int(refused.headers["retry-after"]) <= 601
    finally:
        app.dependency_overrides.clear()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/",
        "ftp://example.org/hook",
        "http://user:pass@203.0.113.10/hook",
        "http://100.100.100.200/latest/meta-data",  # shared address space (CGNAT)
        "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "http://[2002:7f00:1::]/hook",  # 6to4 around 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 around 169.254.169.254
    ],
)
async def test_callbacks_to_private_targets_are_refused(client, url: str) -> None:
    _, headers = await customer_with_token(client)
    response = await submit(client, headers, callback_url=url)
    assert response.status_code == 422, response.text
    assert response.json()["error"] in {"CallbackRefused", "ValidationError"}


@pytest.mark.parametrize(
    "url",
    [
        "http://[::127.0.0.1]/hook",  # IPv4-compatible loopback
        "http://[::10.0.0.1]/hook",  # IPv4-compatible private
        "http://[::169.254.169.254]/latest/meta-data",  # IPv4-compatible metadata service
        "http://[::ffff:0:a00:1]/hook",  # IPv4-translated (SIIT) 10.0.0.1
        "http://[64:ff9b:1::7f00:1]/hook",  # local-use NAT64 around 127.0.0.1
        "http://[64:ff9b:1::a9fe:a9fe]/latest/meta-data",  # local-use NAT64, metadata service
    ],
)
async def test_callbacks_to_ipv4_wrapped_in_ipv6_are_refused(client, url: str) -> None:
    _, headers = await customer_with_token(client)
    response = await submit(client, headers, callback_url=url)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "CallbackRefused"
    assert "non-public" in problems(response.json())[0]
    assert (await client.get("/v1/orders", headers=headers)).json()["items"] == []


async def test_cancel_a_queued_order_and_then_409(client, session) -> None:
    _, headers = await customer_with_token(client)
    order_id = (await submit(client, headers)).json()["order_id"]
    cancelled = await client.post(f"/v1/orders/{order_id}/cancel", headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    assert [e["status"] for e in cancelled.json()["history"]] == ["RECEIVED", "CANCELLED"]
    again = await client.post(f"/v1/orders/{order_id}/cancel", headers=headers)
    assert again.status_code == 409
    assert again.json()["error"] == "OrderFinished"
    stored = await session.get(Order, uuid.UUID(order_id))
    assert stored.status == "CANCELLED"


async def test_cancel_needs_ownership(client) -> None:
    _, owner = await customer_with_token(client)
    _, stranger = await customer_with_token(client)
    order_id = (await submit(client, owner)).json()["order_id"]
    response = await client.post(f"/v1/orders/{order_id}/cancel", headers=stranger)
    assert response.status_code == 404
    still = await client.get(f"/v1/orders/{order_id}", headers=owner)
    assert still.json()["status"] == "RECEIVED"


async def test_events_and_the_original_status_path(client) -> None:
    _, headers = await customer_with_token(client)
    order_id = (await submit(client, headers)).json()["order_id"]
    events = await client.get(f"/v1/orders/{order_id}/events", headers=headers)
    assert events.status_code == 200
    assert [e["status"] for e in events.json()] == ["RECEIVED"]
    assert events.json()[0]["actor"].startswith("customer:")
    legacy = await client.get(f"/v1/services/order_status/{order_id}", headers=headers)
    modern = await client.get(f"/v1/orders/{order_id}", headers=headers)
    assert legacy.status_code == 200
    assert legacy.json() == modern.json()
    _, stranger = await customer_with_token(client)
    assert (await client.get(f"/v1/orders/{order_id}/events", headers=stranger)).status_code == 404
    assert (
        await client.get(f"/v1/services/order_status/{order_id}", headers=stranger)
    ).status_code == 404


async def _lock_waiters(sessionmaker) -> int:
    from sqlalchemy import text

    async with sessionmaker() as probe:
        found = await probe.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        )
        return int(found.scalar_one())


async def test_an_order_over_the_limit_found_under_the_lock_is_never_stored(
    committing_client, settings, sessionmaker
) -> None:
    """Two submissions with one place left: both pass the early check, the second waits on the
    customer's lock, finds the first's order in its counts and is refused; the rows its statement
    wrote are taken back, so even a caller that commits after the error stores nothing."""
    import asyncio

    from sqlalchemy import func, select

    from cure.auth.principals import Principal
    from cure.orders import service as order_service
    from cure.orders.exceptions import TooManyOrders
    from cure.orders.schemas import OrderCreate
    from cure.outbox.models import OutboxMessage

    customer, _ = await customer_with_token(committing_client)
    customer_id = uuid.UUID(customer["customer_id"])
    principal = Principal(
        customer_id=customer_id,
        client_id=customer["client_id"],
        scopes=frozenset(customer["scopes"]),
        is_admin=False,
    )
    limited = settings.model_copy(update={"max_active_orders": 1})
    data = OrderCreate(**order_body())

    async def second() -> None:
        async with sessionmaker() as writer:
            try:
                await order_service.submit(
                    writer, limited, principal, app_id="roi_stats", data=data
                )
            finally:
                await writer.commit()  # what a careless caller might do

    async with sessionmaker() as first:
        accepted, _ = await order_service.submit(
            first, limited, principal, app_id="roi_stats", data=data
        )
        waiting = asyncio.create_task(second())
        while await _lock_waiters(sessionmaker) == 0:  # past its early check, on the lock
            assert not waiting.done(), waiting
            await asyncio.sleep(0.05)
        await first.commit()
    with pytest.raises(TooManyOrders):
        await waiting

    async with sessionmaker() as reader:
        orders = (
            await reader.execute(select(Order.id).where(Order.customer_id == customer_id))
        ).scalars()
        assert list(orders) == [accepted.id]
        unowned_tasks = await reader.execute(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind == "run_order")
            .where(OutboxMessage.subject_id.not_in(select(Order.id)))
        )
        assert unowned_tasks.scalar_one() == 0
