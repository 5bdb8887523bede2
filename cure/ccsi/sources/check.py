"""Checking a catalogue source before (or while) CURE relies on it: can it be reached, what does
it say it can do (a STAC API's conformance classes; an OpenSearch collection's description
document and the formats it offers), and how many items each mapped collection holds over a box
and a period, with the newest one read as CURE would read it (which mapped asset roles it lacks).

``cure ccsi sources check [NAME] --bbox --start --end`` and ``POST /v1/ccsi/sources/{name}/check``
(admins) give the same answer. A check never fails for the source's sake: what went wrong is in
``problems``, and ``ok`` says whether anything did.
"""

import asyncio
from datetime import datetime
from typing import Any

import httpx
from pydantic import Field, field_validator, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from cure.ccsi.exceptions import InvalidParameter
from cure.ccsi.schemas import parse_bbox
from cure.ccsi.sources import repository
from cure.ccsi.sources import service as source_service
from cure.ccsi.sources.exceptions import SecretsUnreadable, SourceNotFound, StoredSourceInvalid
from cure.ccsi.sources.harmonise import harmonise
from cure.ccsi.sources.opensearch import ATOM_TYPE, JSON_TYPES, OpenSearchClient
from cure.ccsi.sources.remote import RemoteQuery, SourceFailure, to_utc_or_none
from cure.ccsi.sources.schemas import CollectionMapping
from cure.ccsi.sources.service import Source
from cure.ccsi.sources.stac import StacClient, conforms, filters, serves_features
from cure.config import Settings, get_settings
from cure.kit.intervals import parse_instant
from cure.kit.schemas import BaseSchema, InputSchema

# Items counted at most per collection when the source gives no count (past it: "at least").
COUNT_CAP = 500
# A check may take longer than a search (several collections, pages to count): this many times
# the source's search deadline, at least MIN_CHECK_SECONDS.
CHECK_DEADLINES = 4
MIN_CHECK_SECONDS = 30.0


class CheckRequest(InputSchema):
    """Where and when to count the items of each mapped collection."""

    bbox: tuple[float, float, float, float] | None = Field(
        default=None, description="min_lon, min_lat, max_lon, max_lat (WGS84); the world if absent"
    )
    start: datetime | None = Field(default=None, description="The period's start (naive: UTC)")
    end: datetime | None = Field(default=None, description="The period's end (naive: UTC)")

    @field_validator("bbox")
    @classmethod
    def _bbox(
        cls, value: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        return None if value is None else parse_bbox(",".join(repr(float(v)) for v in value))

    @model_validator(mode="after")
    def _period(self) -> "CheckRequest":
        self.start, self.end = to_utc_or_none(self.start), to_utc_or_none(self.end)
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class CollectionCheck(BaseSchema):
    collection: str = Field(description="CURE's collection")
    remote: str = Field(description="The source's collection")
    product_type: str
    count: int | None = Field(description="Items over the box and period; None: not known")
    at_least: bool = Field(default=False, description="More than count match (not counted on)")
    newest: str | None = Field(default=None, description="The newest item's id")
    newest_cloud_cover: float | None = None
    roles_missing: list[str] = Field(
        default_factory=list, description="Mapped asset roles the newest item does not have"
    )
    problem: str | None = None


class SourceCheck(BaseSchema):
    name: str
    kind: str
    url: str
    reachable: bool
    conformance: list[str] = Field(
        default_factory=list,
        description="STAC: the conformance classes; OpenSearch: the formats each mapped "
        "collection's description document offers",
    )
    capabilities: dict[str, bool] = Field(
        default_factory=dict,
        description="What CURE will use: STAC item-search, filter (CQL2), query, sort, "
        "features; OpenSearch json, atom",
    )
    collections: list[CollectionCheck] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    ok: bool


async def check(
    source: Source,
    *,
    http: httpx.AsyncClient,
    bbox: tuple[float, float, float, float] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> SourceCheck:
    """The source's check (see the module), within CHECK_DEADLINES of its search deadline."""
    document = source.document
    seconds = max(MIN_CHECK_SECONDS, document.timeout_seconds * CHECK_DEADLINES)
    found: dict[str, Any] = {
        "name": document.name,
        "kind": document.kind,
        "url": str(document.url),
        "reachable": False,
    }
    problems: list[str] = []
    try:
        async with asyncio.timeout(seconds):
            if document.kind == "stac":
                await _check_stac(source, http, found, problems, bbox, start, end)
            else:
                await _check_opensearch(source, http, found, problems, bbox, start, end)
    except TimeoutError:
        problems.append(f"the check did not end within {seconds:g} s")
    except SourceFailure as exc:
        problems.append(exc.reason)
    collections: list[CollectionCheck] = found.pop("collections", [])
    problems += [f"{c.collection}: {c.problem}" for c in collections if c.problem]
    return SourceCheck(**found, collections=collections, problems=problems, ok=not problems)


async def _check_stac(
    source: Source,
    http: httpx.AsyncClient,
    found: dict[str, Any],
    problems: list[str],
    bbox: tuple[float, float, float, float] | None,
    start: datetime | None,
    end: datetime | None,
) -> None:
    document = source.document
    client = StacClient(
        str(document.url), http=http, auth=source.auth, timeout=document.timeout_seconds
    )
    classes = await client.conformance()
    found["reachable"] = True
    found["conformance"] = sorted(classes)
    capabilities = {
        "item_search": conforms(classes, "item-search"),
        "filter": filters(classes),  # the rules the client searches by, not a copy of them
        "query": conforms(classes, "item-search#query"),
        "sort": conforms(classes, "item-search#sort"),
        "features": serves_features(classes),
    }
    found["capabilities"] = capabilities
    if not (capabilities["item_search"] or capabilities["features"]):
        problems.append("it conforms neither to STAC item search nor to OGC API - Features")
        return
    found["collections"] = [
        await _count(source, client, name, mapping, bbox, start, end)
        for name, mapping in document.collections.items()
    ]


async def _check_opensearch(
    source: Source,
    http: httpx.AsyncClient,
    found: dict[str, Any],
    problems: list[str],
    bbox: tuple[float, float, float, float] | None,
    start: datetime | None,
    end: datetime | None,
) -> None:
    document = source.document
    client = OpenSearchClient(
        str(document.url), http=http, auth=source.auth, timeout=document.timeout_seconds
    )
    offered: set[str] = set()
    checks = []
    for name, mapping in document.collections.items():
        try:
            root = await client.description(mapping.remote)
        except SourceFailure as exc:
            if exc.status_code is None:
                raise  # not reached at all
            found["reachable"] = True
            problems.append(f"{name}: no description document ({exc.reason})")
        else:
            found["reachable"] = True
            for url in root:
                media_type = (url.get("type") or "").split(";")[0].strip().lower()
                if url.tag.endswith("Url") and media_type in (*JSON_TYPES, ATOM_TYPE):
                    offered.add(f"{mapping.remote}: {media_type}")
        checks.append(await _count(source, client, name, mapping, bbox, start, end))
    found["conformance"] = sorted(offered)
    found["capabilities"] = {
        "json": any(o.endswith(JSON_TYPES) for o in offered),
        "atom": any(o.endswith(ATOM_TYPE) for o in offered),
    }
    found["collections"] = checks


async def _count(
    source: Source,
    client: StacClient | OpenSearchClient,
    name: str,
    mapping: CollectionMapping,
    bbox: tuple[float, float, float, float] | None,
    start: datetime | None,
    end: datetime | None,
) -> CollectionCheck:
    query = RemoteQuery(
        collection=mapping.remote,
        bbox=bbox,
        start=start,
        end=end,
        limit=COUNT_CAP,
        cloud_property=mapping.cloud_cover_property,
        product_type=(mapping.remote_product_type or mapping.product_type)
        if source.document.kind == "opensearch"
        else None,
    )
    base: dict[str, Any] = {
        "collection": name,
        "remote": mapping.remote,
        "product_type": mapping.product_type,
    }
    try:
        result = await client.search(query)
    except SourceFailure as exc:
        return CollectionCheck(**base, count=None, problem=exc.reason)
    count = result.matched if result.matched is not None else len(result.items)
    at_least = result.matched is None and result.more
    if not result.items:
        return CollectionCheck(**base, count=count, at_least=at_least)
    newest = result.items[0]
    remote_collection = None
    if isinstance(client, StacClient):
        remote_collection = await client.collection(mapping.remote)
    product = harmonise(
        newest,
        source=source.name,
        collection=name,
        mapping=mapping,
        remote_collection=remote_collection,
    )
    if product is None:
        return CollectionCheck(
            **base,
            count=count,
            at_least=at_least,
            newest=str(newest.get("id"))[:255],
            problem="its newest item has no footprint or time CURE can read",
        )
    missing = sorted(set(mapping.assets) - set(product.assets))
    return CollectionCheck(
        **base,
        count=count,
        at_least=at_least,
        newest=product.identifier,
        newest_cloud_cover=product.cloud_cover,
        roles_missing=missing,
        problem=f"its newest item lacks the asset roles {', '.join(missing)}" if missing else None,
    )


def summary(result: SourceCheck) -> str:
    """A check as a person reads it (the CLI's output)."""
    state = "ok" if result.ok else "PROBLEMS"
    reach = "reachable" if result.reachable else "NOT reachable"
    can = ", ".join(name for name, able in result.capabilities.items() if able) or "nothing known"
    lines = [f"{result.name} ({result.kind}, {result.url}): {state}; {reach}; uses {can}"]
    for found in result.collections:
        count = (
            "?" if found.count is None else f"{'at least ' if found.at_least else ''}{found.count}"
        )
        newest = f", newest {found.newest}" if found.newest else ""
        if found.newest_cloud_cover is not None:
            newest += f" ({found.newest_cloud_cover:g}% cloud)"
        lines.append(f"  {found.collection} <- {found.remote}: {count} items{newest}")
    lines += [f"  problem: {problem}" for problem in result.problems]
    return "\n".join(lines)


# -- loading and running (the API's endpoint and the CLI) ----------------------------------------


async def load(
    session: AsyncSession, settings: Settings, name: str | None
) -> tuple[list[Source], dict[str, str]]:
    """The source ``name`` (enabled or not: a check comes before enabling), or every source,
    with its credentials; and the sources that cannot be loaded here, with why (their secrets do
    not decrypt, their stored document is no longer valid). SourceNotFound for an unknown name."""
    if name is not None:
        row = await repository.get(session, name)
        if row is None:
            raise SourceNotFound(f"no source named {name}")
        rows = [row]
    else:
        rows = list(await repository.all_sources(session))
    sources, problems = [], {}
    for row in rows:
        try:
            sources.append(source_service._source(settings, row))
        except (SecretsUnreadable, StoredSourceInvalid) as exc:
            if name is not None:
                raise
            problems[row.name] = exc.message
    return sources, problems


async def check_all(sources: list[Source], request: CheckRequest) -> list[SourceCheck]:
    async with httpx.AsyncClient(follow_redirects=True, max_redirects=3) as http:
        return list(
            await asyncio.gather(
                *(
                    check(s, http=http, bbox=request.bbox, start=request.start, end=request.end)
                    for s in sources
                )
            )
        )


def where_and_when(bbox: str | None, start: str | None, end: str | None) -> CheckRequest:
    """The CLI's --bbox, --start and --end, checked; ValueError saying which is wrong."""
    try:
        box = parse_bbox(bbox) if bbox else None
    except InvalidParameter as exc:
        raise ValueError(f"--bbox {exc.reason}") from None
    moments = {}
    for option, text, is_end in (("start", start, False), ("end", end, True)):
        try:
            moments[option] = parse_instant(text, end=is_end) if text else None
        except ValueError as exc:
            raise ValueError(f"--{option}: {exc}") from None
    return CheckRequest(bbox=box, **moments)


def run_checks(name: str | None, request: CheckRequest) -> list[SourceCheck]:
    """Load and check (the CLI: its own event loop and database connection)."""
    from cure.kit.resources import open_resources

    settings = get_settings()

    async def run() -> list[SourceCheck]:
        async with open_resources(settings) as resources:
            async with resources.sessionmaker() as session:
                sources, problems = await load(session, settings, name)
        unloadable = [
            SourceCheck(name=n, kind="?", url="?", reachable=False, problems=[p], ok=False)
            for n, p in problems.items()
        ]
        return [*await check_all(sources, request), *unloadable]

    try:
        return asyncio.run(run())
    except (SourceNotFound, SecretsUnreadable, StoredSourceInvalid) as exc:
        raise SystemExit(f"cure ccsi sources check: {exc.message}") from None
