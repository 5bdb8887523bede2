"""The CURE client: ``AsyncCureClient`` (asyncio) and ``CureClient`` (the same, blocking).

Every call retries answers 429 and 503 with growing pauses, waiting as long as ``Retry-After``
says; reads (and submissions, which carry an idempotency key) are also retried when the API
cannot be reached, so a restart of the API costs a script nothing.
"""

import asyncio
import email.utils
import hashlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin

import httpx

from cure_client.auth import ClientCredentials, Credentials, PasswordLogin, TokenKeeper, _error
from cure_client.errors import ApiError, ChecksumMismatch, NotLoggedIn, NotReady
from cure_client.models import App, Asset, Order, OrderPage, Product, Token

RETRY_STATUSES = frozenset({429, 503})
CHUNK = 1 << 16
T = TypeVar("T")
Progress = Callable[[Asset, int], None]  # bytes written so far of that asset


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _day(value: date | datetime | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


class AsyncCureClient:
    """CURE over HTTP, asynchronously. Use it as an async context manager (or ``aclose()``)."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        on_refresh: Callable[[str], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._tokens = (
            TokenKeeper(credentials, on_refresh=on_refresh) if credentials is not None else None
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport, follow_redirects=False
        )
        # Downloads go to expiring links elsewhere (S3): a client of their own, never the token.
        self._plain = httpx.AsyncClient(timeout=timeout, follow_redirects=True)

    async def __aenter__(self) -> "AsyncCureClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._plain.aclose()

    # -- plumbing --------------------------------------------------------------------------------

    def _pause(self, attempt: int) -> float:
        """Exponential backoff with jitter."""
        return min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)  # noqa: S311

    async def _auth_header(self) -> dict[str, str]:
        if self._tokens is None:
            raise NotLoggedIn("no credentials: log in first (cure-client login)")
        token = self._tokens.current()
        if token is None:
            token = (await self._with_retries(lambda: self._tokens_fetch(), safe=True)).access_token
        return {"Authorization": f"Bearer {token}"}

    async def _tokens_fetch(self) -> Token:
        assert self._tokens is not None
        return await self._tokens.fetch(self._http)

    async def _with_retries(self, call: Callable[[], Any], *, safe: bool) -> Any:
        """Run ``call`` again after a 429/503 (it raises ApiError) or, when ``safe``, after the
        API could not be reached."""
        attempt = 0
        while True:
            try:
                return await call()
            except ApiError as exc:
                if exc.status_code not in RETRY_STATUSES or attempt >= self.max_retries:
                    raise
                pause = exc.retry_after
                if pause is not None:
                    pause = min(pause, self.max_backoff * 4)
                await asyncio.sleep(pause if pause is not None else self._pause(attempt))
            except httpx.TransportError:
                if not safe or attempt >= self.max_retries:
                    raise
                await asyncio.sleep(self._pause(attempt))
            attempt += 1

    async def request(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        safe: bool | None = None,
        expect: tuple[int, ...] = (200,),
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One API call with the token and retries; an unexpected status raises ApiError."""
        safe = method in ("GET", "HEAD", "DELETE") if safe is None else safe
        renewed = False

        async def once() -> httpx.Response:
            nonlocal renewed
            sent = dict(headers or {})
            if auth:
                sent.update(await self._auth_header())
            response = await self._http.request(method, path, headers=sent, **kwargs)
            if response.status_code == 401 and auth and not renewed and self._tokens:
                renewed = True  # a token revoked or expired early: one new token, one more try
                self._tokens.forget()
                return await once()
            if response.status_code not in expect:
                error = _error(response)
                if response.status_code in RETRY_STATUSES:
                    error.retry_after = _retry_after(response)
                raise error
            return response

        result: httpx.Response = await self._with_retries(once, safe=safe)
        return result

    # -- account ---------------------------------------------------------------------------------

    async def login(self) -> Token:
        """Get a token now (checks the credentials)."""
        if self._tokens is None:
            raise NotLoggedIn("no credentials to log in with")
        self._tokens.forget()
        token: Token = await self._with_retries(self._tokens_fetch, safe=True)
        return token

    @property
    def credentials(self) -> Credentials | None:
        return self._tokens.credentials if self._tokens else None

    # -- apps and orders -------------------------------------------------------------------------

    async def apps(self) -> list[App]:
        response = await self.request("GET", "/v1/apps", auth=False)
        return [App.model_validate(item) for item in response.json()]

    async def submit(
        self,
        app_id: str,
        region: dict[str, Any],
        start_date: date | str,
        end_date: date | str | None = None,
        *,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        notify_email: bool | None = None,
        callback_url: str | None = None,
    ) -> Order:
        """Order an app for a region (a GeoJSON Polygon or MultiPolygon, see ``cure_client.region``)
        and a period. An idempotency key is always sent (a new one unless given), so a retried
        submission never makes a second order."""
        body: dict[str, Any] = {
            "roi": region,
            "start_date": _day(start_date),
            "params": params or {},
        }
        if end_date is not None:
            body["end_date"] = _day(end_date)
        if notify_email is not None:
            body["notify_email"] = notify_email
        if callback_url is not None:
            body["callback_url"] = callback_url
        key = idempotency_key or uuid.uuid4().hex
        response = await self.request(
            "POST",
            f"/v1/apps/{app_id}/orders",
            json=body,
            headers={"Idempotency-Key": key},
            safe=True,
            expect=(202,),
        )
        return Order.model_validate(response.json())

    async def order(self, order_id: str) -> Order:
        response = await self.request("GET", f"/v1/orders/{order_id}")
        return Order.model_validate(response.json())

    async def cancel(self, order_id: str) -> Order:
        response = await self.request("POST", f"/v1/orders/{order_id}/cancel", safe=True)
        return Order.model_validate(response.json())

    async def orders_page(self, *, cursor: str | None = None, **filters: Any) -> OrderPage:
        """One page of your orders; filters as GET /v1/orders takes them (status, app_id,
        created_after, bbox, sort, limit, ...)."""
        params = {k: v for k, v in filters.items() if v is not None and v != []}
        if cursor:
            params["cursor"] = cursor
        response = await self.request("GET", "/v1/orders", params=params)
        return OrderPage.model_validate(response.json())

    async def orders(self, *, max_items: int | None = None, **filters: Any) -> AsyncIterator[Order]:
        """Your orders, page after page (at most ``max_items``)."""
        cursor, count = None, 0
        while True:
            page = await self.orders_page(cursor=cursor, **filters)
            for order in page.items:
                if max_items is not None and count >= max_items:
                    return
                count += 1
                yield order
            cursor = page.next_cursor
            if cursor is None:
                return

    async def watch(
        self, order_id: str, *, interval: float = 1.0, patience: float = 300.0
    ) -> AsyncIterator[Order]:
        """The order each time its state, step or progress changes, until it is final. An API
        that cannot be reached (restarting) is waited for up to ``patience`` seconds."""
        last: tuple[Any, ...] | None = None
        unreachable_since: float | None = None
        while True:
            try:
                order = await self.order(order_id)
                unreachable_since = None
            except httpx.TransportError:
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                if now - unreachable_since > patience:
                    raise
                await asyncio.sleep(interval)
                continue
            seen = (order.status, order.progress, order.message, order.attempt)
            if seen != last:
                last = seen
                yield order
            if order.is_final:
                return
            await asyncio.sleep(interval)

    async def wait(self, order_id: str, **options: Any) -> Order:
        """The order once it is final."""
        final: Order | None = None
        async for seen in self.watch(order_id, **options):
            final = seen
        assert final is not None
        return final

    # -- downloads -------------------------------------------------------------------------------

    async def download(
        self,
        order: Order | str,
        directory: str | Path = ".",
        *,
        roles: list[str] | None = None,
        progress: Progress | None = None,
    ) -> list[Path]:
        """Stream the order's outputs (all, or those ``roles``) into ``directory``, each checked
        against its size and sha256; a file that does not match is removed (ChecksumMismatch)."""
        if isinstance(order, str):
            order = await self.order(order)
        if order.status != "SUCCESS":
            raise NotReady(f"order {order.order_id} is {order.status}; nothing to download")
        target = Path(directory)
        await asyncio.to_thread(target.mkdir, parents=True, exist_ok=True)
        paths = []
        for asset in order.assets:
            if roles and asset.role not in roles:
                continue
            paths.append(await self._download_asset(order, asset, target, progress))
        return paths

    async def _download_asset(
        self, order: Order, asset: Asset, target: Path, progress: Progress | None
    ) -> Path:
        redirect = await self.request("GET", asset.href, expect=(301, 302, 303, 307, 308))
        url = urljoin(self.base_url + "/", redirect.headers["location"])
        name = _file_name(order, asset)
        path, partial = target / name, target / f"{name}.part"
        digest, written = hashlib.sha256(), 0
        async with self._plain.stream("GET", url) as response:
            if response.status_code != 200:
                await response.aread()
                raise _error(response)
            with partial.open("wb") as out:
                async for chunk in response.aiter_bytes(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                    if progress is not None:
                        progress(asset, written)
        checksum = f"sha256:{digest.hexdigest()}"
        if written != asset.size or checksum != asset.checksum:
            partial.unlink(missing_ok=True)
            raise ChecksumMismatch(
                f"{asset.role}: got {written} bytes {checksum}, "
                f"expected {asset.size} bytes {asset.checksum}"
            )
        partial.replace(path)
        return path

    # -- catalogue -------------------------------------------------------------------------------

    async def search(
        self,
        *,
        bbox: str | list[float] | None = None,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        collection: str | None = None,
        product_type: str | None = None,
        geometry: str | None = None,
        max_items: int | None = None,
        page_size: int = 50,
    ) -> AsyncIterator[Product]:
        """Products you may see (public ones and your own), newest first, page after page."""
        params: dict[str, Any] = {"format": "json", "maxRecords": page_size}
        if bbox is not None:
            params["bbox"] = bbox if isinstance(bbox, str) else ",".join(map(str, bbox))
        for name, value in (("timeStart", start), ("timeEnd", end)):
            if value is not None:
                params[name] = value.isoformat() if isinstance(value, date) else value
        for name, value in (
            ("collection", collection),
            ("productType", product_type),
            ("geometry", geometry),
        ):
            if value is not None:
                params[name] = value
        authenticated = self._tokens is not None
        index, count = 1, 0
        while True:
            params["startIndex"] = index
            response = await self.request(
                "GET", "/v1/ccsi/search", params=params, auth=authenticated
            )
            page = response.json()
            for feature in page["features"]:
                if max_items is not None and count >= max_items:
                    return
                count += 1
                yield Product.from_feature(feature)
            index += len(page["features"])
            if not page["features"] or index > page["totalResults"]:
                return


def _file_name(order: Order, asset: Asset) -> str:
    """The name of the output in the app's manifest is not known here: role and id make a name
    that does not clash, the extension from the media type."""
    extension = {
        "image/tiff": ".tif",
        "application/json": ".json",
        "application/geo+json": ".geojson",
        "text/csv": ".csv",
        "application/zip": ".zip",
    }.get(asset.media_type.split(";")[0].strip(), "")
    return f"{order.app_id}-{order.order_id[:8]}-{asset.role}{extension}"


class CureClient:
    """The same client, blocking: each call runs the asynchronous one on a private event loop.
    Not for use inside a running event loop (use AsyncCureClient there)."""

    def __init__(self, base_url: str, credentials: Credentials | None = None, **options: Any):
        self._runner = asyncio.Runner()
        self._async = self._runner.run(self._make(base_url, credentials, options))

    @staticmethod
    async def _make(
        base_url: str, credentials: Credentials | None, options: dict[str, Any]
    ) -> AsyncCureClient:
        return AsyncCureClient(base_url, credentials, **options)

    def __enter__(self) -> "CureClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._runner.run(self._async.aclose())
        self._runner.close()

    def _iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        async def following() -> T:
            return await anext(iterator)

        while True:
            try:
                yield self._runner.run(following())
            except StopAsyncIteration:
                return

    @property
    def credentials(self) -> Credentials | None:
        return self._async.credentials

    def login(self) -> Token:
        return self._runner.run(self._async.login())

    def apps(self) -> list[App]:
        return self._runner.run(self._async.apps())

    def submit(
        self,
        app_id: str,
        region: dict[str, Any],
        start_date: date | str,
        end_date: date | str | None = None,
        **options: Any,
    ) -> Order:
        return self._runner.run(self._async.submit(app_id, region, start_date, end_date, **options))

    def order(self, order_id: str) -> Order:
        return self._runner.run(self._async.order(order_id))

    def cancel(self, order_id: str) -> Order:
        return self._runner.run(self._async.cancel(order_id))

    def orders_page(self, **filters: Any) -> OrderPage:
        return self._runner.run(self._async.orders_page(**filters))

    def orders(self, **filters: Any) -> Iterator[Order]:
        return self._iterate(self._async.orders(**filters))

    def watch(self, order_id: str, **options: Any) -> Iterator[Order]:
        return self._iterate(self._async.watch(order_id, **options))

    def wait(self, order_id: str, **options: Any) -> Order:
        return self._runner.run(self._async.wait(order_id, **options))

    def download(
        self, order: Order | str, directory: str | Path = ".", **options: Any
    ) -> list[Path]:
        return self._runner.run(self._async.download(order, directory, **options))

    def search(self, **filters: Any) -> Iterator[Product]:
        return self._iterate(self._async.search(**filters))


__all__ = ["AsyncCureClient", "ClientCredentials", "CureClient", "PasswordLogin"]
