"""Transfers from a remote catalogue source's assets: ranges of a file and whole files, over
HTTP(S) or from ``s3://``, with the source's credentials.

Every transfer keeps the outbound-network guard: an http(s) href (and every redirect) must name
a host in ``input_hosts`` at public addresses only (``allow_private_inputs`` lifts the latter for
tests), and is sent to the address that was checked; an ``s3://`` href goes to the endpoint the
source's operator configured. A transfer that fails for now (429, 5xx, a broken connection) is
tried again with exponential backoff and jitter, honouring Retry-After, within the stage's
deadline; at most ``max_parallel`` transfers of a source run at once in a worker process. Errors
name the source and the href without its query (a signature is never shown).
"""

import asyncio
import contextlib
import email.utils
import hashlib
import logging
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import aioboto3
import aiohttp
import httpx
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cure.ccsi.sources.auth import S3Access, SourceAuth, SourceAuthError
from cure.config import Settings
from cure.kit import outbound

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_CAP_SECONDS = 30.0  # the longest pause between two tries that CURE picks itself
MAX_REDIRECTS = 5
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
_REDIRECT_STATUS = {301, 302, 303, 307, 308}
_NO_HEAD_STATUS = {400, 403, 405, 501}  # a link signed for GET only, or a server without HEAD


class TransferError(Exception):
    """An asset that could not be had; the message names the source and the asset."""


class TransferRefused(TransferError):
    """An asset that may not be fetched, or that did not arrive as described: not tried again."""


class TransferFailed(TransferError):
    """The source kept failing (or was down) until the tries or the deadline ran out."""


@dataclass(frozen=True)
class Source:
    """What staging needs of a catalogue source: its name, its limit and its credentials."""

    name: str
    max_parallel: int = 4
    auth: SourceAuth | None = None


@dataclass(frozen=True)
class RemoteFile:
    """What the source says of a file before it is fetched."""

    size: int | None
    validator: str | None  # the ETag, else Last-Modified: a new one means a new file


def where(href: str) -> str:
    """The href as errors and logs show it: never its query, where signatures live."""
    parts = urlsplit(href)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:200]


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


# At most max_parallel transfers of a source at once in this process (one event loop a process
# in the worker; a loop of its own has limits of its own, as in tests).
_Limits = dict[tuple[str, int], asyncio.Semaphore]
_limits: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Limits]" = (
    weakref.WeakKeyDictionary()
)


def _limit(source: Source) -> asyncio.Semaphore:
    per_loop = _limits.setdefault(asyncio.get_running_loop(), {})
    return per_loop.setdefault(
        (source.name, source.max_parallel), asyncio.Semaphore(source.max_parallel)
    )


@dataclass
class _Target:
    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]


@dataclass
class Transfers:
    """The transfers of one stage from one source, until ``deadline`` (``time.monotonic()``)."""

    settings: Settings
    source: Source
    http: httpx.AsyncClient
    deadline: float
    transferred: int = 0  # body bytes received
    sizes: dict[str, int] = field(default_factory=dict)  # whole sizes that range answers gave
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    _s3: Any = None
    _targets: dict[str, _Target] = field(default_factory=dict)
    _moved: dict[str, str] = field(default_factory=dict)

    async def aclose(self) -> None:
        await self._stack.aclose()

    # -- what callers use ----------------------------------------------------------------------

    async def probe(self, href: str, what: str) -> RemoteFile:
        """The file's size and validator (HEAD, or S3's HeadObject); nothing is transferred.
        A signed href, or a server that does not answer HEAD, gives neither."""
        if href.startswith("s3://"):
            bucket, key = _s3_parts(href)

            async def head_object() -> RemoteFile:
                s3 = await self._s3_client()
                answer = await s3.head_object(Bucket=bucket, Key=key, **self._s3_request_args())
                modified = answer.get("LastModified")
                return RemoteFile(
                    size=answer.get("ContentLength"),
                    validator=answer.get("ETag") or (modified.isoformat() if modified else None),
                )

            return await self._retrying(href, what, head_object)
        if urlsplit(href).query or (self.source.auth and self.source.auth.signs_hrefs):
            return RemoteFile(size=None, validator=None)  # signed for GET: a HEAD would be refused

        async def head() -> RemoteFile:
            response = await self._send("HEAD", href, what)
            await response.aclose()
            if response.status_code in _NO_HEAD_STATUS:
                return RemoteFile(size=None, validator=None)
            self._check_status(response, href, what, expected={200})
            length = response.headers.get("Content-Length")
            return RemoteFile(
                size=int(length) if length and length.isdigit() else None,
                validator=response.headers.get("ETag") or response.headers.get("Last-Modified"),
            )

        return await self._retrying(href, what, head)

    async def read_range(self, href: str, start: int, length: int, what: str) -> bytes:
        """``length`` bytes from ``start`` (fewer only at the end of the file)."""
        if length <= 0:
            return b""
        last = start + length - 1
        if href.startswith("s3://"):
            bucket, key = _s3_parts(href)

            async def get_object() -> bytes:
                s3 = await self._s3_client()
                answer = await s3.get_object(
                    Bucket=bucket, Key=key, Range=f"bytes={start}-{last}", **self._s3_request_args()
                )
                async with answer["Body"] as body:
                    data: bytes = await body.read()
                self.transferred += len(data)
                self._note_size(href, answer.get("ContentRange"))
                return data

            return await self._retrying(href, what, get_object)

        async def get() -> bytes:
            response = await self._send("GET", href, what, {"Range": f"bytes={start}-{last}"})
            try:
                whole = response.status_code == 200  # the server ignored the range
                whole_size = response.headers.get("Content-Length", "")
                if whole and not (
                    start == 0 and whole_size.isdigit() and int(whole_size) <= length
                ):
                    raise TransferRefused(
                        f"{where(href)} of the source {self.source.name} does not answer range "
                        "requests, which reading a window needs"
                    )
                self._check_status(response, href, what, expected={200, 206})
                if whole:
                    self.sizes[href] = int(whole_size)  # a file smaller than the range
                self._note_size(href, response.headers.get("Content-Range"))
                chunks = []
                async for chunk in response.aiter_bytes():
                    self.transferred += len(chunk)
                    chunks.append(chunk)
            except httpx.TransportError as exc:
                raise _Transient(_reason(exc)) from exc
            finally:
                await response.aclose()
            data = b"".join(chunks)
            if len(data) > length:
                raise TransferRefused(f"{where(href)} sent more than the {length} bytes asked for")
            return data

        return await self._retrying(href, what, get)

    def _note_size(self, href: str, content_range: str | None) -> None:
        total = (content_range or "").rpartition("/")[2].strip()
        if total.isdigit():
            self.sizes[href] = int(total)

    async def read_ranges(self, href: str, ranges: list[tuple[int, int]], what: str) -> list[bytes]:
        """Several ranges at once, within the source's limit."""
        return list(
            await asyncio.gather(
                *(self.read_range(href, start, length, what) for start, length in ranges)
            )
        )

    async def download(
        self, href: str, into: Path, *, limit: int, digests: list[Any], what: str
    ) -> int:
        """The whole file into ``into``, fed to each of ``digests`` (hashlib objects) on the way;
        its length. A broken transfer resumes where it stopped when the server answers ranges,
        and starts again from the first byte when it does not."""
        kept = _Download(into, limit, digests, href)
        await asyncio.to_thread(kept.restart)
        if href.startswith("s3://"):
            bucket, key = _s3_parts(href)

            async def get_object() -> int:
                s3 = await self._s3_client()
                extra = {"Range": f"bytes={kept.written}-"} if kept.written else {}
                answer = await s3.get_object(
                    Bucket=bucket, Key=key, **extra, **self._s3_request_args()
                )
                async with answer["Body"] as body:
                    if kept.written and not _resumes(answer.get("ContentRange"), kept.written):
                        await asyncio.to_thread(kept.restart)
                    try:
                        while chunk := await body.read(1 << 16):
                            await kept.take(chunk)
                            self.transferred += len(chunk)
                    finally:
                        await kept.flush()
                return kept.written

            return await self._retrying(href, what, get_object)

        async def get() -> int:
            headers = {"Range": f"bytes={kept.written}-"} if kept.written else None
            response = await self._send("GET", href, what, headers)
            try:
                self._check_status(response, href, what, expected={200, 206} if headers else {200})
                if headers and not (
                    response.status_code == 206
                    and _resumes(response.headers.get("Content-Range"), kept.written)
                ):
                    await asyncio.to_thread(kept.restart)
                async for chunk in response.aiter_bytes():
                    await kept.take(chunk)
                    self.transferred += len(chunk)
            except httpx.TransportError as exc:
                raise _Transient(_reason(exc)) from exc
            finally:
                await kept.flush()
                await response.aclose()
            return kept.written

        return await self._retrying(href, what, get)

    # -- tries, limits, the guard --------------------------------------------------------------

    async def _retrying(self, href: str, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        tries = 0
        while True:
            tries += 1
            deadline = asyncio.timeout_at(self._loop_deadline())
            try:
                async with deadline:
                    async with _limit(self.source):
                        return await attempt()
            except _Transient as exc:
                reason, asked = exc.reason, exc.retry_after
            except SourceAuthError as exc:  # the token endpoint or the signing service
                if not exc.transient:
                    raise TransferRefused(
                        f"{what} ({where(href)}) cannot be had: {exc.reason}"
                    ) from None
                reason, asked = exc.reason, None
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if not isinstance(status, int) or not (
                    status in _TRANSIENT_STATUS or status >= 500
                ):
                    code = exc.response.get("Error", {}).get("Code", status)
                    raise TransferRefused(
                        f"the source {self.source.name} refused {what} ({where(href)}): {code}"
                    ) from None
                reason, asked = f"answered {status}", None
            except (BotoCoreError, aiohttp.ClientError, TimeoutError) as exc:
                if deadline.expired():
                    raise TransferFailed(
                        self._failed(href, what, "the stage deadline passed", tries)
                    ) from None
                reason, asked = _reason(exc), None  # the S3 client's broken connections
            if tries > self.settings.stage_retries:
                raise TransferFailed(self._failed(href, what, reason, tries))
            pause = asked if asked is not None else self._backoff(tries)
            if time.monotonic() + pause >= self.deadline:
                late = f"{reason}; waiting {pause:.0f}s more would pass the stage deadline"
                raise TransferFailed(self._failed(href, what, late, tries))
            log.info(
                "source %s, %s: %s; trying again in %.1fs", self.source.name, what, reason, pause
            )
            await asyncio.sleep(pause)

    def _loop_deadline(self) -> float:
        """The stage deadline on the event loop's clock."""
        return asyncio.get_running_loop().time() + (self.deadline - time.monotonic())

    def _backoff(self, tries: int) -> float:
        ceiling = min(RETRY_CAP_SECONDS, self.settings.stage_retry_base_seconds * 2 ** (tries - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not a secret)

    def _failed(self, href: str, what: str, reason: str, tries: int) -> str:
        return (
            f"the source {self.source.name} did not deliver {what} ({where(href)}): {reason}"
            f" (after {tries} {'try' if tries == 1 else 'tries'})"
        )

    def _check_status(
        self, response: httpx.Response, href: str, what: str, *, expected: set[int]
    ) -> None:
        status = response.status_code
        if status in expected:
            return
        if status in _TRANSIENT_STATUS or status >= 500:
            raise _Transient(
                f"answered {status}", _retry_after(response.headers.get("Retry-After"))
            )
        raise TransferRefused(
            f"the source {self.source.name} answered {status} for {what} ({where(href)})"
        )

    async def _href(self, href: str) -> str:
        """The href to request: signed by a signing source (which keeps signatures until they
        expire)."""
        return href if self.source.auth is None else await self.source.auth.sign(href)

    async def _send(
        self, method: str, href: str, what: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """The response (streamed) to ``method`` on the href, following guarded redirects and
        refreshing the source's token once on a 401. The source's credentials go to the origin
        of its own href only, never to where it redirects."""
        refreshed = False
        while True:
            own = await self._href(href)
            url = self._moved.get(href, own)
            for _ in range(MAX_REDIRECTS + 1):
                target = await self._target(url)
                credentials: dict[str, str] = {}
                if self.source.auth is not None and _origin(url) == _origin(own):
                    credentials = await self.source.auth.headers(refresh=refreshed)
                request = self.http.build_request(
                    method,
                    target.url,
                    # the file's own bytes: ranges and checksums are of those
                    headers={
                        "Accept-Encoding": "identity",
                        **target.headers,
                        **credentials,
                        **(headers or {}),
                    },
                    extensions=target.extensions,
                )
                try:
                    response = await self.http.send(request, stream=True, follow_redirects=False)
                except httpx.TransportError as exc:
                    raise _Transient(_reason(exc)) from exc
                if response.status_code not in _REDIRECT_STATUS:
                    break
                location = response.headers.get("Location")
                await response.aclose()
                if not location:
                    raise TransferRefused(f"{where(url)} redirected to nowhere")
                url = urljoin(url, location)
                self._moved[href] = url  # later ranges of the file go there at once
            else:
                raise TransferRefused(f"{where(href)} redirected more than {MAX_REDIRECTS} times")
            if response.status_code == 401 and self.source.auth is not None and not refreshed:
                await response.aclose()
                refreshed = True
                self._moved.pop(href, None)
                continue
            return response

    async def _target(self, url: str) -> _Target:
        """Where to send a request for ``url``: the checked address, the Host header and TLS name
        (checked once a stage, so a name that resolves elsewhere later reaches nothing new)."""
        parts = urlsplit(url)
        origin = _origin(url)
        if origin not in self._targets:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise TransferRefused(f"the asset {where(url)!r} is not an http(s) or s3 link")
            if parts.username or parts.password:
                raise TransferRefused(f"the asset {where(url)!r} carries credentials")
            allowed = {host.lower() for host in self.settings.input_hosts}
            if parts.hostname.lower() not in allowed:
                raise TransferRefused(
                    f"inputs may come only from the hosts in CURE_INPUT_HOSTS; "
                    f"{parts.hostname} of the source {self.source.name} is not one"
                )
            try:
                checked = await outbound.check_target(
                    f"{origin}/", allow_private=self.settings.allow_private_inputs
                )
            except outbound.TargetRefused as exc:
                raise TransferRefused(f"the asset's host is refused: {exc}") from exc
            self._targets[origin] = _Target(
                url=_origin(checked.url),
                headers={"Host": checked.host},
                extensions={"sni_hostname": checked.tls_name} if checked.tls_name else {},
            )
        found = self._targets[origin]
        query = f"?{parts.query}" if parts.query else ""
        return _Target(f"{found.url}{parts.path or '/'}{query}", found.headers, found.extensions)

    def _s3_request_args(self) -> dict[str, str]:
        access = self.source.auth.s3() if self.source.auth is not None else None
        return {"RequestPayer": "requester"} if access and access.requester_pays else {}

    async def _s3_client(self) -> Any:
        if self._s3 is None:
            access = (self.source.auth.s3() if self.source.auth is not None else None) or S3Access()
            if access.endpoint_url:
                try:
                    await outbound.check_target(
                        access.endpoint_url, allow_private=self.settings.allow_private_inputs
                    )
                except outbound.TargetRefused as exc:
                    raise TransferRefused(
                        f"the S3 endpoint of the source {self.source.name} is refused: {exc}"
                    ) from exc
            keys = access.access_key_id and access.secret_access_key
            config = Config(
                signature_version="s3v4" if keys else UNSIGNED,
                s3={"addressing_style": "path" if access.endpoint_url else "auto"},
                retries={"total_max_attempts": 1},  # the tries are ours (_retrying)
                connect_timeout=10,
                read_timeout=60,
                max_pool_connections=max(self.source.max_parallel, 1),
            )
            self._s3 = await self._stack.enter_async_context(
                aioboto3.Session().client(
                    "s3",
                    endpoint_url=access.endpoint_url,
                    region_name=access.region,
                    aws_access_key_id=access.access_key_id if keys else None,
                    aws_secret_access_key=access.secret_access_key if keys else None,
                    config=config,
                )
            )
        return self._s3


@dataclass
class _Download:
    """A whole file arriving at ``into``: its length so far and its digests. What arrived is
    kept even when the connection breaks, so the next try can go on from there."""

    into: Path
    limit: int
    digests: list[Any]
    href: str
    written: int = 0
    _buffer: bytearray = field(default_factory=bytearray)

    def restart(self) -> None:
        self.written = 0
        self._buffer.clear()
        self.into.write_bytes(b"")
        self.digests[:] = [hashlib.new(digest.name) for digest in self.digests]

    async def take(self, chunk: bytes) -> None:
        self.written += len(chunk)
        if self.written > self.limit:
            raise TransferRefused(f"{where(self.href)} sent more than {self.limit} bytes")
        for digest in self.digests:
            digest.update(chunk)
        self._buffer += chunk
        if len(self._buffer) >= 1 << 20:
            await self.flush()

    async def flush(self) -> None:
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            await asyncio.to_thread(self._append, data)

    def _append(self, data: bytes) -> None:
        with self.into.open("ab") as sink:
            sink.write(data)


def _resumes(content_range: str | None, start: int) -> bool:
    """Whether a range answer goes on at ``start`` ("bytes 1000-1999/2000")."""
    unit, _, rest = (content_range or "").partition(" ")
    return unit == "bytes" and rest.split("-", 1)[0].strip() == str(start)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _s3_parts(href: str) -> tuple[str, str]:
    parts = urlsplit(href)
    key = parts.path.lstrip("/")
    if not parts.netloc or not key:
        raise TransferRefused(f"{where(href)} is not an s3://bucket/key link")
    return parts.netloc, key


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__
    return f"the connection broke ({name})" if name else "the connection broke"
