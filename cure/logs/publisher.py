"""Publishes records received over HTTP to the logs queue (the API's side of POST /v1/logs)."""

import asyncio
import json
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from cure.config import Settings
from cure.kit import broker


class LogPublisher:
    """One connection per API process, opened at first use; publishes with confirms."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()

    async def _ensure_channel(self) -> AbstractChannel:
        async with self._lock:
            if self._connection is None or self._connection.is_closed:
                self._connection = await asyncio.wait_for(
                    broker.connect(self.settings.broker_url), timeout=5
                )
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._connection.channel(publisher_confirms=True)
                await broker.declare_durable_queue(self._channel, self.settings.log_queue)
            return self._channel

    async def publish(self, records: list[dict[str, Any]]) -> None:
        channel = await self._ensure_channel()
        try:
            async with asyncio.timeout(self.settings.publish_timeout_seconds):
                await broker.publish_confirmed(
                    channel,
                    queue=self.settings.log_queue,
                    body=json.dumps(records, default=str).encode(),
                    content_type="application/json",
                )
        except BaseException:
            self._channel = None
            raise

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
