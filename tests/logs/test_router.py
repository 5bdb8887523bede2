"""POST /v1/logs (validated, size-limited, queued, saved with every field), GET /v1/logs for
admins, and retention by dropping day partitions."""

import json
import uuid
from datetime import UTC, datetime, timedelta

from cure.kit.db import utcnow
from cure.logs import repository
from cure.logs.models import LogRecord
from cure.logs.saver import rows_of
from tests.factories import bearer, create_admin, create_customer, get_token, order_body
from tests.logs.conftest import saved


async def _writer(client, session) -> tuple[dict, dict[str, str], dict[str, str]]:
    """A customer allowed to write logs (an admin granted logs:write), and the admin."""
    admin, admin_headers = await create_admin(client, session)
    customer = await create_customer(client)
    granted = await client.put(
        f"/v1/admin/customers/{customer['customer_id']}/scopes/logs:write", headers=admin_headers
    )
    assert granted.status_code == 200, granted.text
    return customer, bearer(await get_token(client, customer)), admin_headers


async def test_posted_records_are_saved_with_every_field(client, session, sessionmaker, saver):
    customer, headers, _ = await _writer(client, session)
    one = {
        "id": str(uuid.uuid4()),
        "time": (utcnow() - timedelta(minutes=5)).isoformat(),
        "service": "qgis-plugin",
        "host": "laptop-7",
        "level": "WARNING",
        "logger": "plugin.download",
        "message": "slow download, token=abc123",
        "extra": {"tile": "33UXP", "attempt": 2},
        "customer_id": str(uuid.uuid4()),  # not an admin: replaced by the caller's own id
    }
    response = await client.post("/v1/logs", json=one, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1}
    batch = [{"service": "qgis-plugin", "message": f"line {n}"} for n in range(3)]
    response = await client.post("/v1/logs", json={"records": batch}, headers=headers)
    assert response.json() == {"accepted": 3}

    (row,) = await saved(sessionmaker, LogRecord.id == uuid.UUID(one["id"]), count=1)
    assert row.time == datetime.fromisoformat(one["time"])
    assert (row.service, row.host, row.level, row.logger) == (
        "qgis-plugin",
        "laptop-7",
        30,
        "customer.plugin.download",  # marked as the customer's
    )
    assert row.message == "slow download, token=[REDACTED]"
    assert row.customer_id == uuid.UUID(customer["customer_id"]) and row.order_id is None
    assert row.extra["tile"] == "33UXP" and row.extra["attempt"] == 2
    assert row.extra["client_id"] == customer["client_id"]
    rows = await saved(
        sessionmaker,
        LogRecord.customer_id == uuid.UUID(customer["customer_id"]),
        LogRecord.message.startswith("line "),
        count=3,
    )
    assert {r.level for r in rows} == {20} and {r.logger for r in rows} == {"customer.qgis-plugin"}
    assert all(r.host.startswith("127.") for r in rows)  # the caller's address by default

    # posting the same record again stores it once
    await client.post("/v1/logs", json=one, headers=headers)
    await client.post(
        "/v1/logs", json={"service": "qgis-plugin", "message": "sync"}, headers=headers
    )
    await saved(sessionmaker, LogRecord.message == "sync", count=1)
    assert len(await saved(sessionmaker, LogRecord.id == uuid.UUID(one["id"]), count=1)) == 1


async def test_a_customers_record_never_passes_for_the_pipelines(
    client, session, sessionmaker, saver
) -> None:
    customer, headers, _ = await _writer(client, session)
    submitted = await client.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
    assert submitted.status_code == 202, submitted.text
    order_id = submitted.json()["order_id"]
    now = utcnow()
    fakes = [
        {  # the pipeline's own logger, a level and a time from before the order existed
            "service": "worker",
            "logger": "cure.order.steps",
            "level": "ERROR",
            "message": "fake early step",
            "order_id": order_id,
            "time": (now - timedelta(days=1)).isoformat(),
        },
        {  # the app's logger, dated later than it arrived
            "service": "worker",
            "logger": "cure.order.app",
            "message": "fake late line",
            "order_id": order_id,
            "time": (now + timedelta(hours=6)).isoformat(),
            "extra": {"origin": "cure"},
        },
    ]
    response = await client.post("/v1/logs", json={"records": fakes}, headers=headers)
    assert response.status_code == 202, response.text
    rows = await saved(sessionmaker, LogRecord.message.startswith("fake "), count=2)
    arrived = utcnow()
    created = datetime.fromisoformat(submitted.json()["created_at"])
    for row in rows:
        assert row.logger in ("customer.cure.order.steps", "customer.cure.order.app")
        assert row.extra["origin"] == "customer"
        assert created <= row.time <= arrived, (row.message, row.time)
    # The order's log, as its owner reads it, holds only what CURE's pipeline wrote.
    log = await client.get(f"/v1/orders/{order_id}/logs", headers=headers)
    assert log.status_code == 200, log.text
    assert not [r for r in log.json()["records"] if r["message"].startswith("fake ")]


async def test_posted_records_are_checked(client, session, settings) -> None:
    _, headers, _ = await _writer(client, session)
    good = {"service": "svc", "message": "hello"}
    refused = {
        "level": {**good, "level": "TRACE"},
        "unknown field": {**good, "severity": 3},
        "service name": {**good, "service": "has spaces"},
        "empty message": {**good, "message": ""},
        "no zone": {**good, "time": "2026-11-29T10:00:00"},
        "too old": {**good, "time": (utcnow() - timedelta(days=60)).isoformat()},
        "future": {**good, "time": (utcnow() + timedelta(days=3)).isoformat()},
        "extra too big": {**good, "extra": {"blob": "x" * 20000}},
        "empty batch": {"records": []},
    }
    for reason, body in refused.items():
        response = await client.post("/v1/logs", json=body, headers=headers)
        assert response.status_code == 422, (reason, response.text)
        assert response.json()["error"] in ("ValidationError", "LogRecordRefused")

    too_many = {"records": [good] * (settings.log_post_max_records + 1)}
    assert (await client.post("/v1/logs", json=too_many, headers=headers)).status_code == 422
    huge = {"records": [{**good, "message": "x" * 30000}] * 40}  # about 1.2 MB
    response = await client.post("/v1/logs", json=huge, headers=headers)
    assert response.status_code == 413 and response.json()["error"] == "BodyTooLarge"

    # an order that is not the caller's
    foreign = {**good, "order_id": str(uuid.uuid4())}
    assert (await client.post("/v1/logs", json=foreign, headers=headers)).status_code == 404

    # a token without logs:write
    _, plain = await _plain(client)
    assert (await client.post("/v1/logs", json=good, headers=plain)).status_code == 403
    assert (await client.post("/v1/logs", json=good)).status_code == 401


async def _plain(client) -> tuple[dict, dict[str, str]]:
    customer = await create_customer(client)
    return customer, bearer(await get_token(client, customer))


async def test_admins_search_every_services_records(client, session, saver) -> None:
    _, admin_headers = await create_admin(client, session)
    now = utcnow()
    await saver.ensure_partitions({now.date(), (now - timedelta(days=1)).date()})
    order_id, customer_id = uuid.uuid4(), uuid.uuid4()
    marker = uuid.uuid4().hex
    rows = [
        {
            "id": uuid.uuid4(),
            "time": now - timedelta(hours=n),
            "service": "api" if n % 2 else "worker",
            "host": "h",
            "level": (10, 20, 30, 40, 50)[n % 5],
            "logger": "x",
            "message": f"{marker} record {n}" + (" 100%_done" if n == 3 else ""),
            "order_id": order_id if n < 4 else None,
            "customer_id": customer_id if n >= 6 else None,
            "extra": {},
        }
        for n in range(10)
    ]
    await repository.insert_batch(session, rows)
    await session.commit()  # a savepoint of the test's transaction

    async def numbers(**params) -> list[int]:
        response = await client.get(
            "/v1/logs", params={"q": marker, **params}, headers=admin_headers
        )
        assert response.status_code == 200, response.text
        return [int(r["message"].split()[2]) for r in response.json()["records"]]

    assert await numbers() == list(range(10))  # newest first
    assert await numbers(service="api") == [1, 3, 5, 7, 9]
    assert await numbers(min_level="ERROR") == [3, 4, 8, 9]
    assert await numbers(order_id=str(order_id)) == [0, 1, 2, 3]
    assert await numbers(customer_id=str(customer_id)) == [6, 7, 8, 9]
    since = (now - timedelta(hours=5, minutes=30)).isoformat()
    until = (now - timedelta(hours=1, minutes=30)).isoformat()
    assert await numbers(since=since, until=until) == [2, 3, 4, 5]
    assert await numbers(q="100%_done") == [3]  # LIKE wildcards are plain text
    assert await numbers(q="100%_don_") == []

    seen, cursor = [], None
    while True:
        params = {"q": marker, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/logs", params=params, headers=admin_headers)).json()
        seen += [int(r["message"].split()[2]) for r in page["records"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(10))
    record = page["records"][0]
    assert record["level"] == "CRITICAL" and record["service"] == "api"

    _, plain = await _plain(client)
    assert (await client.get("/v1/logs", headers=plain)).status_code == 403


async def test_retention_drops_old_day_partitions(settings, sessionmaker) -> None:
    from cure.logs.saver import LogSaver

    saver = LogSaver(settings.model_copy(update={"log_retention_days": 14}), sessionmaker)
    old_day = (utcnow() - timedelta(days=40)).date()
    boundary = saver.cutoff()
    await saver.ensure_partitions({old_day, boundary.date()})
    old_time = datetime(old_day.year, old_day.month, old_day.day, 12, tzinfo=UTC)
    marker = uuid.uuid4().hex
    rows = [
        {"time": old_time, "message": f"{marker} old"},
        {"time": boundary - timedelta(minutes=1), "message": f"{marker} just expired"},
        {"time": boundary + timedelta(minutes=5), "message": f"{marker} kept"},
    ]
    async with sessionmaker() as session, session.begin():
        await repository.insert_batch(
            session,
            [
                {"id": uuid.uuid4(), "service": "s", "host": "h", "level": 20, "logger": "l", **r}
                for r in rows
            ],
        )

    result = await saver.retain_once()
    assert result is not None and result[0] >= 1
    async with sessionmaker() as session:
        days = await repository.existing_partitions(session)
        kept = await saved(sessionmaker, LogRecord.message.startswith(marker), count=1)
    assert old_day not in days
    assert {utcnow().date(), utcnow().date() + timedelta(days=1)} <= days
    assert [r.message for r in kept] == [f"{marker} kept"]


def test_the_saver_reads_one_record_or_a_batch_and_skips_what_it_cannot_keep() -> None:
    now = utcnow()
    record = {
        "id": str(uuid.uuid4()),
        "time": now.isoformat(),
        "service": "s",
        "host": "h",
        "level": "ERROR",
        "logger": "l",
        "message": "m\x00",
    }
    rows, rejected = rows_of(json.dumps(record).encode(), now=now, cutoff=now - timedelta(days=1))
    assert rejected == 0 and rows[0]["level"] == 40 and rows[0]["message"] == "m"
    future = {**record, "time": (now + timedelta(days=30)).isoformat()}
    old = {**record, "time": (now - timedelta(days=30)).isoformat()}
    broken = {**record, "level": "LOUD"}
    rows, rejected = rows_of(
        json.dumps([record, future, old, broken]).encode(), now=now, cutoff=now - timedelta(days=1)
    )
    assert rejected == 2 and len(rows) == 2
    assert rows[1]["time"] == now and rows[1]["extra"]["time_given"] == future["time"]
    assert rows_of(b"not json", now=now, cutoff=now) == ([], 1)
