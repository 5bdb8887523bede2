"""What the clients of remote catalogues share: the query CURE asks a source, the answer it gets,
how a call is sent (authenticated, bounded, its failures classified) and which links may be
followed.

A source's answer is never trusted: a body that is not what the protocol promises, a status that
says "later" (429, 5xx), a refused connection or a deadline passed are each a ``SourceFailure``,
which the federated search turns into "this source is missing", never into an error of its own.
"""

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from cure.ccsi.sources.auth import SourceAuth, SourceAuthError

# The largest answer read from a source (a page of items); a bigger one is garbage.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# The most pages one search follows, whatever the source's next links say.
MAX_PAGES = 100
# A search for given ids (an item asked by id) reads at most this many pages: a server that
# cannot filter by id is not read through to its oldest item for it (that would miss the
# deadline, and the source would then rest for everyone).
ID_PAGES = 3
# The largest page asked of a source: servers cap their pages anyway.
PAGE_SIZE = 100
# Statuses that mean "not now": the source is missing from the answer, not broken.
_BUSY = {408, 425, 429, 500, 502, 503, 504}


class SourceFailure(Exception):
    """A source gave no usable answer. ``reason`` is safe to log and to show an admin: it never
    holds a secret (no headers, no query values that might carry one)."""

    def __init__(self, reason: str, *, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


@dataclass(frozen=True)
class RemoteQuery:
    """One search of one remote collection, normalised (it keys the cache of answers).

    ``cloud_cover`` is an inclusive (min, max) range in percent; ``keep_unknown_cloud`` keeps items
    whose cloud cover is not known (the availability check) instead of dropping them (a search's
    filter, as CQL2 compares). ``ascending``: oldest acquisition first (nearest date after).
    """

    collection: str
    bbox: tuple[float, float, float, float] | None = None
    intersects: str | None = None  # GeoJSON text, keys sorted
    start: datetime | None = None
    end: datetime | None = None
    limit: int = 10
    cloud_cover: tuple[float, float] | None = None
    cloud_property: str | None = "eo:cloud_cover"
    keep_unknown_cloud: bool = False
    product_type: str | None = None
    ids: tuple[str, ...] = ()
    ascending: bool = False

    def geometry(self) -> dict[str, Any] | None:
        return json.loads(self.intersects) if self.intersects is not None else None

    def datetime_interval(self) -> str | None:
        if self.start is None and self.end is None:
            return None
        return f"{iso(self.start) if self.start else '..'}/{iso(self.end) if self.end else '..'}"


@dataclass
class RemoteResult:
    """Items as the source gave them (STAC item dicts; OpenSearch entries are turned into that
    shape), at most the query's limit, newest first (oldest with ``ascending``); whether the
    source holds more; and how many match, when it says. ``collection`` is the remote
    collection document when one was read (its ``item_assets``)."""

    items: list[dict[str, Any]]
    more: bool
    matched: int | None = None
    collection: dict[str, Any] | None = None
    size: int = field(default=0, compare=False)  # bytes of the answers it came from


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_utc_or_none(moment: datetime | None) -> datetime | None:
    """A moment in UTC (naive is UTC already); None stays None."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time from a remote document (naive is UTC), or None when it is not one."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


def number(value: Any) -> float | None:
    """A finite number from a remote document, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        result = float(value)
    except (ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def cloud_of(item: dict[str, Any], prop: str | None) -> float | None:
    if prop is None:
        return None
    properties = item.get("properties")
    if not isinstance(properties, dict):
        return None
    found = number(properties.get(prop))
    return found if found is not None and 0 <= found <= 100 else None


def passes_cloud(item: dict[str, Any], query: RemoteQuery) -> bool:
    """The query's cloud filter, applied on this side (sources that cannot filter, and a check of
    those that say they did)."""
    if query.cloud_cover is None:
        return True
    found = cloud_of(item, query.cloud_property)
    if found is None:
        return query.keep_unknown_cloud
    low, high = query.cloud_cover
    return low <= found <= high


def same_origin(url: str, base: str) -> bool:
    """Whether ``url`` is on the source's own scheme, host and port: links elsewhere are never
    followed (they would get the source's credentials)."""
    try:
        one, two = urlsplit(url), urlsplit(base)
        return (one.scheme.lower(), one.hostname, one.port) == (
            two.scheme.lower(),
            two.hostname,
            two.port,
        ) and one.scheme.lower() in ("http", "https")
    except ValueError:
        return False


def where(url: str) -> str:
    """A URL as a failure names it: scheme, host and path, never the query (it may carry a key)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "the source"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


@dataclass(frozen=True)
class Answer:
    """A source's answer, read whole and decoded."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    auth: SourceAuth | None,
    params: dict[str, str] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    accept: str = "application/geo+json, application/json;q=0.9",
    call_seconds: float = 10,
) -> Answer:
    """One call to a source, authenticated; a 401 refreshes the credentials once and tries again.
    The body is read whole (at most MAX_RESPONSE_BYTES once decoded). Failures are SourceFailure."""
    for attempt in (1, 2):
        sent = {"Accept": accept, **(headers or {})}
        if auth is not None:
            try:
                sent.update(await auth.headers(refresh=attempt == 2))
            except SourceAuthError as exc:
                raise SourceFailure(f"no credentials: {exc.reason}") from None
        answer = await _exchange(
            http, method, url, params=params, body=body, headers=sent, call_seconds=call_seconds
        )
        if answer.status_code == 401 and auth is not None and attempt == 1:
            continue  # the second round's headers are fetched anew (a 401 refreshes once)
        break
    if answer.status_code in _BUSY:
        raise SourceFailure(
            f"{where(url)} answered {answer.status_code}", status_code=answer.status_code
        )
    if not 200 <= answer.status_code < 300:
        raise SourceFailure(
            f"{where(url)} refused the call ({answer.status_code})",
            status_code=answer.status_code,
        )
    return answer


async def _exchange(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    params: dict[str, str] | None,
    body: Any,
    headers: dict[str, str],
    call_seconds: float,
) -> Answer:
    try:
        request = http.build_request(
            method, url, params=params, json=body, headers=headers, timeout=call_seconds
        )
    except (httpx.InvalidURL, ValueError):
        raise SourceFailure(f"{where(url)} is not a URL that can be called") from None
    try:
        response = await http.send(request, stream=True)
    except httpx.TimeoutException:
        raise SourceFailure(f"{where(url)} did not answer in time") from None
    except (httpx.TransportError, httpx.TooManyRedirects) as exc:
        raise SourceFailure(f"{where(url)} cannot be reached ({type(exc).__name__})") from None
    try:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():  # decoded: the bound holds for what is kept
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise SourceFailure(f"{where(url)} answered more than {MAX_RESPONSE_BYTES} bytes")
            chunks.append(chunk)
    except httpx.TimeoutException:
        raise SourceFailure(f"{where(url)} did not answer in time") from None
    except (httpx.TransportError, httpx.DecodingError) as exc:
        raise SourceFailure(f"{where(url)} broke off its answer ({type(exc).__name__})") from None
    finally:
        await response.aclose()
    return Answer(response.status_code, response.headers, b"".join(chunks), str(response.url))


def json_body(answer: Answer) -> dict[str, Any]:
    """The answer as a JSON object, or SourceFailure."""
    try:
        body = json.loads(answer.content)
    except (ValueError, RecursionError):
        raise SourceFailure(f"{where(answer.url)} answered something that is not JSON") from None
    if not isinstance(body, dict):
        raise SourceFailure(f"{where(answer.url)} answered JSON that is not an object")
    return body


def pages_for(query: "RemoteQuery") -> int:
    """The most pages one search reads: fewer for a search by ids."""
    return ID_PAGES if query.ids else MAX_PAGES


def all_found(items: list[dict[str, Any]], query: "RemoteQuery") -> bool:
    """A search by ids has every id it asked for (no need to read on)."""
    return bool(query.ids) and set(query.ids) <= {item.get("id") for item in items}
