"""Inputs of an order's run: find them in the catalogue, fetch them into a size-bounded cache
(verifying size and checksum), and lay them out for the container.

Assets are fetched only from the storage bucket (links to the configured storage) or from the
hosts in ``input_hosts``, and then only at public addresses (the outbound-network guard), so a
catalogue entry cannot make a worker reach into its own network.
"""

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from shapely.geometry import shape

from cure.apps.schemas import AppInput
from cure.ccsi.client import CcsiClient
from cure.config import Settings
from cure.kit import outbound
from cure.storage.service import Storage

log = logging.getLogger(__name__)

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

    @property
    def properties(self) -> dict[str, Any]:
        properties: dict[str, Any] = self.feature.get("properties") or {}
        return properties


@dataclass
class StagedInputs:
    """What the container gets: files by their path under /job, and params.json's ``inputs``."""

    files: dict[str, Path] = field(default_factory=dict)
    described: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fetched: int = 0
    from_cache: int = 0


# -- resolve -------------------------------------------------------------------------------------


async def resolve(
    settings: Settings,
    inputs: list[AppInput],
    *,
    roi: dict[str, Any],
    start: date,
    end: date,
) -> list[FoundProduct]:
    """The newest ``count`` products of each input over the region and its window, or
    InputMissing naming the input (and the nearest earlier date with data, when there is one)."""
    region = shape(roi)
    where: dict[str, Any] = (
        {"geometry": region}
        if len(region.wkt) <= MAX_GEOMETRY_WKT
        else {"bbox": tuple(region.bounds)}
    )
    found: list[FoundProduct] = []
    async with CcsiClient(settings.catalogue_url, timeout=settings.stage_timeout_seconds) as ccsi:
        for wanted in inputs:
            first, last = wanted.window(start, end)
            query = {"collection": wanted.collection, "product_type": wanted.product_type, **where}
            products = await _first(ccsi, wanted.count, start=first, end=last, **query)
            if len(products) < wanted.count:
                earlier = await _first(ccsi, 1, end=first, **query)
                before = _end_of(earlier[0]) if earlier else None
                raise InputMissing(wanted.missing(first, last, before=before))
            found += [FoundProduct(wanted.role, feature) for feature in products]
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
        if (
            algorithm != "sha256"
            or len(digest) != 64
            or not all(c in "0123456789abcdef" for c in digest)
        ):
            raise InputRefused(f"the checksum {checksum[:80]!r} is not a sha256 this cache knows")
        return self.directory / digest

    def lookup(self, checksum: str, size: int | None) -> Path | None:
        path = self._path(checksum)
        try:
            if size is not None and path.stat().st_size != size:
                return None
            os.utime(path)  # recently used
        except FileNotFoundError:
            return None
        return path

    def admit(self, fetched: Path, checksum: str) -> Path:
        path = self._path(checksum)
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


async def stage(
    settings: Settings,
    storage: Storage,
    products: list[FoundProduct],
    cache: InputCache,
    *,
    into: Path,
) -> StagedInputs:
    """Fetch every asset of the products (or take it from the cache), link it into ``into`` (so
    the cache may evict it meanwhile), and describe the layout."""
    staged = StagedInputs()
    origin = await storage_origin(storage)
    await asyncio.to_thread(into.mkdir, parents=True, exist_ok=True)
    seen: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=settings.stage_timeout_seconds) as http:
        for product in products:
            assets: dict[str, str] = {}
            number = seen[product.role] = seen.get(product.role, -1) + 1
            folder = f"inputs/{product.role}" + (f"/{number}" if number else "")
            for key, asset in (product.properties.get("assets") or {}).items():
                name = f"{folder}/{_safe(key)}{_extension(asset)}"
                path, cached = await _fetch(settings, http, cache, asset, origin)
                link = into / f"{len(staged.files)}-{_safe(key)}"
                staged.files[name] = await asyncio.to_thread(_pin, path, link)
                staged.fetched += 1
                staged.from_cache += int(cached)
                assets[key] = name
            staged.described.setdefault(product.role, []).append(
                {
                    "collection": product.properties.get("collection"),
                    "identifier": product.properties.get("identifier"),
                    "start": product.properties.get("start"),
                    "end": product.properties.get("end"),
                    "assets": assets,
                }
            )
    return staged


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
