"""The portal's rules: cookie sessions over the OAuth2 server, storylines and their demonstration
products, and what the order form needs."""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.apps import registry as app_registry
from cure.auth import service as auth_service
from cure.auth import tokens
from cure.auth.service import ClientCredentials
from cure.auth.throttle import Throttle
from cure.ccsi import service as ccsi_service
from cure.ccsi.models import Product
from cure.ccsi.schemas import ProductCriteria, is_url
from cure.config import Settings
from cure.portal import storylines
from cure.portal.exceptions import StorylineNotFound
from cure.portal.schemas import (
    AvailableDatesRead,
    PlaceRead,
    SessionRead,
    StorylineProductRead,
    StorylineRead,
    StorylineSummary,
)
from cure.quicklooks import service as quicklook_service
from cure.storage.service import Storage

# -- sessions ------------------------------------------------------------------------------------

SESSION_PATH = "/v1/portal/session"
# Prefixed names browsers enforce: a __Host- cookie is kept only if Secure, Path=/ and without
# Domain (no subdomain or plain-http page can set or shadow it); the refresh cookie keeps to the
# session's path, so it is __Secure- (kept only if Secure).
REFRESH_COOKIE = "__Secure-cure_refresh"
CSRF_COOKIE = "__Host-cure_csrf"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Session:
    """What a login or refresh gives: the access token for the page, and the refresh token and
    its CSRF token for the cookies."""

    access: SessionRead
    refresh_token: str
    csrf_token: str


def csrf_token(settings: Settings, refresh_token: str) -> str:
    """The CSRF token bound to a refresh token: an HMAC of it under a key derived from the
    token-signing key. A page reads it from its (script-readable) cookie and sends it back in a
    header; another site can neither read it nor make one that matches the refresh cookie."""
    secret = tokens.key_material(settings).signing_key.encode()
    key = hashlib.sha256(b"cure-portal-csrf\x00" + secret).digest()
    mac = hmac.new(key, refresh_token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_matches(settings: Settings, refresh_token: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(
        csrf_token(settings, refresh_token), presented
    )


def _session(settings: Settings, issued: Any) -> Session:
    assert issued.refresh_token is not None  # the password and refresh grants always give one
    return Session(
        access=SessionRead(
            access_token=issued.access_token, expires_in=issued.expires_in, scope=issued.scope
        ),
        refresh_token=issued.refresh_token,
        csrf_token=csrf_token(settings, issued.refresh_token),
    )


async def log_in(
    session: AsyncSession, settings: Settings, throttle: Throttle, *, email: str, password: str
) -> Session:
    """The password grant of the first-party public client (throttled like the token endpoint)."""
    issued = await auth_service.issue_token(
        session,
        settings,
        throttle,
        grant_type="password",
        credentials=ClientCredentials(settings.first_party_client_id),
        username=email,
        password=password,
    )
    return _session(settings, issued)


async def refresh(
    session: AsyncSession, settings: Settings, throttle: Throttle, *, refresh_token: str
) -> Session:
    """The refresh grant: a new access token and a new refresh token (the old one is spent; a
    spent one presented again ends the whole login)."""
    issued = await auth_service.issue_token(
        session,
        settings,
        throttle,
        grant_type="refresh_token",
        credentials=ClientCredentials(settings.first_party_client_id),
        refresh_token=refresh_token,
    )
    return _session(settings, issued)


async def log_out(
    session: AsyncSession,
    settings: Settings,
    throttle: Throttle,
    *,
    refresh_token: str | None,
    access_token: str | None,
) -> None:
    """Revoke the login (every refresh token of its family, and the access tokens issued with
    them) and the access token the page holds."""
    client = await auth_service.authenticate_client(
        session,
        settings,
        throttle,
        ClientCredentials(settings.first_party_client_id),
        allow_public=True,
    )
    for token in (refresh_token, access_token):
        if token:
            await auth_service.revoke(session, settings, client, token=token)


MAX_JSON_BYTES = 1024 * 1024


# -- storylines ----------------------------------------------------------------------------------


def _summary(story: storylines.Storyline) -> StorylineSummary:
    apps = sorted({product.app for product in story.front.products.values()})
    front = story.front
    return StorylineSummary(
        slug=story.slug, title=front.title, summary=front.summary, city=front.city, apps=apps
    )


def list_storylines() -> list[StorylineSummary]:
    return [_summary(story) for story in storylines.load_all()]


def _day(value: date) -> tuple[datetime, datetime]:
    return datetime.combine(value, time.min, UTC), datetime.combine(value, time.max, UTC)


def _params_match(product: Product, wanted: dict[str, Any]) -> bool:
    params = product.properties.get("params") or {}
    return all(params.get(name) == value for name, value in wanted.items())


async def demonstration_product(
    session: AsyncSession, demo: storylines.DemoProduct
) -> Product | None:
    """The public product of the demonstration: the app's collection, the day, over the region,
    with its parameters; the newest if there are several."""
    start, end = _day(demo.date)
    criteria = ProductCriteria(
        collections=(ccsi_service.order_collection(demo.app),),
        bbox=demo.region,
        time_start=start,
        time_end=end,
    )
    found = await ccsi_service.find_products(session, None, criteria, limit=50)
    matching = [
        p for p in found if _params_match(p, demo.params) and p.start_at.date() == demo.date
    ]
    return max(matching, key=lambda p: p.created_at, default=None)


def _primary_raster_key(product: Product) -> str | None:
    rasters = [
        key
        for key, asset in product.assets.items()
        if quicklook_service.is_raster(asset.get("type"))
    ]
    return "data" if "data" in rasters else (rasters[0] if rasters else None)


async def _statistics(storage: Storage, product: Product) -> dict[str, Any] | None:
    asset = product.assets.get("metadata")
    if asset is None or is_url(asset["href"]) or (asset.get("size") or 0) > MAX_JSON_BYTES:
        return None
    raw = await storage.read(asset["href"])
    if raw is None:
        return None
    try:
        loaded = json.loads(raw)
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None


async def read_storyline(
    sessionmaker: async_sessionmaker[AsyncSession], storage: Storage, slug: str
) -> StorylineRead:
    """The storyline with its demonstration products: found in one short session, closed before
    their statistics are read from storage."""
    story = next((s for s in storylines.load_all() if s.slug == slug), None)
    if story is None:
        raise StorylineNotFound(f"no storyline {slug!r}")
    async with sessionmaker() as session:
        found = {
            name: await demonstration_product(session, demo)
            for name, demo in story.front.products.items()
        }
    products: dict[str, StorylineProductRead] = {}
    for name, demo in story.front.products.items():
        product = found[name]
        read = StorylineProductRead(
            name=name,
            app=demo.app,
            title=demo.title,
            date=demo.date,
            region=list(demo.region),
            available=product is not None,
            collection=ccsi_service.order_collection(demo.app),
        )
        if product is not None:
            raster = _primary_raster_key(product)
            read.identifier = product.identifier
            read.statistics = await _statistics(storage, product)
            if raster is not None:
                read.quicklook = (
                    f"/v1/ccsi/{product.collection}/products/{product.identifier}"
                    f"/assets/{raster}/quicklook"
                )
        products[name] = read
    return StorylineRead(**_summary(story).model_dump(), blocks=story.blocks, products=products)


# -- what the order form needs -------------------------------------------------------------------


async def available_dates(
    session: AsyncSession,
    settings: Settings,
    *,
    app_id: str,
    bbox: tuple[float, float, float, float] | None,
    start: date,
    end: date,
) -> AvailableDatesRead:
    """The days from ``start`` to ``end`` on which each of the app's dated inputs (those that
    must fall within the order's own days) has a public product over the box. Inputs that may be
    years old (a land cover layer) do not decide the day."""
    app = app_registry.get_registry(settings).get(app_id)
    dated = [wanted for wanted in app.manifest.inputs if wanted.max_age_days == 0]
    if not app.manifest.inputs:
        return AvailableDatesRead(app_id=app.id, needs_inputs=False, dates=[])
    days: set[date] | None = None
    for wanted in dated:
        found = set(
            await ccsi_service.acquisition_days(
                session,
                collection=wanted.collection,
                product_type=wanted.product_type,
                bbox=bbox,
                start=start,
                end=end,
            )
        )
        days = found if days is None else days & found
    if days is None:  # only undated inputs: every day of the period will do
        days = {start + timedelta(days=n) for n in range((end - start).days + 1)}
    return AvailableDatesRead(app_id=app.id, needs_inputs=True, dates=sorted(days))


async def places(session: AsyncSession) -> list[PlaceRead]:
    return [
        PlaceRead(name=place.name, bbox=list(place.bbox))
        for place in await ccsi_service.places(session)
    ]
