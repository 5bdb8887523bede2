"""Sends the final-state notifications queued in the outbox: emails over SMTP and callbacks.

The order's state changes and its notification rows commit together; this loop sends them later,
so a mail server or receiver outage never blocks or loses a status change. A failed send is
retried with a growing pause. Rows are leased (claimed with FOR UPDATE SKIP LOCKED, pushed past
a lease time, committed) before any network call, so API replicas never send the same row at once
and a slow receiver holds no lock; only a crash between a server's acceptance and the commit that
marks the row sent could repeat one.

No database connection is held during a network call (what a delivery needs is read first, and
the session closed), at most ``notify_concurrency`` deliveries run at once (below the pool size),
and a callback's one deadline covers resolving its host as well as the call.
"""

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.auth import repository as auth_repository
from cure.config import Settings
from cure.kit import outbound
from cure.kit.db import utcnow
from cure.kit.metrics import NOTIFICATIONS
from cure.mail.exceptions import MailError
from cure.mail.sender import send_email
from cure.notifications import signing
from cure.orders.events import ORDER_CALLBACK, ORDER_EMAIL
from cure.orders.lifecycle import OrderStatus
from cure.orders.models import Order
from cure.outbox import repository as outbox_repository
from cure.outbox.models import OutboxMessage

log = logging.getLogger(__name__)
BATCH = 20


class DeliveryFailed(Exception):
    pass


@dataclass(frozen=True)
class Claim:
    message_id: int
    kind: str
    order_id: uuid.UUID
    attempts: int


class Notifier:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        resolver: outbound.Resolver | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.resolver = resolver or outbound.resolve
        self._slots = asyncio.Semaphore(settings.notify_concurrency)

    async def notify_once(self) -> int:
        """Send what is due now, a few at a time; returns how many were tried."""
        claims = await self._claim()
        await self.deliver_all(claims)
        return len(claims)

    async def deliver_all(self, claims: list[Claim]) -> None:
        async def one(claim: Claim) -> None:
            async with self._slots:
                await self._deliver(claim)

        await asyncio.gather(*(one(claim) for claim in claims))

    async def _claim(self) -> list[Claim]:
        """Lease due rows and commit, so no lock or transaction is held over network calls.

        Should this process die mid-send, the lease runs out and another pass tries again.
        """
        now = utcnow()
        async with self.sessionmaker() as session, session.begin():
            rows = await outbox_repository.lock_due(
                session, kinds=[ORDER_EMAIL, ORDER_CALLBACK], now=now, limit=BATCH
            )
            for row in rows:
                row.attempts += 1
                row.available_at = now + timedelta(seconds=self.settings.notify_lease_seconds)
            return [
                Claim(row.id, row.kind, uuid.UUID(row.payload["order_id"]), row.attempts)
                for row in rows
            ]

    async def _deliver(self, claim: Claim) -> None:
        failure: str | None = None
        try:
            # Read what the delivery needs, then let the connection go before any network call.
            async with self.sessionmaker() as session:
                order = await session.get(Order, claim.order_id)
                if order is None:
                    raise DeliveryFailed("the order no longer exists")
                to = await self._recipient(session, order) if claim.kind == ORDER_EMAIL else None
            if to is not None:
                await self._email(to, order)
            else:
                await self._callback(order)
        except DeliveryFailed as exc:
            failure = str(exc)
        except Exception as exc:  # one bad row must not stop the loop for everyone else
            log.exception("%s %s failed unexpectedly", claim.kind, claim.message_id)
            failure = f"{type(exc).__name__}"
        async with self.sessionmaker() as session, session.begin():
            row = await outbox_repository.get_for_update(session, claim.message_id)
            if row is None or row.sent_at is not None:
                return
            kind = "email" if claim.kind == ORDER_EMAIL else "callback"
            if failure is None:
                row.sent_at = utcnow()
                row.last_error = None
                NOTIFICATIONS.labels(kind, "sent").inc()
                log.info(
                    "order %s: %s sent",
                    claim.order_id,
                    kind,
                    extra={"order_id": str(claim.order_id)},
                )
            else:
                NOTIFICATIONS.labels(kind, "failed").inc()
                self._reschedule(row, failure)

    def _reschedule(self, message: OutboxMessage, reason: str) -> None:
        limit = (
            self.settings.email_max_attempts
            if message.kind == ORDER_EMAIL
            else self.settings.callback_max_attempts
        )
        message.last_error = reason[:2000]
        order = {"order_id": str(message.subject_id)} if message.subject_id else {}
        if message.attempts >= limit:
            kind = "email" if message.kind == ORDER_EMAIL else "callback"
            NOTIFICATIONS.labels(kind, "abandoned").inc()
            log.error(
                "%s %s: giving up after %d tries: %s",
                message.kind,
                message.id,
                limit,
                reason,
                extra=order,
            )
            message.sent_at = utcnow()  # settled: never tried again
            return
        pause = min(
            self.settings.notify_retry_base_seconds * 2 ** (message.attempts - 1),
            self.settings.notify_retry_max_seconds,
        )
        message.available_at = utcnow() + timedelta(seconds=pause)
        log.warning(
            "%s %s failed (%s); next try in %.0fs",
            message.kind,
            message.id,
            reason,
            pause,
            extra=order,
        )

    async def _recipient(self, session: AsyncSession, order: Order) -> str:
        customer = await auth_repository.get_customer(session, order.customer_id)
        if customer is None:
            raise DeliveryFailed("the customer no longer exists")
        return customer.email

    async def _email(self, to: str, order: Order) -> None:
        subject, body = order_email(self.settings, order)
        try:
            await send_email(self.settings, to=to, subject=subject, body=body)
        except MailError as exc:
            raise DeliveryFailed(str(exc)) from exc

    async def _callback(self, order: Order) -> None:
        assert order.callback_url is not None
        timeout = self.settings.callback_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                await self._call(order)
        except TimeoutError as exc:
            raise DeliveryFailed(f"TimeoutError: no answer within {timeout}s") from exc

    async def _call(self, order: Order) -> None:
        assert order.callback_url is not None
        timeout = self.settings.callback_timeout_seconds
        try:  # checked again before each call: the name may resolve elsewhere by now
            target = await outbound.check_target(
                order.callback_url,
                allow_private=self.settings.allow_private_callbacks,
                resolver=self.resolver,
            )
        except outbound.TargetRefused as exc:
            raise DeliveryFailed(str(exc)) from exc
        body = json.dumps(callback_payload(self.settings, order), separators=(",", ":")).encode()
        secret = signing.customer_secret(self.settings, order.customer_id)
        headers = {
            "Host": target.host,
            "Content-Type": "application/json",
            signing.SIGNATURE_HEADER: signing.sign(secret, body),
            "User-Agent": "CURE-callbacks/1",
        }
        extensions = {"sni_hostname": target.tls_name} if target.tls_name else {}
        try:
            # One deadline for the whole exchange, the host's resolution included (a receiver
            # trickling bytes cannot hold the notifier), and the response body is never read.
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
                request = http.build_request(
                    "POST", target.url, content=body, headers=headers, extensions=extensions
                )
                response = await http.send(request, stream=True)
                await response.aclose()
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"the receiver answered {response.status_code}")

    async def run(self) -> None:
        while True:
            try:
                handled = await self.notify_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notifier pass failed")
                handled = 0
            if handled < BATCH:
                await asyncio.sleep(self.settings.notify_poll_seconds)


def _result_link(settings: Settings, order: Order) -> str:
    return f"{settings.public_url.rstrip('/')}/v1/orders/{order.id}/result"


def order_email(settings: Settings, order: Order) -> tuple[str, str]:
    subject = f"CURE order {order.id}: {order.status}"
    lines = [
        f"Your {order.app_id} order {order.id} for {order.start_date} to {order.end_date} "
        f"ended {order.status}.",
        "",
    ]
    if order.status == OrderStatus.SUCCESS:
        lines += [
            f"Download the result (sign in with your token): {_result_link(settings, order)}",
            f"Size: {order.result_size} bytes, {order.result_media_type}, {order.result_checksum}",
        ]
    else:
        lines.append(f"Reason: {order.message or 'none given'}")
    lines += ["", f"Status and history: {settings.public_url.rstrip('/')}/v1/orders/{order.id}"]
    return subject, "\n".join(lines) + "\n"


def callback_payload(settings: Settings, order: Order) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "event": "order.finished",
        "order_id": str(order.id),
        "app_id": order.app_id,
        "status": order.status,
        "message": order.message,
        "attempt": order.attempt,
        "updated_at": order.updated_at.isoformat(),
    }
    if order.status == OrderStatus.SUCCESS:
        payload["result"] = {
            "href": _result_link(settings, order),
            "size": order.result_size,
            "media_type": order.result_media_type,
            "checksum": order.result_checksum,
        }
    return payload
