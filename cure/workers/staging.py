"""Inputs of an order's run: find them in the catalogue, fetch them into a size-bounded cache
(verifying size and checksum), and lay them out for the container.

A local product's assets are fetched only from the storage bucket (links to the configured
storage), whole. A remote source's assets (``properties.source`` names the source) come with the
source's credentials, from its ``s3://`` endpoint or from the hosts in ``input_hosts`` at public
addresses only (the outbound-network guard, ``cure.workers.remote``), so a catalogue entry cannot
make a worker reach into its own network: a Cloud-Optimized GeoTIFF only as the window of the
order's region (``cure.workers.windows``), anything else whole. The cache keeps both: a window by
its href (without a query), the region and the file's ETag; a whole file by its checksum.
"""

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import rasterio
from pydantic import ValidationError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from cure.apps.schemas import AppInput, producing_app
from cure.ccsi import opensearch
from cure.ccsi import service as ccsi_service
from cure.ccsi.client import CcsiClient
from cure.ccsi.schemas import ProductReference
from cure.ccsi.sources import service as source_service
from cure.ccsi.sources.exceptions import SecretsUnreadable, StoredSourceInvalid
from cure.config import Settings
from cure.kit import outbound
from cure.storage.service import Storage
from cure.workers import remote, windows

log = logging.getLogger(__name__)
MAX_LINEAGE = 200  # products a lineage names at most (as an order event carries them)

STALE_PARTIAL_SECONDS = 3600
MAX_GEOMETRY_WKT = 4000  # a longer region is searched by its bounding box
_EXTENSIONS = {"image/tiff": ".tif", "application/json": ".json", "application/geo+json": ".json"}


class InputMissing(Exception):
    """No product in the catalogue for an input over the order's region and dates."""


class InputRefused(Exception):
    """An asset that may not be fetched, or that did not arrive as the catalogue described it."""


@dataclass(frozen=True)
class FoundProduct:
    role: str
    feature: dict[str, Any]
    keys: tuple[str, ...] = ()  # the asset keys the app reads; empty: every asset

    @property
    def assets(self) -> dict[str, Any]:
        """The assets to stage: those the app reads (that the product has), else all."""
        assets: dict[str, Any] = self.properties.get("assets") or {}
        return {k: v for k, v in assets.items() if not self.keys or k in self.keys}

    @property
    def properties(self) -> dict[str, Any]:
        properties: dict[str, Any] = self.feature.get("properties") or {}
        return properties

    def reference(self) -> ProductReference | None:
        """The product as the lineage of the order's product names it; None when the catalogue
        names it in a way a reference cannot hold (the lineage then leaves it out: the run
        goes on). An id is kept only when it is a local product's UUID."""
        source = str(self.properties.get("source") or LOCAL)
        local_id: uuid.UUID | None = None
        if source == LOCAL and self.feature.get("id"):
            try:
                local_id = uuid.UUID(str(self.feature["id"]))
            except ValueError:  # another catalogue's id (CURE_CCSI_URL): not one of ours
                local_id = None
        try:
            return ProductReference(
                collection=str(self.properties.get("collection")),
                identifier=str(self.properties.get("identifier")),
                id=local_id,
                source=source,
            )
        except ValidationError:  # longer than a reference holds
            log.warning("input %s is left out of the lineage", self.properties.get("identifier"))
            return None


@dataclass
class StagedInputs:
    """What the container gets: files by their path under /job, and params.json's ``inputs``."""

    files: dict[str, Path] = field(default_factory=dict)
    described: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fetched: int = 0
    from_cache: int = 0
    remote: int = 0  # files of remote sources
    transferred: int = 0  # bytes received from remote sources
    derived_from: list[ProductReference] = field(default_factory=list)  # the products staged


# -- resolve -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderProducts:
    """Where an order's inputs from CURE's own collections (``cure-<app>``: what other orders
    made) are found: the catalogue's table, as the order's customer sees it (their own products
    and published ones; ``ccsi_service.orderer``), with expiring links to CURE's storage. The
    customer is the order's, read from its row, never from the task's message: a run cannot be
    handed another customer's unpublished product. (The catalogue's HTTP search, which the
    worker calls without a token, answers only what everyone may see.)"""

    settings: Settings
    engine: AsyncEngine
    storage: Storage
    customer_id: uuid.UUID

    async def search(
        self,
        count: int,
        *,
        collection: str,
        product_type: str | None,
        region: BaseGeometry,
        start: datetime | None = None,
        end: datetime,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Up to ``count`` products as the catalogue's GeoJSON answer gives them: those that
        cover most of the region first, then the newest (``newest_first``: the newest first,
        as the nearest earlier date with data is found)."""
        async with AsyncSession(self.engine) as session:
            products = await ccsi_service.order_inputs(
                session,
                customer_id=self.customer_id,
                collection=collection,
                product_type=product_type,
                area=region,
                start=start,
                end=end,
                limit=count,
                newest_first=newest_first,
            )
        reads = await ccsi_service.to_reads(
            products,
            settings=self.settings,
            storage=self.storage,
            viewer=ccsi_service.orderer(self.customer_id),
        )
        return [opensearch.feature(read) for read in reads]


async def resolve(
    settings: Settings,
    inputs: list[AppInput],
    *,
    roi: dict[str, Any],
    start: date,
    end: date,
    params: dict[str, Any] | None = None,
    own: OrderProducts | None = None,
) -> list[FoundProduct]:
    """The newest ``count`` products of each input over the region and its window, from the
    first of the input's collections (``accepted(params)``, in the app's order of preference)
    that has them; or InputMissing naming the input (and the nearest earlier date with data,
    when there is one). A collection of CURE's own products is searched through ``own`` (the
    order's customer's view); without it, through the catalogue like the others."""
    region = shape(roi)
    where: dict[str, Any] = (
        {"geometry": region}
        if len(region.wkt) <= MAX_GEOMETRY_WKT
        else {"bbox": tuple(region.bounds)}
    )
    found: list[FoundProduct] = []
    async with CcsiClient(settings.catalogue_url, timeout=settings.stage_timeout_seconds) as ccsi:

        async def first(count: int, newest: Any = False, **query: Any) -> list[dict[str, Any]]:
            if own is not None and producing_app(query["collection"]) is not None:
                return await own.search(count, region=region, newest_first=newest, **query)
            return await _first(ccsi, count, **query, **where)

        for wanted in inputs:
            window_start, window_end = wanted.window(start, end)
            formats = wanted.accepted(params)
            for served in formats:
                query = {"collection": served.collection, "product_type": served.product_type}
                products = await first(wanted.count, start=window_start, end=window_end, **query)
                if len(products) >= wanted.count:
                    keys = tuple(served.assets)
                    found += [FoundProduct(wanted.role, feature, keys) for feature in products]
                    break
            else:
                earlier: list[datetime] = []
                for served in formats:
                    query = {"collection": served.collection, "product_type": served.product_type}
                    newest = await first(1, newest=True, end=window_start, **query)
                    moment = _end_of(newest[0]) if newest else None
                    if moment is not None:
                        earlier.append(moment)
                before = max(earlier) if earlier else None
                raise InputMissing(
                    wanted.missing(window_start, window_end, before=before, params=params)
                )
    return found


async def _first(ccsi: CcsiClient, count: int, **query: Any) -> list[dict[str, Any]]:
    products: list[dict[str, Any]] = []
    async for feature in ccsi.search(page_size=min(max(count, 1), 50), **query):
        products.append(feature)
        if len(products) >= count:
            break
    return products


def _end_of(feature: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(feature["properties"]["end"]).replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError):
        return None


# -- fetch ---------------------------------------------------------------------------------------


class InputCache:
    """Fetched assets by checksum, on this worker's disk, the least recently used removed first
    once the cache holds more than ``max_bytes``."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        # Downloads a killed worker left half done: old enough that no live one is writing them.
        for partial in directory.glob(".part-*"):
            with contextlib.suppress(FileNotFoundError):
                if time.time() - partial.stat().st_mtime > STALE_PARTIAL_SECONDS:
                    partial.unlink()

    def _path(self, checksum: str) -> Path:
        algorithm, _, digest = checksum.partition(":")
        if algorithm != "sha256" or not _is_hex(digest, 64):
            raise InputRefused(f"the checksum {checksum[:80]!r} is not a sha256 this cache knows")
        return self.directory / digest

    def lookup(self, checksum: str, size: int | None) -> Path | None:
        """A whole file by its checksum (``sha256:<hex>``)."""
        return self._hit(self._path(checksum), size)

    def admit(self, fetched: Path, checksum: str) -> Path:
        return self._admit(fetched, self._path(checksum))

    def lookup_key(self, key: str) -> Path | None:
        """An entry by a key of its own (a window, a file without a checksum)."""
        return self._hit(self._keyed(key), None)

    def admit_key(self, fetched: Path, key: str) -> Path:
        return self._admit(fetched, self._keyed(key))

    def _keyed(self, key: str) -> Path:
        return self.directory / f"k-{hashlib.sha256(key.encode()).hexdigest()}"

    def _hit(self, path: Path, size: int | None) -> Path | None:
        try:
            if size is not None and path.stat().st_size != size:
                return None
            os.utime(path)  # recently used
        except FileNotFoundError:
            return None
        return path

    def _admit(self, fetched: Path, path: Path) -> Path:
        os.replace(fetched, path)
        self._evict(keep=path)
        return path

    def partial(self) -> Path:
        return self.directory / f".part-{uuid.uuid4().hex}"

    def _evict(self, *, keep: Path) -> None:
        entries = []
        for entry in self.directory.iterdir():
            if entry.name.startswith(".part-"):
                continue
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue
            entries.append((stat.st_mtime, stat.st_size, entry))
        total = sum(size for _, size, _ in entries)
        for _, size, entry in sorted(entries):
            if total <= self.max_bytes:
                break
            if entry != keep:
                entry.unlink(missing_ok=True)
                total -= size


async def storage_origin(storage: Storage) -> str:
    """What every link to the configured storage starts with: its endpoint and the bucket's (or
    this API's storage route's) path; nothing else on that host is trusted."""
    probe_key = "cure-origin-probe"
    parts = urlsplit(await storage.presigned_url(probe_key, expires_in=60))
    path = parts.path[: -len(probe_key)] if parts.path.endswith(probe_key) else parts.path
    return f"{parts.scheme}://{parts.netloc}{path}"


SourceLoader = Callable[[str], Awaitable[remote.Source]]


# The sources this process loaded, by name: their version and credentials (an OAuth2 source's
# token is kept across orders while its document stays the same).
_loaded: dict[str, tuple[int, remote.Source]] = {}


def source_loader(settings: Settings, engine: AsyncEngine) -> SourceLoader:
    """How this worker loads a remote source by name, with its secrets, from the database."""

    async def load(name: str) -> remote.Source:
        try:
            found = await source_service.load_source_with(engine, settings, name)
        except (SecretsUnreadable, StoredSourceInvalid) as exc:
            raise InputRefused(exc.message) from None
        if found is None:
            raise InputRefused(
                f"the source {name} is not an enabled catalogue source (any more) on this worker"
            )
        kept = _loaded.get(name)
        if kept is not None and kept[0] == found.version:
            return kept[1]
        source = remote.Source(name, found.document.max_parallel, found.auth)
        _loaded[name] = (found.version, source)
        return source

    return load


LOCAL = "local"
# Properties handed to the app under keys of their own, or that only the catalogue needs.
_NOT_PASSED_ON = {
    "assets", "collection", "identifier", "start", "end", "source", "cloudCover", "title",
    "date", "updated", "public", "orderId", "links",
}  # fmt: skip
MAX_PASSED_ON = 200  # properties handed to the app, at most


@dataclass(frozen=True)
class _Planned:
    """One asset to stage: where it goes and how the app is told about it."""

    product: FoundProduct
    key: str
    asset: dict[str, Any]
    name: str  # its path under /job
    link: Path  # this run's own link to the cached file


async def stage(
    settings: Settings,
    storage: Storage,
    products: list[FoundProduct],
    cache: InputCache,
    *,
    into: Path,
    roi: dict[str, Any] | None = None,
    sources: SourceLoader | None = None,
) -> StagedInputs:
    """Fetch every asset of the products (or take it from the cache), link it into ``into`` (so
    the cache may evict it meanwhile), and describe the layout. A remote Cloud-Optimized GeoTIFF
    is staged as the window of ``roi``; ``sources`` loads a remote source by its name."""
    staged = StagedInputs()
    await asyncio.to_thread(into.mkdir, parents=True, exist_ok=True)
    bounds = _bounds(roi)
    deadline = time.monotonic() + settings.stage_timeout_seconds
    plan: list[_Planned] = []
    seen: dict[str, int] = {}
    for product in products:
        number = seen[product.role] = seen.get(product.role, -1) + 1
        folder = f"inputs/{product.role}" + (f"/{number}" if number else "")
        for key, asset in product.assets.items():
            plan.append(
                _Planned(
                    product,
                    key,
                    asset,
                    name=f"{folder}/{_safe(key)}{_extension(asset)}",
                    link=into / f"{len(plan)}-{_safe(key)}",
                )
            )
    # A connection that stalls for a minute is broken: tried again, within the stage deadline.
    timeout = httpx.Timeout(settings.stage_timeout_seconds, connect=10, read=60)
    async with httpx.AsyncClient(timeout=timeout) as http:
        origin = await storage_origin(storage) if any(_is_local(p.product) for p in plan) else ""
        async with _Remotes(settings, http, deadline, sources) as remotes:
            results = await _gather(
                _stage_one(settings, http, cache, item, origin, remotes, bounds=bounds)
                for item in plan
            )
            staged.transferred = remotes.transferred
    values: dict[int, dict[str, dict[str, Any]]] = {}
    assets: dict[int, dict[str, str]] = {}
    for item, (path, cached, described) in zip(plan, results, strict=True):
        staged.files[item.name] = path
        staged.fetched += 1
        staged.from_cache += int(cached)
        staged.remote += int(not _is_local(item.product))
        assets.setdefault(id(item.product), {})[item.key] = item.name
        values.setdefault(id(item.product), {})[item.key] = {"path": item.name, **described}
    for product in products:
        staged.described.setdefault(product.role, []).append(
            _describe(product, assets.get(id(product), {}), values.get(id(product), {}))
        )
        reference = product.reference()
        if reference is not None and len(staged.derived_from) < MAX_LINEAGE:
            staged.derived_from.append(reference)
    return staged


def _describe(
    product: FoundProduct, assets: dict[str, str], values: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """A product as params.json gives it to the app (docs/apps.md, "Inputs as the app receives
    them")."""
    properties = product.properties
    passed_on = {
        name: value
        for name, value in properties.items()
        if name not in _NOT_PASSED_ON and isinstance(value, str | int | float | bool)
    }
    cloud_cover = properties.get("cloudCover")
    return {
        "collection": properties.get("collection"),
        "identifier": properties.get("identifier"),
        "start": properties.get("start"),
        "end": properties.get("end"),
        "source": str(properties.get("source") or LOCAL),
        "cloud_cover": cloud_cover if isinstance(cloud_cover, int | float) else None,
        "properties": dict(list(passed_on.items())[:MAX_PASSED_ON]),
        "assets": assets,
        "values": values,
    }


async def _gather(jobs: Any) -> list[Any]:
    """Every job's result in order; on the first failure the others are stopped, then it is
    raised (not wrapped in a group)."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _is_local(product: FoundProduct) -> bool:
    return str(product.properties.get("source") or LOCAL) == LOCAL


def _bounds(roi: dict[str, Any] | None) -> windows.Bounds | None:
    if roi is None:
        return None
    west, south, east, north = shape(roi).bounds
    return west, south, east, north


class _Remotes:
    """The transfers of one stage, one per remote source, made when first needed."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        deadline: float,
        sources: SourceLoader | None,
    ) -> None:
        self.settings, self.http, self.deadline = settings, http, deadline
        self._sources = sources
        self._open: dict[str, asyncio.Task[remote.Transfers]] = {}

    async def __aenter__(self) -> "_Remotes":
        return self

    async def __aexit__(self, *_: object) -> None:
        for task in self._open.values():
            task.cancel()
        await asyncio.gather(*self._open.values(), return_exceptions=True)
        for task in self._open.values():
            if not task.cancelled() and task.exception() is None:
                await task.result().aclose()

    @property
    def transferred(self) -> int:
        return sum(
            task.result().transferred
            for task in self._open.values()
            if task.done() and not task.cancelled() and task.exception() is None
        )

    async def of(self, name: str) -> remote.Transfers:
        if name not in self._open:
            self._open[name] = asyncio.ensure_future(self._make(name))
        return await asyncio.shield(self._open[name])

    async def _make(self, name: str) -> remote.Transfers:
        if self._sources is None:
            raise InputRefused(f"the source {name} cannot be reached from this worker")
        source = await self._sources(name)
        return remote.Transfers(self.settings, source, self.http, self.deadline)


async def _stage_one(
    settings: Settings,
    http: httpx.AsyncClient,
    cache: InputCache,
    item: _Planned,
    origin: str,
    remotes: _Remotes,
    *,
    bounds: windows.Bounds | None,
) -> tuple[Path, bool, dict[str, Any]]:
    """One asset: this run's link to its cached file (made at once, so the cache may evict the
    file meanwhile), whether it was in the cache, and its values for the app."""
    asset = item.asset
    media_type = str(asset.get("type") or "").split(";")[0].strip() or None
    windowed = False
    if _is_local(item.product):
        path, cached = await _fetch(settings, http, cache, asset, origin)
    else:
        name = str(item.product.properties.get("source"))
        what = f"the asset {item.key} of {item.product.properties.get('identifier')}"
        try:
            transfers = await remotes.of(name)
            if bounds is not None and windows.is_cloud_optimized(asset):
                windowed = True
                path, cached = await _stage_window(
                    transfers, cache, asset, bounds=bounds, what=what
                )
            else:
                path, cached = await _stage_whole(transfers, cache, asset, what=what)
        except remote.TransferError as exc:
            raise InputRefused(str(exc)) from exc
    link = await asyncio.to_thread(_pin, path, item.link)
    values = await asyncio.to_thread(_values_of, link) if windowed else _catalogued(asset)
    return link, cached, {"media_type": media_type, "windowed": windowed, **values}


def _catalogued(asset: dict[str, Any]) -> dict[str, float | None]:
    return {name: _number(asset.get(name)) for name in ("scale", "offset", "nodata")}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _values_of(path: Path) -> dict[str, float | None]:
    """A staged window's scale, offset and nodata as written into it (None: not given)."""
    with rasterio.open(path) as staged:
        scale, offset = staged.scales[0], staged.offsets[0]
        given = scale != 1 or offset != 0
        return {
            "scale": float(scale) if given else None,
            "offset": float(offset) if given else None,
            "nodata": float(staged.nodata) if staged.nodata is not None else None,
        }


def _unsigned(href: str) -> str:
    """The href without its query (a signature, which changes with each signing)."""
    parts = urlsplit(href)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


async def _stage_window(
    transfers: remote.Transfers,
    cache: InputCache,
    asset: dict[str, Any],
    *,
    bounds: windows.Bounds,
    what: str,
) -> tuple[Path, bool]:
    href = str(asset.get("href") or "")
    found = await transfers.probe(href, what)
    key = json.dumps(
        {
            "window": _unsigned(href),
            "bounds": [round(edge, 7) for edge in bounds],
            "margin": windows.MARGIN_PIXELS,
            "validator": found.validator,
            "checksum": asset.get("checksum"),
        },
        sort_keys=True,
    )
    cached = await asyncio.to_thread(cache.lookup_key, key)
    if cached is not None:
        return cached, True
    partial = cache.partial()
    try:
        await windows.cut_window(
            transfers,
            href,
            size=found.size,
            bounds=bounds,
            into=partial,
            asset=asset,
            what=what,
            max_bytes=cache.max_bytes,
        )
        return await asyncio.to_thread(cache.admit_key, partial, key), False
    finally:
        partial.unlink(missing_ok=True)


async def _stage_whole(
    transfers: remote.Transfers, cache: InputCache, asset: dict[str, Any], *, what: str
) -> tuple[Path, bool]:
    """A remote file fetched whole, verified by the size and checksum the catalogue gives."""
    href = str(asset.get("href") or "")
    size = asset.get("size") if isinstance(asset.get("size"), int) else None
    expected = parse_checksum(asset.get("checksum"), what=what)
    if expected is not None and expected[0] == "sha256":
        checksum = f"sha256:{expected[1]}"
        found = None
        cached = await asyncio.to_thread(cache.lookup, checksum, size)
    else:
        found = await transfers.probe(href, what)
        key = json.dumps(
            {"file": _unsigned(href), "validator": found.validator, "checksum": expected},
            sort_keys=True,
        )
        cached = await asyncio.to_thread(cache.lookup_key, key)
    if cached is not None:
        return cached, True
    partial = cache.partial()
    try:
        digests = [hashlib.sha256()]
        if expected is not None and expected[0] != "sha256":
            digests.append(hashlib.new(expected[0]))
        limit = size if size is not None else (found.size if found else None) or cache.max_bytes
        written = await transfers.download(
            href, partial, limit=min(limit, cache.max_bytes), digests=digests, what=what
        )
        if size is not None and written != size:
            raise InputRefused(f"{what} ({remote.where(href)}) gave {written} bytes, not {size}")
        if expected is not None and digests[-1].hexdigest() != expected[1]:
            raise InputRefused(
                f"{what} ({remote.where(href)}) gave bytes whose {expected[0]} is not the "
                "catalogue's checksum"
            )
        if found is None:  # kept under its sha256, whichever source it came from
            return await asyncio.to_thread(cache.admit, partial, checksum), False
        return await asyncio.to_thread(cache.admit_key, partial, key), False
    finally:
        partial.unlink(missing_ok=True)


# Multihash codes (STAC's file:checksum) of the digests hashlib computes: code, digest length.
_MULTIHASH = {"12": ("sha256", 32), "13": ("sha512", 64), "11": ("sha1", 20), "d501": ("md5", 16)}


def parse_checksum(checksum: Any, *, what: str = "the asset") -> tuple[str, str] | None:
    """The algorithm and hex digest of a checksum as CURE (``sha256:<hex>``) or STAC
    (``file:checksum``, a multihash in hex: ``1220<hex>`` is sha2-256) gives it; None when none
    is given. A form this worker cannot check is refused rather than ignored."""
    if checksum is None or checksum == "":
        return None
    text = str(checksum).strip().lower()
    algorithm, colon, digest = text.partition(":")
    if colon:
        if algorithm in ("sha256", "sha512", "sha1", "md5") and _is_hex(
            digest, hashlib.new(algorithm).digest_size * 2
        ):
            return algorithm, digest
    else:
        for code, (name, length) in _MULTIHASH.items():
            size = f"{length:02x}"
            if text.startswith(code + size) and _is_hex(text[len(code) + 2 :], length * 2):
                return name, text[len(code) + 2 :]
    raise InputRefused(f"{what} has a checksum this worker cannot check: {str(checksum)[:80]!r}")


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789abcdef" for c in text)


def _pin(path: Path, link: Path) -> Path:
    """A hard link to the cached file (a copy across file systems) for this run alone."""
    try:
        os.link(path, link)
    except OSError:
        shutil.copyfile(path, link)
    return link


def _safe(key: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in key)[:64]
    return cleaned or "asset"


def _extension(asset: dict[str, Any]) -> str:
    media_type = str(asset.get("type") or "").split(";")[0].strip()
    if media_type in _EXTENSIONS:
        return _EXTENSIONS[media_type]
    suffix = Path(urlsplit(str(asset.get("href", ""))).path).suffix
    return suffix if suffix.isascii() and 1 < len(suffix) <= 6 and suffix[1:].isalnum() else ""


async def _fetch(
    settings: Settings,
    http: httpx.AsyncClient,
    cache: InputCache,
    asset: dict[str, Any],
    origin: str,
) -> tuple[Path, bool]:
    href = str(asset.get("href", ""))
    checksum, size = asset.get("checksum"), asset.get("size")
    if not checksum:
        raise InputRefused(f"the asset {_where(href)} has no checksum; it cannot be verified")
    cached = cache.lookup(checksum, size)
    if cached is not None:
        return cached, True
    request = await _request_for(settings, href, origin)
    partial = cache.partial()
    try:
        async with asyncio.timeout(settings.stage_timeout_seconds):
            # An asset that does not say its size may be no larger than the whole cache.
            limit = size if size is not None else cache.max_bytes
            digest, written = await _download(http, request, partial, limit)
        if size is not None and written != size:
            raise InputRefused(f"{_where(href)} gave {written} bytes, not the {size} expected")
        if f"sha256:{digest}" != checksum:
            raise InputRefused(f"{_where(href)} gave bytes whose checksum is not {checksum}")
        return cache.admit(partial, checksum), False
    finally:
        partial.unlink(missing_ok=True)


async def _request_for(settings: Settings, href: str, origin: str) -> httpx.Request:
    """A request for the asset, if it may be fetched at all."""
    parts = urlsplit(href)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputRefused(f"the asset {_where(href)!r} is not an http(s) link")
    if href.startswith(origin) and ".." not in parts.path:
        return httpx.Request("GET", href)  # the configured bucket: trusted wherever it runs
    if parts.hostname.lower() not in {host.lower() for host in settings.input_hosts}:
        raise InputRefused(
            f"inputs may come only from the storage bucket or an allowed host; "
            f"{parts.hostname} is neither"
        )
    try:
        target = await outbound.check_target(href, allow_private=False)
    except outbound.TargetRefused as exc:
        raise InputRefused(f"the asset's host is refused: {exc}") from exc
    extensions = {"sni_hostname": target.tls_name} if target.tls_name else {}
    return httpx.Request("GET", target.url, headers={"Host": target.host}, extensions=extensions)


async def _download(
    http: httpx.AsyncClient, request: httpx.Request, into: Path, size: int
) -> tuple[str, int]:
    """Stream the response body to ``into``; its sha256 and length. Never whole in memory."""
    digest = hashlib.sha256()
    written = 0
    response = await http.send(request, stream=True, follow_redirects=False)
    try:
        if response.status_code != 200:
            raise InputRefused(f"{_where(str(request.url))} answered {response.status_code}")
        with into.open("wb") as sink:
            async for chunk in response.aiter_bytes(1 << 20):
                written += len(chunk)
                if written > size:
                    raise InputRefused(f"{_where(str(request.url))} sent more than {size} bytes")
                digest.update(chunk)
                await asyncio.to_thread(sink.write, chunk)
    finally:
        await response.aclose()
    return digest.hexdigest(), written


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:160]  # never the signed query
