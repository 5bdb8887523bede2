"""A client of CCSI-style OpenSearch catalogues: CURE's own, or any server that speaks the same
parameters (set ``ccsi_url`` to use another one)."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

DEFAULT_TIMEOUT = 30.0
MAX_PAGE_SIZE = 500
_UNAVAILABLE = {429, 502, 503, 504}  # 429: a limit that lifts soon, as an outage does


class CcsiError(Exception):
    """The catalogue refused a search, or answered something that is not a result page."""

    def __init__(self, message: str, *, status_code: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail


class CcsiUnavailable(CcsiError):
    """The catalogue could not be reached or is down for now: trying again later may work."""


Product = dict[str, Any]  # a GeoJSON Feature as the catalogue gave it


class CcsiClient:
    """Searches a CCSI catalogue and pages through every result.

    ``base_url`` is the catalogue's root (e.g. "http://127.0.0.1:8000/v1/ccsi"). Pass ``http`` to
    use a client of your own (e.g. one over an ASGI transport); it is then not closed here.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        http: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Accept": "application/geo+json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout

    async def __aenter__(self) -> "CcsiClient":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def search(
        self,
        *,
        collection: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        geometry: str | BaseGeometry | dict[str, Any] | None = None,
        start: date | datetime | None = None,
        end: date | datetime | None = None,
        product_type: str | None = None,
        page_size: int = 50,
    ) -> AsyncIterator[Product]:
        """Every product matching the filters, page after page (newest acquisition first).

        ``geometry`` is WKT, a shapely geometry or a GeoJSON geometry; naive datetimes are UTC; a
        date as ``end`` means the end of that day.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be from 1 to {MAX_PAGE_SIZE}")
        url = f"{self.base_url}/{quote(collection, safe='')}/search" if collection else None
        url = url or f"{self.base_url}/search"
        params = _params(bbox, geometry, start, end, product_type)
        params.update(format="json", maxRecords=str(page_size))
        index = 1
        seen: set[Any] = set()  # offset paging may repeat a product when others are added
        while True:
            page = await self._get(url, {**params, "startIndex": str(index)})
            _check_sources(page, url)
            features = page.get("features")
            if not isinstance(features, list):
                raise CcsiError(f"the catalogue at {url} answered without a features list")
            for feature in features:
                key = feature.get("id") if isinstance(feature, dict) else None
                if key is not None and key in seen:
                    continue
                seen.add(key)
                yield feature
            index += len(features)
            total = page.get("totalResults")
            if not features or (isinstance(total, int) and index > total):
                return
            if not isinstance(total, int) and not _has_next(page):
                return

    async def _get(self, url: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._http.get(
                url, params=params, headers=self._headers, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            raise CcsiUnavailable(f"the catalogue at {url} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise CcsiUnavailable(f"the catalogue at {url} cannot be reached: {exc}") from exc
        if not response.is_success:
            detail = _detail(response)
            kind = CcsiUnavailable if response.status_code in _UNAVAILABLE else CcsiError
            raise kind(
                f"the catalogue at {url} answered {response.status_code}: {detail}",
                status_code=response.status_code,
                detail=detail,
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise CcsiError(f"the catalogue at {url} answered something that is not JSON") from exc
        if not isinstance(body, dict):
            raise CcsiError(f"the catalogue at {url} answered something that is not a page")
        return body


def _check_sources(page: dict[str, Any], url: str) -> None:
    """A page that names sources that gave no answer lacks what they hold: the search is not
    complete, as if the catalogue were down for now (the products sought may be theirs)."""
    missing = page.get("sourcesMissing")
    if isinstance(missing, list) and missing:
        names = ", ".join(str(name)[:64] for name in missing[:5])
        raise CcsiUnavailable(f"the catalogue at {url} could not ask its sources {names}")


def _params(
    bbox: tuple[float, float, float, float] | None,
    geometry: str | BaseGeometry | dict[str, Any] | None,
    start: date | datetime | None,
    end: date | datetime | None,
    product_type: str | None,
) -> dict[str, str]:
    params: dict[str, str] = {}
    if bbox is not None:
        params["bbox"] = ",".join(repr(float(n)) for n in bbox)
    if isinstance(geometry, str):
        params["geometry"] = geometry
    elif geometry is not None:
        shaped = shape(geometry) if isinstance(geometry, dict) else geometry
        params["geometry"] = str(shapely.to_wkt(shaped, rounding_precision=-1, output_dimension=2))
    if start is not None:
        params["timeStart"] = _time(start)
    if end is not None:
        params["timeEnd"] = _time(end)
    if product_type is not None:
        params["productType"] = product_type
    return params


def _time(value: date | datetime) -> str:
    if not isinstance(value, datetime):
        return value.isoformat()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _has_next(page: dict[str, Any]) -> bool:
    links = page.get("links")
    return isinstance(links, list) and any(
        isinstance(link, dict) and link.get("rel") == "next" for link in links
    )


def _detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict) and "detail" in body:
        return body["detail"]
    return body
