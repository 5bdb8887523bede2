"""Orders: submit, read, list, cancel and results. State changes go through ``events.apply_event``."""

import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shapely.geometry import shape
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from cure.apps import registry as app_registry
from cure.apps.schemas import AppInput
from cure.auth.exceptions import EmailNotVerified, InsufficientScope
from cure.auth.principals import Principal
from cure.auth.scopes import app_scope
from cure.ccsi import federation as ccsi_federation
from cure.ccsi import service as ccsi_service
from cure.ccsi.federation import Coverage, Federation, LocalSessions
from cure.config import Settings
from cure.kit import outbound
from cure.kit.db import utcnow
from cure.kit.geo import checked_to_db
from cure.kit.pagination import decode_cursor, page_of
from cure.kit.resources import ReadConnections
from cure.orders import repository
from cure.orders.dispatch import run_order_values
from cure.orders.events import apply_event, order_event
from cure.orders.exceptions import (
    AssetNotFound,
    CallbackRefused,
    FilterForbidden,
    IdempotencyKeyReused,
    InputsMissing,
    InputSourcesUnavailable,
    OrderFinished,
    OrderNotFound,
    ResultNotReady,
    TooManyOrders,
)
from cure.orders.lifecycle import FINAL_STATES, OrderStatus, result_files
from cure.orders.models import Order, OrderEvent
from cure.orders.repository import SubmissionCounts
from cure.orders.schemas import (
    DownloadLinkRead,
    OrderCreate,
    OrderFilter,
    OrderPage,
    OrderRead,
    OrderSummary,
)
from cure.quicklooks import service as quicklook_service
from cure.quicklooks import styles
from cure.quicklooks.exceptions import NoQuicklook
from cure.quicklooks.service import RasterAsset
from cure.storage.service import Storage

# -- submit --------------------------------------------------------------------------------------


async def submit(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    *,
    app_id: str,
    data: OrderCreate,
    reads: async_sessionmaker[AsyncSession] | None = None,
    idempotency_key: str | None = None,
    resolver: outbound.Resolver = outbound.resolve,
    sources: Federation | None = None,
) -> tuple[Order, bool]:
    """The new order and True, or, for a repeated Idempotency-Key, the first order and False.

    Cheap checks before costly ones: the app and scope, the customer's limits, the parameters'
    JSON Schema, the callback host's resolution, the catalogue. ``session`` is first used after
    the host resolved, so no connection waits on a DNS server; the reads before that take a
    short session of ``reads`` that gives its connection back first (without ``reads``, as
    for the demonstration's orders, they read through ``session``). ``sources``: the federated
    catalogue whose remote sources the inputs are also looked for in (None: the local one).
    """
    app = _orderable_app(settings, principal, app_id)
    _check_verified(settings, principal)
    request_hash = _request_hash(app.id, data)
    if reads is None:
        earlier = await _precheck(session, settings, principal, idempotency_key, request_hash)
    else:
        async with reads() as early:  # its connection goes back before anything slow
            earlier = await _precheck(early, settings, principal, idempotency_key, request_hash)
    if earlier is not None:
        return earlier, False
    params = app.validate_params(data.params)
    await _check_callback(settings, data, resolver)
    await _check_inputs(
        _short_sessions(session, reads), settings, principal, app, data, params, sources
    )
    # One customer's submissions one at a time, until commit: limits and keys stay exact.
    await repository.lock_customer(session, principal.customer_id)
    if idempotency_key is not None:
        earlier = await _replay(session, principal, idempotency_key, request_hash)
        if earlier is not None:
            return earlier, False
    order, received = _new_order(principal, app, data, params)
    # The order, its event, its task message and the key in one statement (the outbox guarantee
    # holds within it; its notice wakes the relay at commit), which also reads the limits'
    # counts as they were before it: under the lock they are exact. An order over the limits is
    # taken back at once, so it is never stored whatever the caller does with the error.
    counts, task_id = await repository.insert_submitted(
        session,
        order,
        received,
        task=run_order_values(settings, order.id, order.attempt),
        key=None if idempotency_key is None else (idempotency_key, request_hash),
        since=_window_start(settings),
    )
    refused = _over_limits(settings, counts)
    if refused is not None:
        await repository.take_back(session, order.id, task_id)
        raise refused
    return order, True


def _orderable_app(settings: Settings, principal: Principal, app_id: str) -> app_registry.App:
    app = app_registry.get_registry(settings).get(app_id)
    if app_scope(app.id) not in principal.scopes:
        raise InsufficientScope(app_scope(app.id))
    return app


def _check_verified(settings: Settings, principal: Principal) -> None:
    if settings.require_email_verification and not principal.email_verified:
        raise EmailNotVerified(
            "verify your email before ordering: use the link mailed at registration, or ask "
            "for a new one with POST /v1/crm/customers/me/verification-email"
        )


async def _precheck(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    key: str | None,
    request_hash: str,
) -> Order | None:
    """The order first submitted under ``key``, else None once the customer's limits allow one
    more (both are checked again under the customer's lock). A repeated request gets its first
    order back whatever has changed since: the limits, the catalogue, the callback's host."""
    if key is not None:
        earlier = await _replay(session, principal, key, request_hash)
        if earlier is not None:
            return earlier
    await _check_limits(session, settings, principal.customer_id)
    return None


async def _check_callback(
    settings: Settings, data: OrderCreate, resolver: outbound.Resolver
) -> None:
    if data.callback_url is None:
        return
    try:
        await outbound.check_target(
            str(data.callback_url),
            allow_private=settings.allow_private_callbacks,
            resolver=resolver,
            resolve_seconds=settings.callback_resolve_seconds,
        )
    except outbound.TargetRefused as exc:
        raise CallbackRefused(
            f"callback_url: {exc}", loc=("body", "callback_url"), problems=[str(exc)]
        ) from exc


# The cloud cover (percent) above which a scene cannot serve an order, when the app's parameters
# have one (an app whose inputs have no cloud cover, or that masks clouds itself, has none).
MAX_CLOUD_COVER_PARAMETER = "max_cloud_cover"
# How long a client waits before submitting again when a source did not answer.
SOURCES_RETRY_SECONDS = 30


def _short_sessions(
    session: AsyncSession, reads: async_sessionmaker[AsyncSession] | None
) -> LocalSessions:
    """Short read sessions that give their connection back before a source is called; without
    ``reads`` (the demonstration's orders), ``session`` itself."""
    if reads is not None:
        return reads

    @contextlib.asynccontextmanager
    async def same() -> AsyncIterator[AsyncSession]:
        yield session

    return same


async def _check_inputs(
    sessions: LocalSessions,
    settings: Settings,
    principal: Principal,
    app: app_registry.App,
    data: OrderCreate,
    params: dict[str, Any],
    sources: Federation | None,
) -> None:
    """Fail fast: an order the catalogue (local and its enabled sources) cannot serve is refused
    now, naming the missing input and the nearest dates that do have data, or, when every
    covering scene is too cloudy, the cloud cover found (the worker checks again when it runs).
    When a source needed for the answer did not give one, submit is a 503 with Retry-After,
    never a guess. With an external catalogue (``ccsi_url``) only the worker's check applies.
    Products of CURE's own collections (``cure-<app>``) count when they are the customer's own
    or published (``ccsi_service.orderer``), never another customer's unpublished one."""
    if settings.ccsi_url is not None:
        return
    assert data.end_date is not None  # filled in by OrderCreate
    area = shape(data.roi)
    limit = params.get(MAX_CLOUD_COVER_PARAMETER)
    max_cloud = float(limit) if isinstance(limit, int | float) and limit < 100 else None
    missing: list[str] = []
    undecided: set[str] = set()
    orderer = ccsi_service.orderer(principal.customer_id)
    for wanted in app.manifest.inputs:
        start, end = wanted.window(data.start_date, data.end_date)
        coverages: list[Coverage] = []
        for accepted in wanted.accepted(params):
            found = await ccsi_federation.availability(
                sources,
                sessions,
                collection=accepted.collection,
                product_type=accepted.product_type,
                area=area,
                start=start,
                end=end,
                max_cloud_cover=max_cloud,
                visible_to=orderer,
            )
            if found.found:
                break
            coverages.append(found)
        else:
            if any(c.missing for c in coverages):
                undecided.update(name for c in coverages for name in c.missing)
                continue
            missing.append(_why_missing(wanted, coverages, start, end, params, max_cloud))
    if missing:
        raise InputsMissing(missing)
    if undecided:
        raise InputSourcesUnavailable(
            f"catalogue sources did not answer: {', '.join(sorted(undecided))}; whether the "
            "inputs exist is not known, submit again shortly",
            retry_after=SOURCES_RETRY_SECONDS,
        )


def _why_missing(
    wanted: AppInput,
    coverages: list[Coverage],
    start: datetime,
    end: datetime,
    params: dict[str, Any],
    max_cloud: float | None,
) -> str:
    befores = [c.nearest_before for c in coverages if c.nearest_before is not None]
    afters = [c.nearest_after for c in coverages if c.nearest_after is not None]
    before, after = max(befores, default=None), min(afters, default=None)
    covers = [c.least_cloud_cover for c in coverages if c.least_cloud_cover is not None]
    message = wanted.missing(start, end, before=before, after=after, params=params)
    if not covers or max_cloud is None:
        return message
    # Products cover the region but every one is too cloudy: say so, and how cloudy.
    reason, _, nearest = message.partition("; ")
    reason = reason.replace(" product covers ", " product clear enough covers ", 1)
    cloudy = (
        f"{reason}: the clearest covering scene has {min(covers):g}% cloud cover, more than "
        f"{MAX_CLOUD_COVER_PARAMETER} {max_cloud:g}%"
    )
    return f"{cloudy}; {nearest}" if nearest else cloudy


def _request_hash(app_id: str, data: OrderCreate) -> str:
    canonical = json.dumps(
        {"app_id": app_id, **data.model_dump(mode="json")}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _replay(
    session: AsyncSession, principal: Principal, key: str, request_hash: str
) -> Order | None:
    """The order first submitted with this Idempotency-Key, if any (and the same request)."""
    earlier = await repository.get_idempotency_key(session, principal.customer_id, key)
    if earlier is None:
        return None
    if earlier.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request; use a new key"
        )
    return await get(session, principal, earlier.order_id)


async def _check_limits(session: AsyncSession, settings: Settings, customer_id: uuid.UUID) -> None:
    counts = await repository.submission_counts(session, customer_id, _window_start(settings))
    refused = _over_limits(settings, counts)
    if refused is not None:
        raise refused


def _window_start(settings: Settings) -> datetime:
    return utcnow() - timedelta(seconds=settings.orders_window_seconds)


def _over_limits(settings: Settings, counts: SubmissionCounts) -> TooManyOrders | None:
    """The customer's limits: the one rule, whether read alone or as the order is stored."""
    if counts.active >= settings.max_active_orders:
        return TooManyOrders(
            f"{counts.active} orders are not finished yet; at most "
            f"{settings.max_active_orders} may be",
            retry_after=30,
        )
    if counts.recent >= settings.max_orders_per_window and counts.oldest is not None:
        window = timedelta(seconds=settings.orders_window_seconds)
        wait = int((counts.oldest + window - utcnow()).total_seconds()) + 1
        return TooManyOrders(
            f"at most {settings.max_orders_per_window} orders per "
            f"{settings.orders_window_seconds}s",
            retry_after=wait,
        )
    return None


def _new_order(
    principal: Principal,
    app: app_registry.App,
    data: OrderCreate,
    params: dict[str, Any],
) -> tuple[Order, OrderEvent]:
    """The new order and its RECEIVED event, as ``repository.insert_submitted`` stores them and
    the answer shows them (its history set); made, not added to a session."""
    assert data.end_date is not None  # filled in by OrderCreate
    now = utcnow()
    order = Order(
        id=uuid.uuid4(),
        customer_id=principal.customer_id,
        app_id=app.id,
        app_version=app.manifest.version,
        status=OrderStatus.RECEIVED.value,
        attempt=1,
        dispatches=1,
        roi=checked_to_db(data.roi),  # OrderCreate checked and normalised it
        start_date=data.start_date,
        end_date=data.end_date,
        params=params,
        notify_email=data.notify_email,
        callback_url=str(data.callback_url) if data.callback_url else None,
        created_at=now,
        updated_at=now,
    )
    received = OrderEvent(
        event_id=uuid.uuid4(),
        order_id=order.id,
        status=OrderStatus.RECEIVED.value,
        attempt=1,
        actor=_actor(principal, order),
        occurred_at=now,
        recorded_at=now,
    )
    set_committed_value(order, "events", [received])
    return order, received


def _actor(principal: Principal, order: Order) -> str:
    """Who acted on the order, as its owner reads it in the history: the customer, or "admin"
    when an admin acts on another customer's order (an admin's id is not the customer's to see)."""
    if principal.customer_id != order.customer_id:
        return "admin"
    return f"customer:{principal.customer_id}"


# -- read, list, cancel, results -----------------------------------------------------------------


async def get(session: AsyncSession, principal: Principal, order_id: uuid.UUID) -> Order:
    # Another customer's order answers exactly like a missing one: ids reveal nothing.
    order = await repository.get_with_events(session, order_id, customer_id=_owner(principal))
    if order is None:
        raise OrderNotFound(f"no order with id {order_id}")
    return order


async def status(connect: ReadConnections, principal: Principal, order_id: uuid.UUID) -> OrderRead:
    """What ``get`` answers, read in one statement without the ORM or a session (the API's
    most frequent request: GET /v1/orders/{id})."""
    async with connect() as connection:
        rows = await repository.read_status(connection, order_id, customer_id=_owner(principal))
    if not rows:
        raise OrderNotFound(f"no order with id {order_id}")
    return OrderRead.from_rows(rows)


def _owner(principal: Principal) -> uuid.UUID | None:
    """The customer whose orders the principal may see; None for an admin (all)."""
    return None if principal.is_admin else principal.customer_id


async def list_orders(
    session: AsyncSession, principal: Principal, filters: OrderFilter
) -> OrderPage:
    owner = _owner(principal)
    if owner is not None and filters.customer_id not in (None, principal.customer_id):
        raise FilterForbidden("customer_id: only admins may list other customers' orders")
    after = decode_cursor(filters.cursor, filters.sort) if filters.cursor else None
    rows = await repository.list_page(session, filters, customer_id=owner, after=after)
    by_updated = filters.sort.lstrip("-") == "updated_at"
    page, next_cursor = page_of(
        rows,
        limit=filters.limit,
        sort=filters.sort,
        key=lambda o: (o.updated_at if by_updated else o.created_at, o.id),
    )
    return OrderPage(items=[OrderSummary.model_validate(o) for o in page], next_cursor=next_cursor)


async def cancel(session: AsyncSession, principal: Principal, order_id: uuid.UUID) -> Order:
    """Cancel a order that has not ended. A QUEUED order never starts; a RUNNING one's worker
    sees the state within a second and stops and removes its container."""
    order = await repository.get_for_update(session, order_id, customer_id=_owner(principal))
    if order is None:
        raise OrderNotFound(f"no order with id {order_id}")
    if OrderStatus(order.status) in FINAL_STATES:
        raise OrderFinished(f"the order is already {order.status}; it cannot be cancelled")
    event = order_event(
        order.id,
        OrderStatus.CANCELLED,
        attempt=order.attempt,
        actor=_actor(principal, order),
        message="cancelled by an admin"
        if principal.customer_id != order.customer_id
        else "cancelled on request",
    )
    await apply_event(session, event, fresh=True)
    return await get(session, principal, order_id)


async def result_link(
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    principal: Principal,
    order_id: uuid.UUID,
) -> str:
    order = await get(session, principal, order_id)
    if order.status != OrderStatus.SUCCESS or order.result_key is None:
        raise ResultNotReady(
            f"the order is {order.status}; a result exists only once it is SUCCESS"
        )
    return await storage.presigned_url(
        order.result_key, expires_in=settings.result_link_ttl_seconds
    )


def result_assets(order: Order) -> list[tuple[str, dict[str, Any]]]:
    """A successful order's files by role, the primary one first, then by role."""
    if order.status != OrderStatus.SUCCESS:
        raise ResultNotReady(f"the order is {order.status}; assets exist only once it is SUCCESS")
    return result_files(order.status, order.assets)


def result_asset(order: Order, role: str) -> dict[str, Any]:
    """One file of a successful order, by its role (see ``assets`` in the order's status)."""
    asset = dict(result_assets(order)).get(role)
    if asset is None:
        raise AssetNotFound(f"the order has no asset {role!r}")
    return asset


async def asset_link(
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    principal: Principal,
    order_id: uuid.UUID,
    role: str,
) -> str:
    asset = result_asset(await get(session, principal, order_id), role)
    return await storage.presigned_url(asset["key"], expires_in=settings.result_link_ttl_seconds)


async def asset_download(
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    principal: Principal,
    order_id: uuid.UUID,
    role: str,
) -> DownloadLinkRead:
    """An expiring link that makes a browser save the asset (rather than leave the page)."""
    order = await get(session, principal, order_id)
    asset = result_asset(order, role)
    filename = f"{order.app_id}-{str(order.id)[:8]}-{role}{Path(asset['key']).suffix}"
    ttl = settings.result_link_ttl_seconds
    href = await storage.download_url(asset["key"], expires_in=ttl, filename=filename)
    return DownloadLinkRead(href=href, expires_in=ttl, filename=filename)


async def asset_raster(
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    order_id: uuid.UUID,
    role: str,
) -> RasterAsset:
    """A raster output of one of the caller's orders that succeeded, to draw as a quicklook
    (read in a session of its own, closed before any storage I/O or rendering)."""
    async with sessionmaker() as session:
        order = await get(session, principal, order_id)
    asset = result_asset(order, role)
    if not quicklook_service.is_raster(asset.get("media_type")):
        raise NoQuicklook(f"the asset {role!r} is not a raster")
    return RasterAsset(asset["key"], styles.style_for(order.app_id), asset.get("size"))
