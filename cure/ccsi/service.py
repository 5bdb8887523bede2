"""Catalogue rules: who sees which product, registration and removal, links to assets, and the
products CURE's own orders generate."""

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from geoalchemy2 import WKBElement
from geoalchemy2.shape import from_shape, to_shape
from pydantic import TypeAdapter, ValidationError
from shapely.geometry.base import BaseGeometry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.apps import schemas as app_schemas
from cure.auth.principals import Principal
from cure.auth.scopes import ORDERS_READ
from cure.ccsi import repository
from cure.ccsi.exceptions import AssetNotFound, InvalidParameter, ProductExists, ProductNotFound
from cure.ccsi.models import Product
from cure.ccsi.repository import PUBLIC, Keyset, Viewer
from cure.ccsi.schemas import (
    AssetCreate,
    AssetRead,
    CollectionList,
    CollectionRead,
    ProductCreate,
    ProductCriteria,
    ProductRead,
    ProductReference,
    SearchQuery,
    check_collection,
    is_url,
    parse_footprint,
    to_utc,
)
from cure.ccsi.sources.schemas import LOCAL
from cure.config import Settings
from cure.kit.errors import InvalidInput, ServiceUnavailable
from cure.kit.geo import checked_to_db, from_db
from cure.quicklooks import service as quicklook_service
from cure.quicklooks import styles
from cure.quicklooks.exceptions import NoQuicklook
from cure.quicklooks.service import RasterAsset
from cure.storage.service import Storage

_ASSETS = TypeAdapter(dict[str, AssetCreate])


def viewer_of(principal: Principal | None) -> Viewer:
    """Anonymous callers see public products; customers also their own, with a token that may
    read orders (their products are order results); admins, with the admin scope, everything."""
    if principal is None:
        return PUBLIC
    if principal.is_admin:  # an admin customer whose token carries the admin scope
        return Viewer(customer_id=principal.customer_id, sees_all=True)
    if ORDERS_READ not in principal.scopes:
        return PUBLIC
    return Viewer(customer_id=principal.customer_id)


@dataclass(frozen=True)
class SearchPage:
    """One page of a search: its products, how many match (counted up to COUNT_LIMIT: a total
    of COUNT_LIMIT means at least that many), and whether more follow the page."""

    items: list[ProductRead]
    total: int
    more: bool


def check_start_index(query: SearchQuery) -> None:
    """Deep pages are not served, from the local catalogue or from the sources."""
    if query.start_index > repository.LAST_START_INDEX:
        raise InvalidParameter(
            "startIndex",
            f"must be at most {repository.LAST_START_INDEX}: deeper pages are not served. Narrow "
            "the search instead, e.g. with a timeEnd before the acquisition of the last product "
            "seen",
        )


async def search(
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    principal: Principal | None,
    query: SearchQuery,
) -> SearchPage:
    """One page of the products the caller may see, with expiring links to their assets."""
    check_start_index(query)
    viewer = viewer_of(principal)
    products, total, more = await repository.search(session, query, visible_to=viewer)
    items = await to_reads(products, settings=settings, storage=storage, viewer=viewer)
    return SearchPage(items=items, total=min(total, repository.COUNT_LIMIT), more=more)


@dataclass(frozen=True)
class FoundPage:
    """A page of ``find``: its products, the keyset after its last one, whether more follow,
    and how many match (None: more than COUNT_LIMIT)."""

    items: list[ProductRead]
    last: Keyset | None
    more: bool
    matched: int | None


async def find(
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    principal: Principal | None,
    criteria: ProductCriteria,
    *,
    limit: int,
    offset: int = 0,
    after: Keyset | None = None,
) -> FoundPage:
    """Like ``search``, for criteria a query string cannot say (several collections, ids), paged
    by keyset (``after``) or by a bounded offset."""
    viewer = viewer_of(principal)
    products, more = await repository.find(
        session, criteria, visible_to=viewer, limit=limit, offset=offset, after=after
    )
    matched = repository.known_total(len(products), more, offset=offset, after=after)
    if matched is None:
        matched = await repository.count(session, criteria, visible_to=viewer)
    return FoundPage(
        items=await to_reads(products, settings=settings, storage=storage, viewer=viewer),
        last=Keyset.of(products[-1]) if products else None,
        more=more,
        matched=matched if matched <= repository.COUNT_LIMIT else None,
    )


async def collections(session: AsyncSession, principal: Principal | None) -> CollectionList:
    summaries = await repository.collections_summary(session, viewer_of(principal))
    return CollectionList(
        collections=[
            CollectionRead(
                id=s.name,
                product_count=s.product_count,
                bbox=list(s.bbox) if s.bbox else None,
                start=s.start,
                end=s.end,
                product_types=s.product_types,
            )
            for s in summaries
        ]
    )


async def has_collection(
    session: AsyncSession, principal: Principal | None, collection: str
) -> bool:
    """Whether the caller sees a product of the collection (without summarising it)."""
    return await repository.collection_exists(
        session, check_collection(collection), viewer_of(principal)
    )


async def collection_names(session: AsyncSession, principal: Principal | None) -> list[str]:
    return await repository.collection_names(session, viewer_of(principal))


async def get(
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    principal: Principal | None,
    *,
    collection: str,
    identifier: str,
) -> ProductRead:
    """A product the caller may see; any other is not found."""
    viewer = viewer_of(principal)
    product = await repository.get_visible(
        session, check_collection(collection), identifier, visible_to=viewer
    )
    if product is None:
        raise ProductNotFound(f"no product {identifier} in collection {collection}")
    return await to_read(product, settings=settings, storage=storage, viewer=viewer)


async def register(
    session: AsyncSession,
    *,
    collection: str,
    data: ProductCreate,
    owner_id: uuid.UUID | None = None,
    order_id: uuid.UUID | None = None,
) -> Product:
    """Add a product to a collection; an identifier the collection already holds is a 409."""
    collection = check_collection(collection)
    assert data.end is not None  # filled in by ProductCreate
    product_id = await repository.add_if_absent(
        session,
        {
            "collection": collection,
            "identifier": data.identifier,
            "product_type": data.product_type,
            "footprint": checked_to_db(data.footprint),  # ProductCreate checked it
            "start_at": data.start,
            "end_at": data.end,
            "properties": data.properties,
            "assets": _stored_assets(data.assets),
            "owner_id": owner_id,
            "order_id": order_id,
        },
    )
    if product_id is None:
        raise ProductExists(f"collection {collection} already holds a product {data.identifier}")
    product = await repository.get(session, product_id)
    assert product is not None  # inserted by this transaction
    return product


async def remove(session: AsyncSession, *, collection: str, identifier: str) -> None:
    if not await repository.delete(session, check_collection(collection), identifier):
        raise ProductNotFound(f"no product {identifier} in collection {collection}")


async def publish(session: AsyncSession, *, collection: str, identifier: str) -> Product:
    """Make a generated product visible to everyone (input products already are)."""
    product = await repository.get_by_identifier(
        session, check_collection(collection), identifier, for_update=True
    )
    if product is None:
        raise ProductNotFound(f"no product {identifier} in collection {collection}")
    product.published = True
    await session.flush()
    return product


async def to_reads(
    products: list[Product], *, settings: Settings, storage: Storage, viewer: Viewer = PUBLIC
) -> list[ProductRead]:
    """Products as ``viewer`` reads them, each storage key among their assets turned into an
    expiring link; the owner is named only to that owner and to admins."""
    keys = sorted(
        {
            asset["href"]
            for product in products
            for asset in product.assets.values()
            if not is_url(asset["href"])
        }
    )
    links = await storage.presigned_urls(keys, expires_in=settings.result_link_ttl_seconds)
    return [_read(product, links, viewer) for product in products]


async def to_read(
    product: Product, *, settings: Settings, storage: Storage, viewer: Viewer = PUBLIC
) -> ProductRead:
    return (await to_reads([product], settings=settings, storage=storage, viewer=viewer))[0]


def _read(product: Product, links: dict[str, str], viewer: Viewer) -> ProductRead:
    assets = {
        key: AssetRead(**{**asset, "href": links.get(asset["href"], asset["href"])})
        for key, asset in product.assets.items()
    }
    return ProductRead(
        id=product.id,
        collection=product.collection,
        identifier=product.identifier,
        product_type=product.product_type,
        footprint=from_db(product.footprint),
        start=product.start_at,
        end=product.end_at,
        properties=product.properties,
        assets=assets,
        # A published product is everyone's to read, but whose it is stays private.
        owner_id=product.owner_id
        if viewer.sees_all or viewer.customer_id == product.owner_id
        else None,
        order_id=product.order_id,
        published=product.published,
        created_at=product.created_at,
        cloud_cover=cloud_cover_of(product.properties),
        derived_from=[lineage_reference(entry, viewer) for entry in product.derived_from or []],
    )


def lineage_reference(entry: dict[str, Any], viewer: Viewer) -> ProductReference:
    """One product of a lineage as ``viewer`` reads it: in full when it is an input product
    (local or of a source) or one the viewer owns (admins: all); another customer's product by
    its collection alone, its identifier (which names the order) and id withheld. Whose a
    product is was recorded with the lineage, so one published since stays reduced."""
    owner = entry.get("owner_id")
    if owner is None or viewer.sees_all or str(viewer.customer_id) == str(owner):
        return ProductReference.model_validate(
            {key: entry.get(key) for key in ("collection", "identifier", "id", "source")}
        )
    return ProductReference(collection=entry["collection"], source=entry.get("source", "local"))


def cloud_cover_of(properties: dict[str, Any]) -> float | None:
    """A local product's cloud cover in percent, from its properties (as the search filters it)."""
    for name in repository.CLOUD_COVER_PROPERTIES:
        value = properties.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _stored_assets(assets: dict[str, AssetCreate]) -> dict[str, Any]:
    return {key: asset.model_dump(exclude_none=True) for key, asset in assets.items()}


# --- products of CURE's orders ----------------------------------------------------------------


def order_collection(app_id: str) -> str:
    return app_schemas.order_collection(app_id)


def order_identifier(app_id: str, order_id: uuid.UUID) -> str:
    return f"{app_id}-{order_id}"


async def register_order_outputs(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    customer_id: uuid.UUID,
    app_id: str,
    app_version: str,
    roi: WKBElement | BaseGeometry | dict[str, Any],
    start: date | datetime,
    end: date | datetime,
    params: dict[str, Any],
    assets: dict[str, dict[str, Any]],
    product_type: str | None = None,
    derived_from: list[ProductReference] | None = None,
) -> Product:
    """The product an order generated, owned by its customer, in collection ``cure-<app_id>``,
    with its lineage: the products the order staged (``derived_from``).

    Idempotent: a second call for the same order returns the product the first one made. Dates
    cover whole days (start of ``start`` to end of ``end``, UTC).
    """
    collection = check_collection(order_collection(app_id))
    identifier = order_identifier(app_id, order_id)
    try:
        checked_assets = _ASSETS.validate_python(assets)
    except ValidationError as exc:
        raise InvalidInput(f"the order's assets are not valid: {exc.errors()[0]['msg']}") from exc
    start_at, end_at = _moment(start, end=False), _moment(end, end=True)
    if end_at < start_at:
        raise InvalidInput("the order's period ends before it starts")
    values = {
        "collection": collection,
        "identifier": identifier,
        "product_type": product_type or app_id,
        "footprint": _footprint(roi),
        "start_at": start_at,
        "end_at": end_at,
        "properties": {
            "app_id": app_id,
            "app_version": app_version,
            "order_id": str(order_id),
            "params": params,
        },
        "assets": _stored_assets(checked_assets),
        "owner_id": customer_id,
        "order_id": order_id,
        "derived_from": await _lineage(session, derived_from or []),
    }
    # The insert and the read of an earlier product race with nothing but a removal of that
    # product in between; the second round then inserts it.
    for _ in range(2):
        product_id = await repository.add_if_absent(session, values)
        if product_id is not None:
            product = await repository.get(session, product_id)
        else:
            product = await repository.get_by_identifier(session, collection, identifier)
        if product is not None:
            return product
    raise ServiceUnavailable("the order's product was removed while it was being registered")


async def _lineage(
    session: AsyncSession, references: list[ProductReference]
) -> list[dict[str, Any]]:
    """The lineage as stored: each reference once. A local one is named as its stored product
    is (collection, identifier and owner read here, never taken from the worker's word), and
    whose it is decides who later sees it in full; one of CURE's own collections that names no
    stored product is kept by its collection alone."""
    local_ids = [r.id for r in references if r.id is not None and r.source == LOCAL]
    rows = await repository.named(session, local_ids) if local_ids else {}
    stored: list[dict[str, Any]] = []
    seen: set[tuple[str, str | None, str]] = set()
    for reference in references:
        row = rows.get(reference.id) if reference.id and reference.source == LOCAL else None
        entry: dict[str, Any] = {"collection": reference.collection, "source": reference.source}
        if row is not None:
            entry.update(collection=row.collection, identifier=row.identifier, id=str(reference.id))
            if row.owner_id is not None:
                entry["owner_id"] = str(row.owner_id)
        elif reference.source != LOCAL or app_schemas.producing_app(reference.collection) is None:
            entry["identifier"] = reference.identifier  # an input product of a catalogue
        key = (entry["collection"], entry.get("identifier"), entry["source"])
        if key not in seen:
            seen.add(key)
            stored.append(entry)
    return stored


def _footprint(roi: WKBElement | BaseGeometry | dict[str, Any]) -> WKBElement:
    if isinstance(roi, WKBElement):
        roi = to_shape(roi)
    elif isinstance(roi, dict):
        try:
            roi = parse_footprint(roi)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
    return from_shape(roi, srid=4326)


def _moment(value: date | datetime, *, end: bool) -> datetime:
    if isinstance(value, datetime):
        return to_utc(value)
    return datetime.combine(value, time.max if end else time.min, tzinfo=UTC)


@dataclass(frozen=True)
class Availability:
    found: bool
    nearest_before: datetime | None = None
    nearest_after: datetime | None = None


async def availability(
    session: AsyncSession,
    *,
    collection: str,
    product_type: str | None,
    area: WKBElement,
    start: datetime,
    end: datetime,
    visible_to: Viewer = PUBLIC,
) -> Availability:
    """Whether a product ``visible_to`` sees (by default: a public one) covers ``area`` in
    [start, end], and if not the nearest dates around that period that do have one."""
    where: dict[str, Any] = {
        "collection": collection,
        "product_type": product_type,
        "area": area,
        "visible_to": visible_to,
    }
    found = await repository.any_covering(session, start=start, end=end, **where)
    if found:
        return Availability(found=True)
    before, after = await repository.nearest_dates(session, start=start, end=end, **where)
    return Availability(found=False, nearest_before=before, nearest_after=after)


# --- for facades that need the stored products themselves ------------------------------------


async def visible_product(
    session: AsyncSession, principal: Principal | None, *, collection: str, identifier: str
) -> Product:
    """A product the caller may see, as stored (asset hrefs are storage keys); else not found."""
    product = await repository.get_visible(
        session, check_collection(collection), identifier, visible_to=viewer_of(principal)
    )
    if product is None:
        raise ProductNotFound(f"no product {identifier} in collection {collection}")
    return product


async def asset_raster(
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal | None,
    *,
    collection: str,
    identifier: str,
    asset: str,
) -> RasterAsset:
    """A raster asset of a product the caller may see, to draw as a quicklook (read in a session
    of its own, closed before any storage I/O or rendering)."""
    async with sessionmaker() as session:
        product = await visible_product(
            session, principal, collection=collection, identifier=identifier
        )
    found = product.assets.get(asset)
    if found is None:
        raise AssetNotFound(f"the product has no asset {asset!r}")
    if not quicklook_service.is_raster(found.get("type")) or is_url(found["href"]):
        raise NoQuicklook(f"the asset {asset!r} is not a raster in CURE's storage")
    style = styles.style_for(product.properties.get("app_id"), product.product_type)
    return RasterAsset(found["href"], style, found.get("size"))


async def find_products(
    session: AsyncSession, principal: Principal | None, criteria: ProductCriteria, *, limit: int
) -> list[Product]:
    """The newest ``limit`` products matching the criteria that the caller may see, as stored."""
    products, _ = await repository.find(
        session, criteria, visible_to=viewer_of(principal), limit=limit
    )
    return products


def orderer(customer_id: uuid.UUID) -> Viewer:
    """Whose products an order of ``customer_id`` may take as inputs: public ones and the
    customer's own, never another customer's unpublished one, whoever submits it (an admin's
    own order too: its scope to see everything does not extend to what it orders)."""
    return Viewer(customer_id=customer_id)


async def order_inputs(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    collection: str,
    product_type: str | None,
    area: BaseGeometry,
    start: datetime | None,
    end: datetime,
    limit: int,
    newest_first: bool = False,
) -> list[Product]:
    """Products of one of CURE's own collections an order of ``customer_id`` may take as inputs
    (``orderer``) that meet ``area`` within [start, end], as stored: those covering most of the
    area first, then the newest (``newest_first``: the newest first)."""
    return await repository.covering_most(
        session,
        collection=collection,
        product_type=product_type,
        area=from_shape(area, srid=4326),
        start=start,
        end=end,
        visible_to=orderer(customer_id),
        limit=limit,
        newest_first=newest_first,
    )


async def acquisition_days(
    session: AsyncSession,
    *,
    collection: str,
    product_type: str | None,
    bbox: tuple[float, float, float, float] | None,
    start: date,
    end: date,
) -> list[date]:
    """The days from ``start`` to ``end`` with a public product of the collection over the box."""
    moments = await repository.acquisition_days(
        session,
        collection=collection,
        product_type=product_type,
        bbox=bbox,
        start=_moment(start, end=False),
        end=_moment(end, end=True),
    )
    return [moment.date() for moment in moments]


async def places(session: AsyncSession) -> list[repository.Place]:
    """Named places of the public products (the demo data's cities), with their extents."""
    return await repository.places(session)
