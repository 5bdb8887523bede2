"""`cure portal prepare`: the storylines' demonstration products, made the way a customer makes
products: real orders of the apps on the demo data, run by the workers, registered in the
catalogue by their SUCCESS, then published so that everyone sees them. They are ordered under a
service account (``CURE_PORTAL_DEMO_EMAIL``): a customer, not an admin, that nobody logs in as.

Idempotent: a demonstration whose product is published already costs one query; an order still
running is waited for; one that failed is ordered anew (at most ``ATTEMPTS`` times in all).
"""

import asyncio
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field

from cure.apps import registry as app_registry
from cure.apps.exceptions import AppNotFound
from cure.apps.schemas import producing_app
from cure.auth import repository as auth_repository
from cure.auth.models import Customer
from cure.auth.principals import Principal
from cure.auth.scopes import app_scope
from cure.ccsi import service as ccsi_service
from cure.crm import service as crm_service
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
# Not a hash any password verifies against: the demonstrations' account has no password.
LOCKED_HASH = "!"


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


def _consumes_products(resources: Resources, demo: DemoProduct) -> bool:
    """Whether the demonstration's app reads products of CURE's own collections."""
    try:
        app = app_registry.get_registry(resources.settings).get(demo.app)
    except AppNotFound:
        return False  # its order says so
    return any(
        producing_app(f.collection) is not None for i in app.manifest.inputs for f in i.accepted()
    )


def _describe(demo: DemoProduct) -> str:
    return f"{demo.app} {demo.date} {list(demo.region)}"


def _region(demo: DemoProduct) -> dict[str, object]:
    west, south, east, north = demo.region
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


async def demo_account(resources: Resources, apps: set[str]) -> Principal:
    """The demonstrations' service account, made at first use, acting on the server: a customer
    with the default scopes (its products name it as their owner, so it must not be an admin),
    no password and no API client, at an address no mail reaches, so nobody logs in as it."""
    settings = resources.settings
    email = settings.portal_demo_email.lower()
    async with resources.sessionmaker() as session, session.begin():
        customer = await auth_repository.get_customer_by_email(session, email)
        if customer is None:
            customer = Customer(
                name="CURE demonstrations",
                email=email,
                password_hash=LOCKED_HASH,
                scopes=crm_service.default_scopes(settings),
            )
            await auth_repository.add_customer(session, customer)
        if customer.is_admin or not customer.is_active:
            raise CureError(
                f"{email} must not be an admin and must be active: the demonstrations are "
                "published under it; set CURE_PORTAL_DEMO_EMAIL to a service account's address"
            )
        scopes = frozenset(customer.scopes) | {app_scope(app) for app in apps}
        # The server vouches for its own account: it orders even where verification is required.
        return Principal(customer.id, settings.first_party_client_id, scopes, False, True)


async def _submit(
    resources: Resources, account: Principal, demo: DemoProduct, attempt: int
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
            account,
            app_id=demo.app,
            data=data,
            idempotency_key=f"portal-demo-{_fingerprint(demo)}-{attempt}",
        )
        return order.id, order.status


async def _wait(
    resources: Resources, account: Principal, order_id: uuid.UUID, deadline: float
) -> str:
    while True:
        async with resources.sessionmaker() as session:
            order = await order_service.get(session, account, order_id)
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
    resources: Resources, account: Principal, demo: DemoProduct, deadline: float
) -> str:
    """The demonstration's final word: SUCCESS once its product is published."""
    status = "none"
    for attempt in range(1, ATTEMPTS + 1):
        order_id, status = await _submit(resources, account, demo, attempt)
        status = await _wait(resources, account, order_id, deadline)
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
    account = await demo_account(resources, {demo.app for demo in missing})
    deadline = time.monotonic() + timeout_seconds
    outcomes: list[object] = []
    # An app that takes another app's products (heat_exposure takes suhi's) is ordered once
    # the others are published: its order finds them then.
    waves = [
        [demo for demo in missing if not _consumes_products(resources, demo)],
        [demo for demo in missing if _consumes_products(resources, demo)],
    ]
    for wave in waves:
        outcomes += await asyncio.gather(
            *(_prepare_one(resources, account, demo, deadline) for demo in wave),
            return_exceptions=True,
        )
    for demo, outcome in zip([d for wave in waves for d in wave], outcomes, strict=True):
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
