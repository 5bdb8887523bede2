"""Cancel wins: whatever a run stored for an order that ends without naming it is removed, by a
tidy queued in the same transaction as the change and carried out (and retried) by the tidier."""

import uuid

from sqlalchemy import select

from cure.orders.events import apply_event, order_event
from cure.orders.lifecycle import OrderStatus
from cure.orders.models import Order
from cure.orders.schemas import OrderAssetInfo, OrderResultInfo
from cure.orders.tidy import ORDER_TIDY, ResultTidier
from cure.outbox.models import OutboxMessage
from cure.storage.service import make_storage
from tests.conftest import free_port
from tests.factories import customer_with_token, order_body


async def _running_order(client, sessionmaker) -> tuple[uuid.UUID, dict[str, str]]:
    _, headers = await customer_with_token(client)
    response = await client.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
    order_id = uuid.UUID(response.json()["order_id"])
    async with sessionmaker() as session, session.begin():
        event = order_event(order_id, OrderStatus.RUNNING, attempt=1, actor="test")
        await apply_event(session, event)
    return order_id, headers


async def _store(storage, order_id: uuid.UUID, run: str) -> str:
    key = f"results/{order_id}/{run}/report.json"
    await storage.put(key, b"{}", media_type="application/json")
    return key


async def _tidies(sessionmaker, order_id: uuid.UUID) -> list[OutboxMessage]:
    async with sessionmaker() as session:
        query = select(OutboxMessage).where(
            OutboxMessage.kind == ORDER_TIDY, OutboxMessage.subject_id == order_id
        )
        return list((await session.scalars(query)).all())


async def test_a_cancel_removes_what_a_run_stored_but_never_reported(
    committing_client, sessionmaker, settings
) -> None:
    storage = make_storage(settings)
    order_id, headers = await _running_order(committing_client, sessionmaker)
    # A run stored its output and died before it could report it (or was still storing it).
    await _store(storage, order_id, "1-died")
    cancelled = await committing_client.post(f"/v1/orders/{order_id}/cancel", headers=headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert len(await _tidies(sessionmaker, order_id)) == 1  # queued with the cancel itself

    await ResultTidier(settings, sessionmaker).tidy_once()

    assert await storage.keys(f"results/{order_id}/") == []
    (tidy,) = await _tidies(sessionmaker, order_id)
    assert tidy.sent_at is not None and tidy.last_error is None


async def test_a_tidy_is_retried_while_storage_is_away(
    committing_client, sessionmaker, settings
) -> None:
    storage = make_storage(settings)
    order_id, headers = await _running_order(committing_client, sessionmaker)
    key = await _store(storage, order_id, "1-late")
    await committing_client.post(f"/v1/orders/{order_id}/cancel", headers=headers)
    # Storage that refuses connections (a port nothing listens on): the tidy stays queued.
    away = settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    await ResultTidier(away, sessionmaker).tidy_once()
    (tidy,) = await _tidies(sessionmaker, order_id)
    assert tidy.sent_at is None and tidy.attempts == 1 and tidy.last_error
    assert await storage.keys(f"results/{order_id}/") == [key]

    async with sessionmaker() as session, session.begin():  # its pause is over
        row = await session.get(OutboxMessage, tidy.id)
        row.available_at = row.created_at
    await ResultTidier(settings, sessionmaker).tidy_once()
    assert await storage.keys(f"results/{order_id}/") == []


async def test_a_success_keeps_what_it_names_and_a_running_order_its_current_run(
    committing_client, sessionmaker, settings
) -> None:
    storage = make_storage(settings)
    order_id, _ = await _running_order(committing_client, sessionmaker)
    current = await _store(storage, order_id, "2-current")
    superseded = await _store(storage, order_id, "1-superseded")
    async with sessionmaker() as session, session.begin():
        # A superseded run's SUCCESS names its own file: only that file may go.
        from cure.orders.tidy import enqueue_tidy

        await enqueue_tidy(session, order_id, keys=[superseded])
    await ResultTidier(settings, sessionmaker).tidy_once()
    assert await storage.keys(f"results/{order_id}/") == [current]

    asset = OrderAssetInfo(
        key=current,
        size=2,
        media_type="application/json",
        checksum="0" * 64,
        role="data",
        title="report",
        primary=True,
    )
    result = OrderResultInfo(**asset.model_dump(include=set(OrderResultInfo.model_fields)))
    async with sessionmaker() as session, session.begin():
        success = order_event(
            order_id,
            OrderStatus.SUCCESS,
            attempt=1,
            actor="test",
            result=result,
            assets=[asset],
        )
        assert await apply_event(session, success)
    late = await _store(storage, order_id, "1-stray")
    quicklook = f"{current}.quicklook-v1.png"  # kept beside the file it shows
    await storage.put(quicklook, b"png", media_type="image/png")
    await ResultTidier(settings, sessionmaker).tidy_once()
    assert await storage.keys(f"results/{order_id}/") == sorted([current, quicklook])
    assert late != current
    async with sessionmaker() as session:
        assert (await session.get(Order, order_id)).result_key == current


def _success(order_id: uuid.UUID, key: str, *, attempt: int, stored_alone: bool):
    asset = OrderAssetInfo(
        key=key,
        size=2,
        media_type="application/json",
        checksum="sha256:" + "0" * 64,
        role="data",
        title="report",
        primary=True,
    )
    result = OrderResultInfo(**asset.model_dump(include=set(OrderResultInfo.model_fields)))
    return order_event(
        order_id,
        OrderStatus.SUCCESS,
        attempt=attempt,
        actor="test",
        result=result,
        assets=[asset],
        stored_alone=stored_alone,
    )


async def test_a_first_success_that_stored_alone_queues_no_tidy_any_other_does(
    committing_client, sessionmaker, settings
) -> None:
    storage = make_storage(settings)
    alone, _ = await _running_order(committing_client, sessionmaker)
    key = await _store(storage, alone, "1-alone")
    async with sessionmaker() as session, session.begin():
        assert await apply_event(session, _success(alone, key, attempt=1, stored_alone=True))
    assert await _tidies(sessionmaker, alone) == []
    assert await storage.keys(f"results/{alone}/") == [key]

    # A run that saw other files (or could not look), and a later attempt's run, whatever it
    # saw: their SUCCESS queues a tidy, which removes what the order does not name.
    for attempt, stored_alone in ((1, False), (2, True)):
        order_id, _ = await _running_order(committing_client, sessionmaker)
        stray = await _store(storage, order_id, "1-died")
        key = await _store(storage, order_id, f"{attempt}-named")
        event = _success(order_id, key, attempt=attempt, stored_alone=stored_alone)
        async with sessionmaker() as session, session.begin():
            for status in (OrderStatus.QUEUED, OrderStatus.RUNNING) if attempt == 2 else ():
                retry = order_event(order_id, status, attempt=2, actor="test")
                assert await apply_event(session, retry)
            assert await apply_event(session, event)
        assert len(await _tidies(sessionmaker, order_id)) == 1
        await ResultTidier(settings, sessionmaker).tidy_once()
        assert await storage.keys(f"results/{order_id}/") == [key], stray
