"""STAC API over the catalogue: collections and items are the CCSI collections and products.

Visibility is the catalogue's own (anyone sees public products, a customer also its own, an admin
everything); asset hrefs are the same expiring links. Items are STAC 1.1.0 (core schemas shipped
with pystac, so they validate offline); CURE's products carry the processing extension.
"""

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from shapely.geometry import shape
from sqlalchemy.ext.asyncio import AsyncSession

from cure.auth.principals import Principal
from cure.ccsi import federation
from cure.ccsi import service as ccsi_service
from cure.ccsi.exceptions import ProductNotFound
from cure.ccsi.federation import Federation, LocalSessions
from cure.ccsi.repository import MAX_OFFSET
from cure.ccsi.schemas import (
    AssetRead,
    CollectionRead,
    ProductCriteria,
    ProductRead,
    check_collection,
)
from cure.ccsi.sources.schemas import LOCAL
from cure.config import Settings
from cure.stac.exceptions import CollectionNotFound, ItemNotFound, ItemSourcesUnavailable
from cure.stac.schemas import ItemSearch, keyset_token
from cure.storage.service import Storage

STAC_VERSION = "1.1.0"
PREFIX = "/stac"
JSON = "application/json"
GEOJSON = "application/geo+json"
PROCESSING = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
_API = "https://api.stacspec.org/v1.0.0/"
_FEATURES = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
# Exactly what is implemented and tested (tests/stac).
CONFORMANCE = [
    _API + "core",
    _API + "collections",
    _API + "ogcapi-features",
    _API + "item-search",
    _FEATURES + "core",
    _FEATURES + "geojson",
]
ORDER_PRODUCT_KEYS = {"app_id", "app_version", "order_id", "params"}


def base_url(settings: Settings) -> str:
    return f"{settings.public_url.rstrip('/')}{PREFIX}"


def _link(href: str, rel: str, media_type: str = JSON, **extra: Any) -> dict[str, Any]:
    return {"rel": rel, "href": href, "type": media_type, **extra}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# -- landing page and conformance --------------------------------------------------------------


async def landing_page(
    session: AsyncSession,
    settings: Settings,
    principal: Principal | None,
    sources: Federation | None = None,
) -> dict[str, Any]:
    base, root = base_url(settings), settings.public_url.rstrip("/")
    names = await federation.collection_names(sources, session, principal)
    return {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": "cure",
        "title": "CURE catalogue",
        "description": "Copernicus input products and the products CURE's orders generated. "
        "Anyone sees public products; a signed-in customer also sees its own.",
        "conformsTo": CONFORMANCE,
        "links": [
            _link(base, "self"),
            _link(base, "root"),
            _link(f"{base}/conformance", "conformance"),
            _link(f"{base}/collections", "data"),
            _link(f"{base}/search", "search", GEOJSON, method="GET"),
            _link(f"{base}/search", "search", GEOJSON, method="POST"),
            _link(
                f"{root}/openapi.json",
                "service-desc",
                "application/vnd.oai.openapi+json;version=3.1",
            ),
            _link(f"{root}/docs", "service-doc", "text/html"),
            *(_link(f"{base}/collections/{name}", "child", title=name) for name in names),
        ],
    }


def conformance() -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}


# -- collections ---------------------------------------------------------------------------------


def _collection(
    settings: Settings, summary: CollectionRead, held_by: list[str] | None = None
) -> dict[str, Any]:
    base = base_url(settings)
    href = f"{base}/collections/{summary.id}"
    generated = summary.id.startswith("cure-")
    interval = [
        _iso(summary.start) if summary.start else None,
        _iso(summary.end) if summary.end else None,
    ]
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": summary.id,
        "title": summary.id,
        "description": (
            f"Products CURE's app {summary.id.removeprefix('cure-')} generated"
            if generated
            else f"Input products of the collection {summary.id}"
        ),
        "license": "other",
        "extent": {
            "spatial": {"bbox": [summary.bbox or [-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [interval]},
        },
        "summaries": {"cure:product_type": summary.product_types},
        "cure:product_count": summary.product_count,  # in the local catalogue
        **({"cure:sources": held_by} if held_by else {}),
        "links": [
            _link(href, "self"),
            _link(base, "root"),
            _link(base, "parent"),
            _link(f"{href}/items", "items", GEOJSON),
        ],
    }


async def collections(
    session: AsyncSession,
    settings: Settings,
    principal: Principal | None,
    sources: Federation | None = None,
) -> dict[str, Any]:
    """The local collections with their extents, and those only the sources hold."""
    listed = (await ccsi_service.collections(session, principal)).collections
    local = {summary.id for summary in listed}
    remote = await _remote_collections(sources)
    base = base_url(settings)
    return {
        "collections": [
            *(_collection(settings, summary, remote.get(summary.id, [])) for summary in listed),
            *(
                _remote_collection(settings, name, held)
                for name, held in sorted(remote.items())
                if name not in local
            ),
        ],
        "links": [_link(f"{base}/collections", "self"), _link(base, "root")],
    }


async def collection(
    session: AsyncSession,
    settings: Settings,
    principal: Principal | None,
    collection_id: str,
    sources: Federation | None = None,
) -> dict[str, Any]:
    check_collection(collection_id)
    remote = await _remote_collections(sources)
    for summary in (await ccsi_service.collections(session, principal)).collections:
        if summary.id == collection_id:
            return _collection(settings, summary, remote.get(collection_id, []))
    if collection_id in remote:
        return _remote_collection(settings, collection_id, remote[collection_id])
    raise CollectionNotFound(f"no collection {collection_id}")


async def _remote_collections(sources: Federation | None) -> dict[str, list[str]]:
    """The collections the enabled sources map, each with the sources that hold it."""
    held: dict[str, list[str]] = {}
    for target in await sources.targets() if sources is not None else []:
        held.setdefault(target.collection, []).append(target.source.name)
    return held


def _remote_collection(settings: Settings, name: str, held_by: list[str]) -> dict[str, Any]:
    """A collection that only catalogue sources hold: its extent is theirs, not known here."""
    base = base_url(settings)
    href = f"{base}/collections/{name}"
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": name,
        "title": name,
        "description": f"Input products of the collection {name}, held by the catalogue "
        f"sources {', '.join(held_by)}",
        "license": "other",
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [[None, None]]},
        },
        "summaries": {},
        "cure:sources": held_by,
        "links": [
            _link(href, "self"),
            _link(base, "root"),
            _link(base, "parent"),
            _link(f"{href}/items", "items", GEOJSON),
        ],
    }


async def check_collection_visible(
    session: AsyncSession,
    principal: Principal | None,
    collection_id: str,
    sources: Federation | None = None,
) -> None:
    """CollectionNotFound unless the caller sees a product of the collection (no summary) or an
    enabled source maps it."""
    if not await federation.has_collection(sources, session, principal, collection_id):
        raise CollectionNotFound(f"no collection {collection_id}")


# -- items ---------------------------------------------------------------------------------------


def item(settings: Settings, product: ProductRead) -> dict[str, Any]:
    """A product as a STAC item: its footprint, acquisition time and assets (expiring links);
    a product of an order also names the order's app, parameters and region, and the app's
    version in the processing extension."""
    base = base_url(settings)
    collection_href = f"{base}/collections/{product.collection}"
    stored = dict(product.properties)
    properties: dict[str, Any] = {}
    extensions: list[str] = []
    if product.order_id is not None and ORDER_PRODUCT_KEYS <= set(stored):
        app_id, version = stored.pop("app_id"), stored.pop("app_version")
        properties.update(
            {
                "cure:app_id": app_id,
                "cure:order_id": stored.pop("order_id"),
                "cure:params": stored.pop("params"),
                "cure:region": product.footprint,
                "processing:software": {f"cure-app-{app_id}": version},
                "processing:lineage": f"CURE order of the app {app_id} {version}",
                "processing:facility": "CURE",
                "processing:datetime": _iso(product.created_at),
            }
        )
        extensions.append(PROCESSING)
    properties.update(stored)
    properties.update(_times(product))
    properties.update(
        {
            "created": _iso(product.created_at),
            "cure:product_type": product.product_type,
            "cure:public": product.published or product.owner_id is None,
            "cure:source": product.source,
        }
    )
    if product.cloud_cover is not None:
        properties["eo:cloud_cover"] = product.cloud_cover
    links = [
        _link(f"{collection_href}/items/{product.identifier}", "self", GEOJSON),
        _link(collection_href, "parent"),
        _link(collection_href, "collection"),
        _link(base, "root"),
    ]
    remote = _remote_self(product) if product.source != LOCAL else None
    if remote:  # a source's item: this API serves it (self), its page at the source is the original
        links.append(_link(remote, "canonical", GEOJSON))
    if product.derived_from:
        # Lineage: each product it was made from that the reader may see is an item of this API
        # (a remote source's too); another customer's product is named by its collection alone.
        properties["cure:derived_from"] = [
            reference.model_dump(mode="json") for reference in product.derived_from
        ]
        links += [
            _link(
                f"{base}/collections/{quote(r.collection)}/items/{quote(r.identifier)}",
                "derived_from",
                GEOJSON,
            )
            for r in product.derived_from
            if r.identifier is not None
        ]
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": extensions,
        "id": product.identifier,
        "collection": product.collection,
        "geometry": product.footprint,
        "bbox": list(shape(product.footprint).bounds),
        "properties": properties,
        "links": links,
        "assets": {key: _asset(asset) for key, asset in product.assets.items()},
    }


def _asset(asset: AssetRead) -> dict[str, Any]:
    found: dict[str, Any] = {"href": asset.href, "type": asset.type, "roles": asset.roles}
    if asset.title:
        found["title"] = asset.title
    if asset.size is not None:
        found["file:size"] = asset.size
    band = {
        name: value
        for name, value in (
            ("scale", asset.scale),
            ("offset", asset.offset),
            ("nodata", asset.nodata),
        )
        if value is not None
    }
    if band:
        found["raster:bands"] = [band]
    return found


def _remote_self(product: ProductRead) -> str | None:
    """The remote item's own page, as the source linked it (kept among its properties)."""
    href = product.properties.get("cure:remote_href")
    return href if isinstance(href, str) else None


def _times(product: ProductRead) -> dict[str, Any]:
    if product.start == product.end:
        return {"datetime": _iso(product.start)}
    return {
        "datetime": None,
        "start_datetime": _iso(product.start),
        "end_datetime": _iso(product.end),
    }


async def get_item(
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    principal: Principal | None,
    *,
    collection_id: str,
    item_id: str,
    sources: Federation | None = None,
    sessions: LocalSessions | None = None,
) -> dict[str, Any]:
    """The item from the local catalogue, else from the sources that map the collection (the
    search's items link here, remote ones too). 404 only when every source asked answered; a
    source that did not makes it a 503 with Retry-After, not a guess."""
    try:
        # In a short session of its own when sources may be asked next: none is held meanwhile.
        async with (sessions or federation.the_session(session))() as local:
            product = await ccsi_service.get(
                local, settings, storage, principal, collection=collection_id, identifier=item_id
            )
    except ProductNotFound:
        pass
    else:
        return item(settings, product)
    if sources is not None:
        found = await federation.find(
            sources,
            session,
            settings,
            storage,
            principal,
            ProductCriteria(collections=(collection_id,), identifiers=(item_id,)),
            limit=1,
            sessions=sessions,
        )
        if found.items:
            return item(settings, found.items[0])
        if found.missing:
            raise ItemSourcesUnavailable(
                f"no item {item_id} in collection {collection_id} locally, and these sources "
                f"did not answer: {', '.join(found.missing)}"
            )
    raise ItemNotFound(f"no item {item_id} in collection {collection_id}")


async def search(
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    principal: Principal | None,
    query: ItemSearch,
    *,
    url: str,
    method: str,
    sources: Federation | None = None,
    sessions: LocalSessions | None = None,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """One page of matching items (local and the enabled sources') as an ItemCollection, with a
    next link (same method) while more match: its token resumes after the page's last item
    (keyset paging) or, once sources are asked, at its offset in the merged list. numberMatched
    is left out when more than COUNT_LIMIT match (the count stops there) and once sources are
    asked; ``cure:sources_missing`` names the sources that gave no answer, returned too."""
    criteria = ProductCriteria(
        collections=query.collections,
        identifiers=query.ids,
        bbox=query.bbox,
        geometry=query.geometry,
        time_start=query.time_start,
        time_end=query.time_end,
    )
    found = await federation.find(
        sources,
        session,
        settings,
        storage,
        principal,
        criteria,
        limit=query.limit,
        offset=query.offset,
        after=query.after,
        sessions=sessions,
    )
    links = [_link(base_url(settings), "root")]
    token = _next_token(found)
    if token is not None:
        following = query.page(token)
        if method == "POST":
            links.append(_link(url, "next", GEOJSON, method="POST", body=following, merge=False))
        else:
            links.append(_link(f"{url}?{_query_string(following)}", "next", GEOJSON))
    page = {
        "type": "FeatureCollection",
        "features": [item(settings, product) for product in found.items],
        "links": links,
        **({"numberMatched": found.matched} if found.matched is not None else {}),
        "numberReturned": len(found.items),
    }
    if found.missing:
        page["cure:sources_missing"] = list(found.missing)
    return page, found.missing


def _next_token(found: federation.FederatedPage) -> str | None:
    if not found.more:
        return None
    if found.next_offset is not None:
        # Offsets past MAX_OFFSET are not served: the merged list is not paged deeper.
        return str(found.next_offset) if found.next_offset <= MAX_OFFSET else None
    return keyset_token(found.last) if found.last is not None else None


def _query_string(values: dict[str, Any]) -> str:
    pairs = []
    for name, value in values.items():
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = json.dumps(value, separators=(",", ":"))
        pairs.append((name, str(value)))
    return urlencode(pairs)
