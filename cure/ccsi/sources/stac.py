"""A client of STAC APIs: item search as the STAC API specification describes it.

What the server can do is read once from its landing page's ``conformsTo`` and kept: item
search by POST (``/search``) when it conforms to item-search, else the OGC API - Features items of
the collection by GET; a cloud-cover filter in CQL2 JSON when it conforms to filter, else the
``query`` extension when it conforms to that, else applied on this side; a sort by acquisition
time when it conforms to sort. Pages are followed through ``next`` links (a GET href, or a POST
with the link's ``body``, merged into the last one when the link says ``merge``), only on the
source's own host.
"""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from shapely.geometry import shape

from cure.ccsi.sources.auth import SourceAuth
from cure.ccsi.sources.remote import (
    PAGE_SIZE,
    RemoteQuery,
    RemoteResult,
    SourceFailure,
    all_found,
    json_body,
    pages_for,
    parse_time,
    passes_cloud,
    same_origin,
    send,
    where,
)

GEOJSON = "application/geo+json"


def conforms(classes: frozenset[str], name: str) -> bool:
    """Whether a conformance class of the STAC API (any version) is declared: ``item-search``,
    ``item-search#filter``, ``item-search#query``, ``item-search#sort``, ``core``..."""
    return any(
        uri.startswith("https://api.stacspec.org/") and uri.rstrip("/").endswith("/" + name)
        for uri in classes
    )


def filters(classes: frozenset[str]) -> bool:
    """Whether the server takes a CQL2 ``filter`` (STAC item search or OGC API - Features 3)."""
    features_filter = any(
        uri.startswith("http://www.opengis.net/spec/ogcapi-features-3/") and uri.endswith("/filter")
        for uri in classes
    )
    return conforms(classes, "item-search#filter") or features_filter


def serves_features(classes: frozenset[str]) -> bool:
    """Whether the server is an OGC API - Features (items by collection, no item search)."""
    return conforms(classes, "ogcapi-features") or any(
        uri.startswith("http://www.opengis.net/spec/ogcapi-features-1/") for uri in classes
    )


class StacClient:
    """Searches one STAC API. Keeps what it learnt of the server (conformance, the search link,
    collection documents) for its own life: the federation makes a new one when the source's
    document changes."""

    def __init__(
        self,
        url: str,
        *,
        http: httpx.AsyncClient,
        auth: SourceAuth | None = None,
        timeout: float = 10,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = http
        self._auth = auth
        self._timeout = timeout
        self._landing: dict[str, Any] | None = None
        self._landing_lock = asyncio.Lock()
        self._collections: dict[str, dict[str, Any] | None] = {}

    async def _get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        answer = await send(
            self._http, "GET", url, auth=self._auth, params=params, call_seconds=self._timeout
        )
        return json_body(answer)

    async def landing(self) -> dict[str, Any]:
        """The landing page (read once): its ``conformsTo`` and links."""
        async with self._landing_lock:
            if self._landing is None:
                page = await self._get(self.url)
                if not isinstance(page.get("conformsTo"), list):
                    # The conformance document: OGC API - Features puts it at /conformance.
                    extra = await self._get(f"{self.url}/conformance")
                    page["conformsTo"] = extra.get("conformsTo")
                if not isinstance(page.get("conformsTo"), list):
                    raise SourceFailure(f"{where(self.url)} declares no conformance classes")
                self._landing = page
            return self._landing

    async def conformance(self) -> frozenset[str]:
        landing = await self.landing()
        return frozenset(c for c in landing["conformsTo"] if isinstance(c, str))

    async def _search_url(self) -> str:
        for link in (await self.landing()).get("links") or []:
            if (
                isinstance(link, dict)
                and link.get("rel") == "search"
                and isinstance(link.get("href"), str)
                and str(link.get("method", "GET")).upper() in ("POST", "GET")
                and link.get("type", GEOJSON) in (GEOJSON, "application/json")
                and same_origin(link["href"], self.url)
            ):
                return str(link["href"])
        return f"{self.url}/search"

    async def collection(self, remote: str) -> dict[str, Any] | None:
        """The collection document (for its ``item_assets``), read once; None if unreadable."""
        if remote not in self._collections:
            try:
                self._collections[remote] = await self._get(
                    f"{self.url}/collections/{quote(remote, safe='')}"
                )
            except SourceFailure:
                self._collections[remote] = None
        return self._collections[remote]

    async def search(self, query: RemoteQuery) -> RemoteResult:
        """The first ``query.limit`` matching items (newest first, or oldest with ascending),
        whether more match, and how many when the server says."""
        classes = await self.conformance()
        if conforms(classes, "item-search"):
            url, method = await self._search_url(), "POST"
            request: dict[str, Any] = self._body(query, classes)
        elif serves_features(classes):
            url = f"{self.url}/collections/{quote(query.collection, safe='')}/items"
            method, request = "GET", self._params(query, classes)
        else:
            raise SourceFailure(f"{where(self.url)} offers neither item search nor features")
        server_sorts = conforms(classes, "item-search#sort") and method == "POST"
        items: list[dict[str, Any]] = []
        matched: int | None = None
        more = True  # unless the pages end before the limit
        size = 0
        for _ in range(pages_for(query)):
            answer = await send(
                self._http,
                method,
                url,
                auth=self._auth,
                params=request if method == "GET" else None,
                body=request if method == "POST" else None,
                call_seconds=self._timeout,
            )
            size += len(answer.content)
            page = json_body(answer)
            features = page.get("features")
            if page.get("type") != "FeatureCollection" or not isinstance(features, list):
                raise SourceFailure(f"{where(url)} answered something that is not an item page")
            if matched is None:
                matched = _matched(page)
            items.extend(self._wanted(features, query))
            if len(items) > query.limit:
                break
            if all_found(items, query):
                more = False
                break
            following = _next(page, url=url, method=method, request=request, base=self.url)
            if following is None or not features:
                more = False
                break
            url, method, request = following
        if not server_sorts:
            # The server's order is its own: sort what came back, newest first.
            items.sort(key=_acquired, reverse=not query.ascending)
        return RemoteResult(items=items[: query.limit], more=more, matched=matched, size=size)

    async def count(self, query: RemoteQuery) -> int | None:
        """How many items match (one page of one item), when the server says."""
        result = await self.search(replace(query, limit=1))
        return result.matched

    def _wanted(self, features: list[Any], query: RemoteQuery) -> list[dict[str, Any]]:
        kept = []
        for feature in features:
            if not isinstance(feature, dict):
                continue
            if query.ids and feature.get("id") not in query.ids:
                continue
            if not passes_cloud(feature, query):
                continue
            kept.append(feature)
        return kept

    def _body(self, query: RemoteQuery, classes: frozenset[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "collections": [query.collection],
            "limit": min(query.limit + 1, PAGE_SIZE),
        }
        if query.intersects is not None:
            body["intersects"] = query.geometry()
        elif query.bbox is not None:
            body["bbox"] = list(query.bbox)
        interval = query.datetime_interval()
        if interval is not None:
            body["datetime"] = interval
        if query.ids:
            body["ids"] = list(query.ids)
        if conforms(classes, "item-search#sort"):
            direction = "asc" if query.ascending else "desc"
            body["sortby"] = [{"field": "properties.datetime", "direction": direction}]
        cloud = _cloud_filter(query)
        if cloud is not None:
            if filters(classes):
                body["filter"] = cloud
                body["filter-lang"] = "cql2-json"
            elif conforms(classes, "item-search#query"):
                low, high = query.cloud_cover or (0, 100)
                assert query.cloud_property is not None  # _cloud_filter needs one
                body["query"] = {query.cloud_property: {"gte": low, "lte": high}}
        return body

    def _params(self, query: RemoteQuery, classes: frozenset[str]) -> dict[str, str]:
        params = {"limit": str(min(query.limit + 1, PAGE_SIZE))}
        geometry = query.geometry()
        if geometry is not None:
            # Features items take a bbox only (the federation checks footprints against the area).
            params["bbox"] = ",".join(repr(v) for v in shape(geometry).bounds)
        elif query.bbox is not None:
            params["bbox"] = ",".join(repr(v) for v in query.bbox)
        interval = query.datetime_interval()
        if interval is not None:
            params["datetime"] = interval
        if query.cloud_cover is not None and query.cloud_property and filters(classes):
            low, high = query.cloud_cover
            name = query.cloud_property
            params["filter"] = f'"{name}" >= {low!r} AND "{name}" <= {high!r}'
            params["filter-lang"] = "cql2-text"
        return params


def _cloud_filter(query: RemoteQuery) -> dict[str, Any] | None:
    """CQL2 JSON for the cloud range; None when there is nothing to ask the server (no range, no
    property, or unknown cover kept: a server filter would drop those)."""
    if query.cloud_cover is None or query.cloud_property is None or query.keep_unknown_cloud:
        return None
    low, high = query.cloud_cover
    prop = {"property": query.cloud_property}
    return {
        "op": "and",
        "args": [{"op": ">=", "args": [prop, low]}, {"op": "<=", "args": [prop, high]}],
    }


def _matched(page: dict[str, Any]) -> int | None:
    found = page.get("numberMatched")
    if found is None and isinstance(page.get("context"), dict):
        found = page["context"].get("matched")
    return found if isinstance(found, int) and not isinstance(found, bool) and found >= 0 else None


def _next(
    page: dict[str, Any], *, url: str, method: str, request: Any, base: str
) -> tuple[str, str, Any] | None:
    """The next page's call (url, method, params or body) from the page's ``next`` link."""
    for link in page.get("links") or []:
        if not isinstance(link, dict) or link.get("rel") != "next":
            continue
        href = link.get("href")
        if not isinstance(href, str) or not same_origin(href, base):
            return None
        link_method = str(link.get("method", "GET")).upper()
        if link_method == "POST":
            body = link.get("body")
            merge = link.get("merge") is True and isinstance(request, dict) and method == "POST"
            if merge:
                return href, "POST", {**request, **(body if isinstance(body, dict) else {})}
            if isinstance(body, dict):
                return href, "POST", body
            return None  # a POST without a body to send: nothing to follow
        return href, "GET", None  # the href carries every parameter
    return None


def _acquired(item: dict[str, Any]) -> datetime:
    properties = item.get("properties")
    if not isinstance(properties, dict):
        return _NEVER
    moment = parse_time(properties.get("datetime")) or parse_time(properties.get("start_datetime"))
    return moment or _NEVER


_NEVER = datetime.min.replace(tzinfo=UTC)
