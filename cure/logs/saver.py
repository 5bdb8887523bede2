"""The log saver: consumes the logs queue and writes records to ``log_records`` in batches,
acking each message only after the batch's transaction committed; and retention.

Runs in the API's lifespan or alone (``cure log-saver``); several savers may consume the same
queue. A message holds one record (an object) or several (an array).
"""

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.config import Settings
from cure.kit import broker
from cure.kit.db import is_transient, utcnow
from cure.kit.log_handler import ConsoleFormatter
from cure.kit.metrics import LOG_RECORDS_REJECTED, LOG_RECORDS_SAVED
from cure.logs import repository
from cure.logs.schemas import LogRecordMessage

# The saver's own records go to the console only: saving them would make a record per batch.
log = logging.getLogger("cure.logs.saver")
log.propagate = False
_console = logging.StreamHandler()
_console.setFormatter(ConsoleFormatter())
log.addHandler(_console)

FUTURE_SLACK = timedelta(days=1)


def rows_of(message_body: bytes, *, now: Any, cutoff: Any) -> tuple[list[dict[str, Any]], int]:
    """The rows a message holds and how many of its records were unreadable or expired.

    A time more than a day ahead (a host with a wrong clock) is stored as the time received,
    with the given one kept in ``extra.time_given``.
    """
    try:
        payload = json.loads(message_body)
    except ValueError:
        LOG_RECORDS_REJECTED.labels("json").inc()
        return [], 1
    items = payload if isinstance(payload, list) else [payload]
    rows: list[dict[str, Any]] = []
    rejected = 0
    for item in items:
        try:
            record = LogRecordMessage.model_validate(item)
        except ValidationError:
            LOG_RECORDS_REJECTED.labels("invalid").inc()
            rejected += 1
            continue
        if record.time < cutoff:
            LOG_RECORDS_REJECTED.labels("expired").inc()
            rejected += 1
            continue
        row = record.model_dump()
        row["level"] = record.level.number
        if record.time > now + FUTURE_SLACK:
            row["extra"] = {**record.extra, "time_given": record.time.isoformat()}
            row["time"] = now
        row["message"] = row["message"].replace("\x00", "")
        rows.append(row)
    return rows, rejected


class LogSaver:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self._partitions: set[date] = set()
        self._incoming: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

    def cutoff(self) -> Any:
        return utcnow() - timedelta(days=self.settings.log_retention_days)

    async def ensure_partitions(self, days: set[date]) -> None:
        """Create the day partitions ``days`` need (each in a short transaction of its own:
        creating one locks the whole table for a moment)."""
        missing = days - self._partitions
        if not missing:
            return
        async with self.sessionmaker() as session, session.begin():
            self._partitions |= await repository.existing_partitions(session)
        for day in sorted(days - self._partitions):
            async with self.sessionmaker() as session, session.begin():
                await repository.create_partition(session, day)
            self._partitions.add(day)

    async def save(self, rows: Sequence[dict[str, Any]]) -> int:
        """Write rows in one transaction; returns how many were new."""
        await self.ensure_partitions({row["time"].date() for row in rows})
        async with self.sessionmaker() as session, session.begin():
            saved = await repository.insert_batch(session, rows)
        for row in rows:
            LOG_RECORDS_SAVED.labels(row["service"], _level_name(row["level"])).inc()
        return saved

    async def _flush(self, messages: list[AbstractIncomingMessage]) -> None:
        now, cutoff = utcnow(), self.cutoff()
        rows: list[dict[str, Any]] = []
        for message in messages:
            rows += rows_of(message.body, now=now, cutoff=cutoff)[0]
        try:
            await self.save(rows)
        except Exception as exc:
            if is_transient(exc):
                log.warning("could not save %d log records (%r); redelivering", len(rows), exc)
                for message in messages:
                    await message.nack(requeue=True)
                await asyncio.sleep(1)
                return
            await self._save_one_by_one(messages, now=now, cutoff=cutoff)
            return
        for message in messages:
            await message.ack()

    async def _save_one_by_one(
        self, messages: list[AbstractIncomingMessage], *, now: Any, cutoff: Any
    ) -> None:
        """A batch failed for good: save each message alone and drop only those that fail."""
        for message in messages:
            try:
                await self.save(rows_of(message.body, now=now, cutoff=cutoff)[0])
            except Exception as exc:
                if is_transient(exc):
                    await message.nack(requeue=True)
                    continue
                log.error("dropping a log message that cannot be saved: %r", exc)
                LOG_RECORDS_REJECTED.labels("unsaveable").inc()
            await message.ack()

    async def _batches(self) -> None:
        limit = self.settings.log_saver_batch
        while True:
            messages = [await self._incoming.get()]
            deadline = asyncio.get_running_loop().time() + self.settings.log_saver_flush_seconds
            while len(messages) < limit:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    messages.append(await asyncio.wait_for(self._incoming.get(), remaining))
                except TimeoutError:
                    break
            await self._flush(messages)

    async def _receive(self, message: AbstractIncomingMessage) -> None:
        await self._incoming.put(message)

    async def run(self) -> None:
        """Consume until cancelled, reconnecting when the broker goes away (unacked messages
        are then redelivered, so nothing is lost)."""
        while True:
            batcher = asyncio.create_task(self._batches())
            try:
                connection = await broker.connect(self.settings.broker_url)
                async with connection:
                    channel = await connection.channel()
                    await channel.set_qos(prefetch_count=self.settings.log_saver_batch * 2)
                    queue = await broker.declare_durable_queue(channel, self.settings.log_queue)
                    await queue.consume(self._receive)
                    await batcher  # runs until cancelled or the connection fails under it
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("log saver lost its broker connection; reconnecting")
                await asyncio.sleep(2)
            finally:
                batcher.cancel()
                await asyncio.gather(batcher, return_exceptions=True)
                self._incoming = asyncio.Queue()  # their deliveries died with the channel

    async def retain_once(self) -> tuple[int, int] | None:
        """Apply retention now and create the coming days' partitions."""
        await self.ensure_partitions(set(repository.days_ahead()))
        async with self.sessionmaker() as session, session.begin():
            result = await repository.apply_retention(session, self.cutoff())
        if result is not None:
            dropped, deleted = result
            self._partitions = {d for d in self._partitions if d >= self.cutoff().date()}
            if dropped or deleted:
                log.info("log retention: %d partitions dropped, %d rows deleted", *result)
        return result

    async def run_retention(self) -> None:
        while True:
            try:
                await self.retain_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("log retention failed; trying again later")
            await asyncio.sleep(self.settings.log_retention_interval_seconds)


def _level_name(number: int) -> str:
    return {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}.get(number, "INFO")
