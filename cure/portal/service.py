"""The portal's rules: cookie sessions over the OAuth2 server, quicklooks of raster assets (cached
in storage), storylines and their demonstration products, and what the order form needs."""

import asyncio
import base64
import hashlib
import hmac
import json
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.apps import registry as app_registry
from cure.auth import service as auth_service
from cure.auth import tokens
from cure.auth.service import ClientCredentials, Principal
from cure.auth.throttle import Throttle
from cure.ccsi import service as ccsi_service
from cure.ccsi.models import Product
from cure.ccsi.repository import ProductCriteria
from cure.ccsi.schemas import is_url
from cure.config import Settings
from cure.orders import service as order_service
from cure.orders.exceptions import AssetNotFound, ResultNotReady
from cure.orders.lifecycle import OrderStatus
from cure.portal import quicklook, storylines
from cure.portal.exceptions import NoQuicklook, StorylineNotFound
from cure.portal.renders import Renders
from cure.portal.schemas import (
    AvailableDatesRead,
    PlaceRead,
    SessionRead,
    StorylineProductRead,
    StorylineRead,
    StorylineSummary,
)
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


# -- quicklooks ----------------------------------------------------------------------------------

RASTER_TYPES = ("image/tiff",)
MAX_RASTER_BYTES = 512 * 1024 * 1024
MAX_JSON_BYTES = 1024 * 1024


@dataclass(frozen=True)
class RasterAsset:
    key: str  # the storage key
    style: quicklook.Style
    size: int | None


def _cache_keys(asset: RasterAsset) -> tuple[str, str]:
    base = f"{asset.key}.quicklook-v{quicklook.STYLE_VERSION}"
    return f"{base}.json", f"{base}.png"


async def _read_stored(storage: Storage, key: str) -> bytes | None:
    """The object's bytes, or None when storage has no such object (read by its key: one
    request, no listing)."""
    return await storage.read(key)


async def _render(
    storage: Storage, renders: Renders, asset: RasterAsset
) -> tuple[bytes, dict[str, Any]]:
    """Render (once, however many ask at the same time; in one of the process's few slots)."""
    if asset.size is not None and asset.size > MAX_RASTER_BYTES:
        raise NoQuicklook("the raster is too large for a quicklook")
    return await renders.render(_cache_keys(asset)[0], lambda: _draw(storage, asset))


async def _draw(storage: Storage, asset: RasterAsset) -> tuple[bytes, dict[str, Any]]:
    json_key, png_key = _cache_keys(asset)
    with tempfile.TemporaryDirectory(prefix="cure-quicklook-") as folder:
        source = Path(folder) / "source.tif"
        await storage.get_file(asset.key, source)
        try:
            png, description = await asyncio.to_thread(quicklook.render, source, asset.style)
        except (ValueError, OSError) as exc:  # not a raster rasterio can read, or no CRS
            raise NoQuicklook(f"the asset cannot be drawn: {exc}") from exc
    # The image first: a description in storage means its image is there too.
    await storage.put(png_key, png, media_type="image/png")
    await storage.put(json_key, json.dumps(description).encode(), media_type="application/json")
    return png, description


async def quicklook_description(
    storage: Storage, renders: Renders, asset: RasterAsset
) -> dict[str, Any]:
    """Bounds, range, colormap, histogram and statistics of the asset's quicklook, rendered on
    first use and then read from storage."""
    json_key, _ = _cache_keys(asset)
    cached = await _read_stored(storage, json_key)
    if cached is not None:
        description: dict[str, Any] = json.loads(cached)
        return description
    return (await _render(storage, renders, asset))[1]


async def quicklook_png(storage: Storage, renders: Renders, asset: RasterAsset) -> bytes:
    # The image is stored before its description: with the image there, it is complete.
    cached = await _read_stored(storage, _cache_keys(asset)[1])
    if cached is not None:
        return cached
    return (await _render(storage, renders, asset))[0]


def _is_raster(media_type: str | None) -> bool:
    return bool(media_type) and media_type.split(";")[0].strip().lower() in RASTER_TYPES  # type: ignore[union-attr]


async def order_raster(
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    order_id: uuid.UUID,
    role: str,
) -> RasterAsset:
    """A raster output of one of the caller's orders that succeeded (read in a session of its
    own, closed before any storage I/O or rendering)."""
    async with sessionmaker() as session:
        order = await order_service.get(session, principal, order_id)
    if order.status != OrderStatus.SUCCESS:
        raise ResultNotReady(f"the order is {order.status}; assets exist only once it is SUCCESS")
    asset = (order.assets or {}).get(role)
    if asset is None:
        raise AssetNotFound(f"the order has no asset {role!r}")
    if not _is_raster(asset.get("media_type")):
        raise NoQuicklook(f"the asset {role!r} is not a raster")
    return RasterAsset(asset["key"], quicklook.style_for(order.app_id), asset.get("size"))


def _product_raster(product: Product, key: str) -> RasterAsset:
    asset = product.assets.get(key)
    if asset is None:
        raise AssetNotFound(f"the product has no asset {key!r}")
    if not _is_raster(asset.get("type")) or is_url(asset["href"]):
        raise NoQuicklook(f"the asset {key!r} is not a raster in CURE's storage")
    style = quicklook.style_for(product.properties.get("app_id"), product.product_type)
    return RasterAsset(asset["href"], style, asset.get("size"))


async def product_raster(
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal | None,
    *,
    collection: str,
    identifier: str,
    asset: str,
) -> RasterAsset:
    """A raster asset of a catalogue product the caller may see (read in a session of its own,
    closed before any storage I/O or rendering)."""
    async with sessionmaker() as session:
        product = await ccsi_service.visible_product(
            session, principal, collection=collection, identifier=identifier
        )
    return _product_raster(product, asset)


@dataclass(frozen=True)
class Download:
    href: str
    filename: str


async def order_download(
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    principal: Principal,
    order_id: uuid.UUID,
    role: str,
) -> Download:
    """An expiring link that makes a browser save the asset (rather than leave the page)."""
    order = await order_service.get(session, principal, order_id)
    if order.status != OrderStatus.SUCCESS:
        raise ResultNotReady(f"the order is {order.status}; assets exist only once it is SUCCESS")
    asset = (order.assets or {}).get(role)
    if asset is None:
        raise AssetNotFound(f"the order has no asset {role!r}")
    suffix = Path(asset["key"]).suffix
    filename = f"{order.app_id}-{str(order.id)[:8]}-{role}{suffix}"
    href = await storage.download_url(
        asset["key"], expires_in=settings.result_link_ttl_seconds, filename=filename
    )
    return Download(href=href, filename=filename)


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
    rasters = [key for key, asset in product.assets.items() if _is_raster(asset.get("type"))]
    return "data" if "data" in rasters else (rasters[0] if rasters else None)


async def _statistics(storage: Storage, product: Product) -> dict[str, Any] | None:
    asset = product.assets.get("metadata")
    if asset is None or is_url(asset["href"]) or (asset.get("size") or 0) > MAX_JSON_BYTES:
        return None
    raw = await _read_stored(storage, asset["href"])
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
