"""One search over the local catalogue and every enabled remote source.

The OpenSearch search (``/v1/ccsi/search``, per collection), the STAC API's item search and the
availability check at submit all ask here. The local catalogue and each enabled source that maps
the collection are asked at once; each source within its own deadline (``timeout_seconds``) and
at most ``max_parallel`` of its searches at a time in this process. Remote answers are
harmonised into products, kept briefly (bounded in entries and bytes, keyed by the source's
version and the normalised query, one call for simultaneous identical ones), de-duplicated by
collection and identifier (the lowest priority number wins; local is 0), ordered by acquisition
start (newest first), then priority, then identifier, and paged over the merged list: each
source is asked for no more than the page needs. A source that is down, slow, busy (429, 5xx)
or answers garbage is named among the missing ones; the answer never fails for it. A source
that missed its deadline rests as long before it is asked again (named missing meanwhile), so a
host that swallows requests does not cost every search the whole deadline.

With no source enabled for the collection, the search is the local one, unchanged.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
import shapely
from geoalchemy2.shape import from_shape
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.ext.asyncio import AsyncSession

from cure.auth.principals import Principal
from cure.ccsi import repository
from cure.ccsi import service as ccsi_service
from cure.ccsi.models import Product
from cure.ccsi.repository import COUNT_LIMIT, Keyset, Viewer
from cure.ccsi.schemas import ProductCriteria, ProductRead, SearchQuery
from cure.ccsi.sources.harmonise import harmonise
from cure.ccsi.sources.opensearch import OpenSearchClient
from cure.ccsi.sources.remote import RemoteQuery, SourceFailure
from cure.ccsi.sources.schemas import LOCAL, CollectionMapping
from cure.ccsi.sources.service import Source
from cure.ccsi.sources.stac import StacClient
from cure.config import Settings
from cure.kit.geo import to_geojson
from cure.storage.service import Storage

log = logging.getLogger(__name__)

MISSING_HEADER = "CURE-Sources-Missing"
# Short sessions for the local catalogue's queries (a read sessionmaker): each closes before the
# sources' answers are awaited, so no pooled connection waits on a remote catalogue.
LocalSessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]
# A region with more vertices than this is sent to a source as its convex hull (the products
# found are then checked against the region itself).
MAX_REMOTE_VERTICES = 200
# How many products in the order's window are read to find the clearest (availability).
CLOUD_SAMPLE = 20


# -- sources -------------------------------------------------------------------------------------


class SourceRegistryLike(Protocol):
    """The registry of sources (``cure.ccsi.sources.service.SourceRegistry``): the enabled ones,
    read cheaply (it keeps them in memory and learns of changes)."""

    async def enabled(self) -> Sequence[Source]: ...


@dataclass(frozen=True)
class Target:
    """One of CURE's collections in one source."""

    source: Source
    collection: str
    mapping: CollectionMapping


@dataclass(frozen=True)
class Answer:
    """What a source answered for a target and query: products, whether it holds more than the
    query's limit, and how many match when it says."""

    products: tuple[ProductRead, ...]
    more: bool
    matched: int | None
    size: int


class AnswerCache:
    """Remote answers for ``ttl`` seconds, at most ``max_entries`` of them and ``max_bytes`` of
    the answers they came from, the least recently used dropped first."""

    def __init__(
        self,
        *,
        ttl: float,
        max_entries: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[Any, tuple[float, Answer]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, key: Any) -> Answer | None:
        found = self._entries.get(key)
        if found is None:
            return None
        stored, answer = found
        if self._clock() - stored > self.ttl:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return answer

    def put(self, key: Any, answer: Answer) -> None:
        if self.ttl <= 0 or self.max_entries <= 0 or answer.size > self.max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._clock(), answer)
        self._bytes += answer.size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: Any) -> None:
        _, answer = self._entries.pop(key)
        self._bytes -= answer.size


class Federation:
    """The per-process side of the federated search: the sources' clients (what they learnt of
    each server), their concurrency limits, the cache of answers and one HTTP connection pool.
    Made in the API's lifespan; ``sources`` None means no source (local only)."""

    def __init__(
        self,
        settings: Settings,
        *,
        sources: SourceRegistryLike | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sources = sources
        self._clock = clock
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            follow_redirects=True, max_redirects=3, headers={"User-Agent": "CURE-CCSI"}
        )
        self.cache = AnswerCache(
            ttl=settings.ccsi_remote_cache_seconds,
            max_entries=settings.ccsi_remote_cache_entries,
            max_bytes=settings.ccsi_remote_cache_mb * 1024 * 1024,
        )
        self._clients: dict[str, tuple[int, StacClient | OpenSearchClient]] = {}
        self._limits: dict[str, tuple[int, asyncio.Semaphore]] = {}
        self._inflight: dict[Any, asyncio.Task[Answer]] = {}
        # A source that missed its deadline is not asked again for as long (a blackholed host
        # would otherwise cost every search the whole deadline): (its version, until when).
        self._resting: dict[str, tuple[int, float]] = {}

    async def aclose(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self._owns_http:
            await self._http.aclose()

    async def enabled(self) -> list[Source]:
        if self.sources is None:
            return []
        return [s for s in await self.sources.enabled() if s.document.enabled]

    async def targets(
        self, collections: Sequence[str] = (), product_type: str | None = None
    ) -> list[Target]:
        """The (source, collection) pairs a search of ``collections`` (all: empty) of the type
        asks, in priority order."""
        found = []
        for source in sorted(await self.enabled(), key=lambda s: (s.priority, s.name)):
            for collection, mapping in source.document.collections.items():
                if collections and collection not in collections:
                    continue
                if product_type is not None and mapping.product_type != product_type:
                    continue
                found.append(Target(source, collection, mapping))
        return found

    async def collections(self) -> list[str]:
        """The collections the enabled sources map."""
        return sorted({c for s in await self.enabled() for c in s.document.collections})

    def client(self, source: Source) -> StacClient | OpenSearchClient:
        """The client of a source at its current version (a new one when the document changed)."""
        kept = self._clients.get(source.name)
        if kept is not None and kept[0] == source.version:
            return kept[1]
        document = source.document
        kind = StacClient if document.kind == "stac" else OpenSearchClient
        client = kind(
            str(document.url),
            http=self._http,
            auth=source.auth,
            timeout=document.timeout_seconds,
        )
        self._clients[source.name] = (source.version, client)
        return client

    def _limit(self, source: Source) -> asyncio.Semaphore:
        size = source.document.max_parallel
        kept = self._limits.get(source.name)
        if kept is None or kept[0] != size:
            kept = self._limits[source.name] = (size, asyncio.Semaphore(size))
        return kept[1]

    async def ask(self, target: Target, query: RemoteQuery) -> Answer:
        """A source's answer to one query: from the cache, from a call already under way, or
        from a new call within the source's deadline. SourceFailure when there is none."""
        key = (target.source.name, target.source.version, target.collection, query)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        resting = self._resting.get(target.source.name)
        if resting is not None and resting[0] == target.source.version:
            if self._clock() < resting[1]:
                raise SourceFailure("it missed its deadline moments ago; it is asked again soon")
            del self._resting[target.source.name]
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._call(target, query))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
        return await asyncio.shield(task)

    def _settled(self, key: Any, task: asyncio.Task[Answer]) -> None:
        self._inflight.pop(key, None)
        if task.cancelled():
            return
        if task.exception() is None:  # also marks a failure as seen when nobody waits any more
            self.cache.put(key, task.result())

    async def _call(self, target: Target, query: RemoteQuery) -> Answer:
        source = target.source
        deadline = source.document.timeout_seconds
        try:
            async with asyncio.timeout(deadline):
                async with self._limit(source):
                    client = self.client(source)
                    result = await client.search(query)
                    collection = None
                    if isinstance(client, StacClient) and _lacks_raster(result.items, target):
                        collection = await client.collection(target.mapping.remote)
        except SourceFailure:
            raise
        except TimeoutError:
            self._resting[source.name] = (source.version, self._clock() + deadline)
            raise SourceFailure(f"no answer within its deadline of {deadline:g} s") from None
        except Exception as exc:  # a server's answer CURE could not read is the server's fault
            log.warning("source %s: answer not readable", source.name, exc_info=True)
            raise SourceFailure(f"an answer CURE could not read ({type(exc).__name__})") from exc
        products = []
        for item in result.items:
            product = harmonise(
                item,
                source=source.name,
                collection=target.collection,
                mapping=target.mapping,
                remote_collection=collection,
            )
            if product is not None and _meets(product, query):
                products.append(product)
        return Answer(tuple(products), result.more, result.matched, max(result.size, 1))

    async def ask_all(
        self, targets: Sequence[Target], query_of: Callable[[Target], RemoteQuery]
    ) -> tuple[list[tuple[Target, Answer]], tuple[str, ...]]:
        """Every target asked at once: the answers, and the names of the sources that gave none."""
        outcomes = await asyncio.gather(
            *(self.ask(target, query_of(target)) for target in targets), return_exceptions=True
        )
        answers: list[tuple[Target, Answer]] = []
        missing: set[str] = set()
        for target, outcome in zip(targets, outcomes, strict=True):
            if isinstance(outcome, Answer):
                answers.append((target, outcome))
            elif isinstance(outcome, SourceFailure):
                log.warning("source %s is missing from an answer: %s", target.source.name, outcome)
                missing.add(target.source.name)
            elif isinstance(outcome, BaseException):
                raise outcome
        return answers, tuple(sorted(missing))


def remote_product_type(source: Source, mapping: CollectionMapping) -> str | None:
    """The product type an OpenSearch source is filtered by (its own name for it, else CURE's);
    None for a STAC API, whose collection is the product type."""
    if source.document.kind != "opensearch":
        return None
    return mapping.remote_product_type or mapping.product_type


def _lacks_raster(items: list[dict[str, Any]], target: Target) -> bool:
    """Whether a mapped asset of an item says nothing of its raster values (then the collection's
    item_assets may)."""
    for item in items:
        assets = item.get("assets")
        if not isinstance(assets, dict):
            continue
        for key in target.mapping.assets.values():
            asset = assets.get(key)
            if isinstance(asset, dict) and not any(
                name in asset for name in ("raster:bands", "bands", "raster:scale", "nodata")
            ):
                return True
    return False


def _meets(product: ProductRead, query: RemoteQuery) -> bool:
    """Whether a remote product really meets the query's area and period (servers that search
    by a box, or that answer loosely, are checked here)."""
    if query.start is not None and product.end < query.start:
        return False
    if query.end is not None and product.start > query.end:
        return False
    area = query.geometry()
    if area is None and query.bbox is not None:
        west, south, east, north = query.bbox
        return shape(product.footprint).intersects(box(west, south, east, north))
    return area is None or shape(product.footprint).intersects(shape(area))


def _remote_area(geometry: BaseGeometry) -> str:
    """A region as GeoJSON text for a source: itself, or its convex hull when it is large."""
    if shapely.get_num_coordinates(geometry) > MAX_REMOTE_VERTICES:
        geometry = geometry.convex_hull
    return json.dumps(to_geojson(geometry), sort_keys=True, separators=(",", ":"))


def _wkt_area(wkt: str | None) -> str | None:
    return None if wkt is None else _remote_area(shapely.from_wkt(wkt))


def _touches(product: ProductRead, area: BaseGeometry) -> bool:
    return bool(shape(product.footprint).intersects(area))


# -- the merged list -----------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class _Entry:
    start: datetime
    priority: int
    source: str
    identifier: str
    collection: str
    local: Product | None = None
    remote: ProductRead | None = None

    def order(self) -> tuple[int, int, str, str, str]:
        newest_first = -((self.start - _EPOCH) // timedelta(microseconds=1))
        return newest_first, self.priority, self.identifier, self.collection, self.source


def _merge(local: list[Product], answers: list[tuple[Target, Answer]]) -> tuple[list[_Entry], int]:
    """One list, each product once (the lowest priority number wins), in the federation's order;
    and how many duplicates were dropped."""
    entries = [_Entry(p.start_at, 0, LOCAL, p.identifier, p.collection, local=p) for p in local] + [
        _Entry(
            product.start,
            target.source.priority,
            target.source.name,
            product.identifier,
            product.collection,
            remote=product,
        )
        for target, answer in answers
        for product in answer.products
    ]
    best: dict[tuple[str, str], _Entry] = {}
    for entry in entries:
        key = (entry.collection, entry.identifier)
        kept = best.get(key)
        if kept is None or (entry.priority, entry.source) < (kept.priority, kept.source):
            best[key] = entry
    return sorted(best.values(), key=_Entry.order), len(entries) - len(best)


@dataclass(frozen=True)
class FederatedPage:
    """A page of the federated search: its products, how many match (an estimate up to
    COUNT_LIMIT once sources are asked), whether more follow, the sources that gave no answer,
    and where the next page starts in the merged list (None: local keyset paging applies)."""

    items: list[ProductRead]
    total: int
    more: bool
    missing: tuple[str, ...] = ()
    next_offset: int | None = None
    last: Keyset | None = None
    matched: int | None = None  # an exact count, when there is one (local only, to COUNT_LIMIT)


async def _page(
    federation: Federation,
    targets: list[Target],
    sessions: LocalSessions,
    settings: Settings,
    storage: Storage,
    viewer: Viewer,
    criteria: ProductCriteria,
    *,
    offset: int,
    limit: int,
    after: Keyset | None = None,
) -> FederatedPage:
    needed = offset + limit
    area = _wkt_area(criteria.geometry)

    def query_of(target: Target) -> RemoteQuery:
        mapping = target.mapping
        return RemoteQuery(
            collection=mapping.remote,
            bbox=criteria.bbox if area is None else None,
            intersects=area,
            start=criteria.time_start,
            end=after.start_at if after is not None else criteria.time_end,
            limit=needed,
            cloud_cover=criteria.cloud_cover,
            cloud_property=mapping.cloud_cover_property,
            product_type=remote_product_type(target.source, mapping),
            ids=tuple(criteria.identifiers),
        )

    async def local() -> tuple[list[Product], bool, int]:
        async with sessions() as session:
            products, more = await repository.find(
                session, criteria, visible_to=viewer, limit=needed, after=after, by_identifier=True
            )
            total = repository.known_total(len(products), more, after=after)
            if total is None:
                total = await repository.count(session, criteria, visible_to=viewer)
            return products, more, total

    (products, local_more, local_total), (answers, missing) = await asyncio.gather(
        local(), federation.ask_all(targets, query_of)
    )
    if after is not None:  # a keyset token from before the sources: strictly older remote ones
        answers = [
            (t, replace(a, products=tuple(p for p in a.products if p.start < after.start_at)))
            for t, a in answers
        ]
    merged, duplicates = _merge(products, answers)
    window = merged[offset:needed]
    reads = await ccsi_service.to_reads(
        [e.local for e in window if e.local is not None],
        settings=settings,
        storage=storage,
        viewer=viewer,
    )
    local_reads = iter(reads)
    items = [e.remote if e.remote is not None else next(local_reads) for e in window]
    more = len(merged) > needed or local_more or any(a.more for _, a in answers)
    counted = min(local_total, COUNT_LIMIT) + sum(
        a.matched if a.matched is not None else len(a.products) for _, a in answers
    )
    total = min(COUNT_LIMIT, max(counted - duplicates, len(merged)))
    following = offset + len(items) if more and items else None
    return FederatedPage(items, total, more, missing, next_offset=following)


async def search(
    federation: Federation | None,
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    principal: Principal | None,
    query: SearchQuery,
    *,
    sessions: LocalSessions | None = None,
) -> FederatedPage:
    """One page of the OpenSearch search over the local catalogue and the sources. With no
    source to ask, the local search on ``session``; else the local queries in a short session of
    ``sessions`` (``session`` when none is given)."""
    targets = await _targets(federation, query.collection, query.product_type)
    if federation is None or not targets:
        found = await ccsi_service.search(session, settings, storage, principal, query)
        return FederatedPage(found.items, found.total, found.more)
    ccsi_service.check_start_index(query)
    return await _page(
        federation,
        targets,
        sessions or the_session(session),
        settings,
        storage,
        ccsi_service.viewer_of(principal),
        ProductCriteria.of_search(query),
        offset=query.start_index - 1,
        limit=query.max_records,
    )


async def find(
    federation: Federation | None,
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    principal: Principal | None,
    criteria: ProductCriteria,
    *,
    limit: int,
    offset: int = 0,
    after: Keyset | None = None,
    sessions: LocalSessions | None = None,
) -> FederatedPage:
    """The STAC API's search over the local catalogue and the sources: keyset pages (``last``)
    when no source is asked, offset pages over the merged list (``next_offset``) when some are
    (the local queries then in a short session of ``sessions``, as ``search``)."""
    targets = await _targets_of(federation, criteria.collections, criteria.product_type)
    if federation is None or not targets:
        found = await ccsi_service.find(
            session, settings, storage, principal, criteria, limit=limit, offset=offset, after=after
        )
        total = found.matched if found.matched is not None else COUNT_LIMIT
        return FederatedPage(found.items, total, found.more, last=found.last, matched=found.matched)
    return await _page(
        federation,
        targets,
        sessions or the_session(session),
        settings,
        storage,
        ccsi_service.viewer_of(principal),
        criteria,
        offset=offset,
        limit=limit,
        after=after,
    )


def the_session(session: AsyncSession) -> LocalSessions:
    """``session`` itself as a source of short sessions (it stays open)."""

    @contextlib.asynccontextmanager
    async def same() -> AsyncIterator[AsyncSession]:
        yield session

    return same


async def _targets(
    federation: Federation | None, collection: str | None, product_type: str | None
) -> list[Target]:
    return await _targets_of(federation, (collection,) if collection else (), product_type)


async def _targets_of(
    federation: Federation | None, collections: Sequence[str], product_type: str | None
) -> list[Target]:
    if federation is None:
        return []
    return await federation.targets(collections, product_type)


async def collection_names(
    federation: Federation | None, session: AsyncSession, principal: Principal | None
) -> list[str]:
    """The collections a search can name: the local ones the caller sees and the mapped ones."""
    names = set(await ccsi_service.collection_names(session, principal))
    if federation is not None:
        names.update(await federation.collections())
    return sorted(names)


async def has_collection(
    federation: Federation | None,
    session: AsyncSession,
    principal: Principal | None,
    collection: str,
) -> bool:
    if federation is not None and collection in await federation.collections():
        return True
    return await ccsi_service.has_collection(session, principal, collection)


# -- availability (submit) -----------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """Whether a product covers a region in a period (clear enough). If not: the nearest dates
    before and after that have one, and the least cloud cover among the products that do cover
    it but are too cloudy. ``missing``: sources that gave no answer when the answer needed them
    (then ``found`` is False and nothing else is known for sure)."""

    found: bool
    nearest_before: datetime | None = None
    nearest_after: datetime | None = None
    least_cloud_cover: float | None = None
    missing: tuple[str, ...] = ()


async def availability(
    federation: Federation | None,
    sessions: LocalSessions,
    *,
    collection: str,
    product_type: str | None,
    area: BaseGeometry,
    start: datetime,
    end: datetime,
    max_cloud_cover: float | None = None,
    visible_to: Viewer = repository.PUBLIC,
) -> Coverage:
    """Whether a public product (local, or of a source) covers ``area`` in [start, end], at most
    ``max_cloud_cover`` cloudy (a product whose cover is not known counts as clear). The local
    catalogue is asked first; the sources only when it has none. Each local step takes a short
    session of ``sessions`` (closed before any source is called: no connection waits on one).
    ``visible_to``: whose local products count besides the public ones (an order's customer's
    own, for an input from one of CURE's collections)."""
    where = from_shape(area, srid=4326)
    local: dict[str, Any] = {
        "collection": collection,
        "product_type": product_type,
        "area": where,
        "visible_to": visible_to,
    }
    async with sessions() as session:
        found = await repository.any_covering(
            session, start=start, end=end, max_cloud_cover=max_cloud_cover, **local
        )
    if found:
        return Coverage(found=True)
    targets = await _targets(federation, collection, product_type)
    remote_area = _remote_area(area)

    def asked(
        *, since: datetime | None, until: datetime | None, limit: int, clear: bool, asc: bool
    ) -> Callable[[Target], RemoteQuery]:
        def query_of(target: Target) -> RemoteQuery:
            cloud = (0.0, max_cloud_cover) if clear and max_cloud_cover is not None else None
            return RemoteQuery(
                collection=target.mapping.remote,
                intersects=remote_area,
                start=since,
                end=until,
                limit=limit,
                cloud_cover=cloud if target.mapping.cloud_cover_property else None,
                cloud_property=target.mapping.cloud_cover_property,
                product_type=remote_product_type(target.source, target.mapping),
                ascending=asc,
            )

        return query_of

    async def remote(
        query_of: Callable[[Target], RemoteQuery] | None,
    ) -> tuple[list[ProductRead], tuple[str, ...]]:
        if federation is None or not targets or query_of is None:
            return [], ()
        answers, missing = await federation.ask_all(targets, query_of)
        return [p for _, a in answers for p in a.products if _touches(p, area)], missing

    if targets:
        clear, missing = await remote(asked(since=start, until=end, limit=1, clear=True, asc=False))
        if any(_clear(p, max_cloud_cover) for p in clear):
            return Coverage(found=True)
        if missing:
            return Coverage(found=False, missing=missing)
    earlier, later = _shifted(start, -1), _shifted(end, 1)
    # The sources' calls all at once; the local queries beside them, in a short session.
    asking = asyncio.gather(
        remote(asked(since=start, until=end, limit=CLOUD_SAMPLE, clear=False, asc=False)),
        remote(
            asked(since=None, until=earlier, limit=1, clear=True, asc=False) if earlier else None
        ),
        remote(asked(since=later, until=None, limit=1, clear=True, asc=True) if later else None),
    )
    try:
        async with sessions() as session:
            local_before_after = await repository.nearest_dates(
                session, start=start, end=end, max_cloud_cover=max_cloud_cover, **local
            )
            least_local = await repository.least_cloud_cover(session, start=start, end=end, **local)
    except BaseException:
        asking.cancel()
        raise
    (window, _), (before, _), (after, _) = await asking
    local_before, local_after = local_before_after
    covers = [p.cloud_cover for p in window if p.cloud_cover is not None]
    if least_local is not None:
        covers.append(least_local)
    befores = [p.end for p in before if p.end < start] + ([local_before] if local_before else [])
    afters = [p.start for p in after if p.start > end] + ([local_after] if local_after else [])
    return Coverage(
        found=False,
        nearest_before=max(befores) if befores else None,
        nearest_after=min(afters) if afters else None,
        least_cloud_cover=min(covers) if covers and max_cloud_cover is not None else None,
    )


def _shifted(moment: datetime, microseconds: int) -> datetime | None:
    """A moment just before or after another; None at the calendar's edges."""
    try:
        return moment + timedelta(microseconds=microseconds)
    except OverflowError:
        return None


def _clear(product: ProductRead, max_cloud_cover: float | None) -> bool:
    return (
        max_cloud_cover is None
        or product.cloud_cover is None
        or product.cloud_cover <= max_cloud_cover
    )
