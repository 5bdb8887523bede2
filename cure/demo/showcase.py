"""`cure portal prepare`: the storylines' demonstration products, made the way a customer makes
products: real orders of the apps on the demo data, run by the workers, registered in the
catalogue by their SUCCESS, then published by the demo admin so that everyone sees them.

Idempotent: a demonstration whose product is published already costs one query; an order still
running is waited for; one that failed is ordered anew (at most ``ATTEMPTS`` times in all).
"""

import asyncio
import hashlib
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field

from cure.auth import repository as auth_repository
from cure.auth.service import Principal
from cure.ccsi import service as ccsi_service
from cure.crm import service as crm_service
from cure.crm.schemas import CustomerCreate
from cure.kit.errors import CureError
from cure.kit.resources import Resources
from cure.orders import service as order_service
from cure.orders.lifecycle import FINAL_STATES, OrderStatus
from cure.orders.schemas import OrderCreate
from cure.portal import service as portal_service
from cure.portal import storylines
from cure.portal.storylines import DemoProduct

log = logging.getLogger(__name__)
ATTEMPTS = 3


@dataclass
class PrepareReport:
    published: list[str] = field(default_factory=list)  # already there, or published now
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def demonstrations(stories: tuple[storylines.Storyline, ...] | None = None) -> list[DemoProduct]:
    """Every distinct demonstration product the storylines name."""
    unique: dict[str, DemoProduct] = {}
    for story in stories if stories is not None else storylines.load_all():
        for demo in story.front.products.values():
            unique.setdefault(_fingerprint(demo), demo)
    return list(unique.values())


def _fingerprint(demo: DemoProduct) -> str:
    what = {
        "app": demo.app,
        "date": demo.date.isoformat(),
        "region": demo.region,
        "params": demo.params,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:20]


def _describe(demo: DemoProduct) -> str:
    return f"{demo.app} {demo.date} {list(demo.region)}"


def _region(demo: DemoProduct) -> dict[str, object]:
    west, south, east, north = demo.region
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


async def _demo_admin(resources: Resources, apps: set[str]) -> Principal:
    """The demo admin (made once, with a random password nobody knows), acting on the server."""
    settings = resources.settings
    async with resources.sessionmaker() as session, session.begin():
        customer = await auth_repository.get_customer_by_email(session, settings.portal_demo_email)
        if customer is None:
            customer = await crm_service.create_admin(
                session,
                settings,
                CustomerCreate(
                    name="CURE demonstrations",
                    email=settings.portal_demo_email,
                    password=secrets.token_urlsafe(32),
                ),
            )
        if not customer.is_admin or not customer.is_active:
            raise CureError(
                f"{settings.portal_demo_email} is not an active admin: set CURE_PORTAL_DEMO_EMAIL "
                "to an address of CURE's own"
            )
        scopes = frozenset(customer.scopes) | {f"app:{app}" for app in apps}
        return Principal(customer.id, settings.first_party_client_id, scopes, True)


async def _submit(
    resources: Resources, admin: Principal, demo: DemoProduct, attempt: int
) -> tuple[uuid.UUID, str]:
    """The demonstration's order of this attempt (the same one again on a later run: the
    Idempotency-Key names the demonstration and the attempt) and its status."""
    data = OrderCreate(
        roi=_region(demo), start_date=demo.date, params=demo.params, notify_email=False
    )
    async with resources.sessionmaker() as session, session.begin():
        order, _ = await order_service.submit(
            session,
            resources.settings,
            admin,
            app_id=demo.app,
            data=data,
            idempotency_key=f"portal-demo-{_fingerprint(demo)}-{attempt}",
        )
        return order.id, order.status


async def _wait(
    resources: Resources, admin: Principal, order_id: uuid.UUID, deadline: float
) -> str:
    while True:
        async with resources.sessionmaker() as session:
            order = await order_service.get(session, admin, order_id)
        if OrderStatus(order.status) in FINAL_STATES or time.monotonic() > deadline:
            return order.status
        await asyncio.sleep(0.5)


async def _publish(resources: Resources, app: str, order_id: uuid.UUID) -> None:
    async with resources.sessionmaker() as session, session.begin():
        await ccsi_service.publish(
            session,
            collection=ccsi_service.order_collection(app),
            identifier=ccsi_service.order_identifier(app, order_id),
        )


async def _prepare_one(
    resources: Resources, admin: Principal, demo: DemoProduct, deadline: float
) -> str:
    """The demonstration's final word: SUCCESS once its product is published."""
    status = "none"
    for attempt in range(1, ATTEMPTS + 1):
        order_id, status = await _submit(resources, admin, demo, attempt)
        status = await _wait(resources, admin, order_id, deadline)
        if status == OrderStatus.SUCCESS:
            await _publish(resources, demo.app, order_id)
            return status
        if OrderStatus(status) not in FINAL_STATES:  # out of time
            return f"{status} after the time allowed"
        log.warning("demonstration %s: order %s ended %s", _describe(demo), order_id, status)
    return status


async def prepare(
    resources: Resources,
    *,
    demos: list[DemoProduct] | None = None,
    timeout_seconds: float = 600,
) -> PrepareReport:
    """Make sure every demonstration product is in the catalogue and published. The API (its
    relay) and a worker must be running: the orders run as any other."""
    demos = demonstrations() if demos is None else demos
    report = PrepareReport()
    missing: list[DemoProduct] = []
    for demo in demos:
        async with resources.sessionmaker() as session:
            if await portal_service.demonstration_product(session, demo) is not None:
                report.published.append(_describe(demo))
            else:
                missing.append(demo)
    if not missing:
        return report
    admin = await _demo_admin(resources, {demo.app for demo in missing})
    deadline = time.monotonic() + timeout_seconds
    outcomes = await asyncio.gather(
        *(_prepare_one(resources, admin, demo, deadline) for demo in missing),
        return_exceptions=True,
    )
    for demo, outcome in zip(missing, outcomes, strict=True):
        if outcome == OrderStatus.SUCCESS:
            report.published.append(_describe(demo))
        else:
            reason = (
                f"{type(outcome).__name__}: {outcome}"
                if isinstance(outcome, BaseException)
                else outcome
            )
            report.failed.append(f"{_describe(demo)}: {reason}")
    return report
