"""A client of OpenSearch catalogues in the style of resto, the Copernicus Data Space Ecosystem's:
``{url}/{collection}/search.json?box=&startDate=&completionDate=&maxRecords=&page=&cloudCover=
[min,max]&productType=&sortParam=startDate&sortOrder=descending``, answered as a GeoJSON
FeatureCollection (``properties.totalResults``, ``properties.links`` with ``next``) or as an Atom
feed (``os:totalResults``, ``link rel="next"``, entries with GeoRSS footprints).

Which format to ask for is read from the collection's description document
(``{url}/{collection}/describe.xml``, once): JSON when it offers it, else Atom; an answer is read
as the format it turns out to be. Entries become STAC-shaped items (id, geometry, properties with
``start_datetime``, ``end_datetime``, ``eo:cloud_cover``, and the download as the asset
``download``) for ``harmonise``.

XML is parsed with the standard library's expat parser after refusing any document type
declaration: no entity is ever expanded, none fetched.
"""

import asyncio
import re
import xml.etree.ElementTree as ET  # noqa: S405 (documents with a DTD are refused before parsing)
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import httpx
from shapely.geometry import shape

from cure.ccsi.sources.auth import SourceAuth
from cure.ccsi.sources.remote import (
    PAGE_SIZE,
    Answer,
    RemoteQuery,
    RemoteResult,
    SourceFailure,
    all_found,
    iso,
    json_body,
    number,
    pages_for,
    passes_cloud,
    same_origin,
    send,
    where,
)

JSON_TYPES = ("application/json", "application/geo+json")
ATOM_TYPE = "application/atom+xml"
DESCRIPTION_TYPE = "application/opensearchdescription+xml"
ATOM = "http://www.w3.org/2005/Atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
GEORSS = "http://www.georss.org/georss"
GML = "http://www.opengis.net/gml"
DC = "http://purl.org/dc/elements/1.1/"
MEDIA = "http://search.yahoo.com/mrss/"
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_CONTAINER = re.compile(r"\.(SAFE|SEN3)$", re.IGNORECASE)


class OpenSearchClient:
    """Searches one OpenSearch catalogue; remembers each collection's search URL and format."""

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
        self._endpoints: dict[str, tuple[str, str]] = {}
        self._lock = asyncio.Lock()

    async def description(self, collection: str) -> ET.Element:
        """The collection's OpenSearch description document."""
        answer = await send(
            self._http,
            "GET",
            f"{self.url}/{quote(collection, safe='')}/describe.xml",
            auth=self._auth,
            accept=f"{DESCRIPTION_TYPE}, application/xml;q=0.9",
            call_seconds=self._timeout,
        )
        root = parse_xml(answer)
        if _local(root.tag) != "OpenSearchDescription":
            raise SourceFailure(f"{where(answer.url)} is not an OpenSearch description document")
        return root

    async def endpoint(self, collection: str) -> tuple[str, str]:
        """(search URL, "json" or "atom") of a collection: from its description document's URL
        templates, JSON preferred; ``{url}/{collection}/search.json`` when it has none."""
        async with self._lock:
            if collection not in self._endpoints:
                fallback = (f"{self.url}/{quote(collection, safe='')}/search.json", "json")
                try:
                    root = await self.description(collection)
                except SourceFailure as exc:
                    if exc.status_code not in (404, 405, 406, 410, 501):
                        raise
                    self._endpoints[collection] = fallback
                else:
                    self._endpoints[collection] = _template(root, base=self.url) or fallback
            return self._endpoints[collection]

    async def search(self, query: RemoteQuery) -> RemoteResult:
        """The first ``query.limit`` matching entries as STAC-shaped items (newest first, or
        oldest with ascending), whether more match, and how many when the server says."""
        url, chosen = await self.endpoint(query.collection)
        params: dict[str, str] | None = self._params(query, chosen)
        items: list[dict[str, Any]] = []
        matched: int | None = None
        more = True
        size = 0
        page_number = 1
        for _ in range(pages_for(query)):
            answer = await send(
                self._http,
                "GET",
                url,
                auth=self._auth,
                params=params,
                accept=ATOM_TYPE if chosen == "atom" else "application/geo+json, application/json",
                call_seconds=self._timeout,
            )
            size += len(answer.content)
            entries, total, following = read_page(answer)
            if matched is None:
                matched = total
            kept = [
                item
                for item in entries
                if passes_cloud(item, query) and (not query.ids or item["id"] in query.ids)
            ]
            items.extend(kept)
            if len(items) > query.limit:
                break
            if all_found(items, query):
                more = False
                break
            if not entries or (following is None and len(entries) < _page_size(query)):
                more = False
                break
            page_number += 1
            if following is not None and same_origin(following, self.url):
                url, params = following, None
            elif following is None and params is not None:
                params = {**params, "page": str(page_number)}
            else:
                more = False  # a next link elsewhere: not followed
                break
        return RemoteResult(items=items[: query.limit], more=more, matched=matched, size=size)

    async def count(self, query: RemoteQuery) -> int | None:
        return (await self.search(replace(query, limit=1))).matched

    def _params(self, query: RemoteQuery, chosen: str) -> dict[str, str]:
        params = {
            "maxRecords": str(_page_size(query)),
            "page": "1",
            "sortParam": "startDate",
            "sortOrder": "ascending" if query.ascending else "descending",
        }
        geometry = query.geometry()
        if geometry is not None:
            params["geometry"] = shape(geometry).wkt
        elif query.bbox is not None:
            params["box"] = ",".join(repr(v) for v in query.bbox)
        if query.start is not None:
            params["startDate"] = iso(query.start)
        if query.end is not None:
            params["completionDate"] = iso(query.end)
        if query.product_type is not None:
            params["productType"] = query.product_type
        if query.cloud_cover is not None and not query.keep_unknown_cloud:
            low, high = query.cloud_cover
            params["cloudCover"] = f"[{low:g},{high:g}]"
        if chosen == "atom":
            params["format"] = "atom"  # resto also reads the format from the path's extension
        return params


def _page_size(query: RemoteQuery) -> int:
    return min(query.limit + 1, PAGE_SIZE)


def _template(root: ET.Element, *, base: str) -> tuple[str, str] | None:
    found: dict[str, str] = {}
    for url in root:
        if _local(url.tag) != "Url" or url.get("rel", "results") != "results":
            continue
        media_type = (url.get("type") or "").split(";")[0].strip().lower()
        template = url.get("template") or ""
        target = template.split("?", 1)[0]
        if not target or "{" in target or not same_origin(target, base):
            continue
        if media_type in JSON_TYPES:
            found.setdefault("json", target)
        elif media_type == ATOM_TYPE:
            found.setdefault("atom", target)
    for chosen in ("json", "atom"):
        if chosen in found:
            return found[chosen], chosen
    return None


def parse_xml(answer: Answer) -> ET.Element:
    """An XML answer parsed safely: a document type declaration (the door to entity expansion)
    is refused before any parser reads it."""
    if _DTD.search(answer.content):
        raise SourceFailure(f"{where(answer.url)} answered XML with a document type declaration")
    try:
        return ET.fromstring(answer.content)  # noqa: S314 (no DTD, so no entities)
    except (ET.ParseError, RecursionError, ValueError):
        raise SourceFailure(f"{where(answer.url)} answered XML that does not parse") from None


def read_page(answer: Answer) -> tuple[list[dict[str, Any]], int | None, str | None]:
    """(items, totalResults, next link) of a search answer, JSON or Atom as it turns out to be."""
    head = answer.content.lstrip()[:1]
    if head == b"<" or answer.media_type in (ATOM_TYPE, "application/xml", "text/xml"):
        return _atom_page(answer)
    return _json_page(answer)


# -- GeoJSON ---------------------------------------------------------------------------------------


def _json_page(answer: Answer) -> tuple[list[dict[str, Any]], int | None, str | None]:
    page = json_body(answer)
    features = page.get("features")
    if page.get("type") != "FeatureCollection" or not isinstance(features, list):
        raise SourceFailure(f"{where(answer.url)} answered something that is not a result page")
    found = page.get("properties")
    meta: dict[str, Any] = found if isinstance(found, dict) else {}
    total = meta.get("totalResults", page.get("totalResults"))
    links = meta.get("links") or page.get("links") or []
    following = next(
        (
            link["href"]
            for link in links
            if isinstance(link, dict)
            and link.get("rel") == "next"
            and isinstance(link.get("href"), str)
        ),
        None,
    )
    items = [item for item in (_from_feature(f) for f in features) if item is not None]
    return items, _count(total), following


def _from_feature(feature: Any) -> dict[str, Any] | None:
    if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
        return None
    source: dict[str, Any] = feature["properties"]
    properties = {
        k: v for k, v in source.items() if k not in ("services", "links", "license", "keywords")
    }
    if feature.get("id") is not None:
        properties["opensearch:id"] = str(feature["id"])
    identifier = _identifier(source.get("title"), feature.get("id"))
    if identifier is None:
        return None
    _times(properties, source.get("startDate"), source.get("completionDate"))
    _cloud(properties, source.get("cloudCover"))
    if isinstance(source.get("published"), str):
        properties["created"] = source["published"]
    assets: dict[str, Any] = {}
    services = source.get("services")
    download = services.get("download") if isinstance(services, dict) else None
    if isinstance(download, dict) and isinstance(download.get("url"), str):
        assets["download"] = {
            "href": download["url"],
            "type": download.get("mimeType") or "application/octet-stream",
            "roles": ["data"],
            **({"file:size": download["size"]} if isinstance(download.get("size"), int) else {}),
        }
    for key in ("quicklook", "thumbnail"):
        if isinstance(source.get(key), str) and source[key]:
            assets[key] = {"href": source[key], "type": "image/jpeg", "roles": [key]}
    return {
        "type": "Feature",
        "id": identifier,
        "geometry": feature.get("geometry"),
        "properties": properties,
        "assets": assets,
    }


# -- Atom ------------------------------------------------------------------------------------------


def _atom_page(answer: Answer) -> tuple[list[dict[str, Any]], int | None, str | None]:
    root = parse_xml(answer)
    if root.tag != f"{{{ATOM}}}feed":
        raise SourceFailure(f"{where(answer.url)} answered XML that is not an Atom feed")
    total = root.findtext(f"{{{OPENSEARCH}}}totalResults")
    following = None
    for link in root.findall(f"{{{ATOM}}}link"):
        if link.get("rel") == "next" and link.get("href"):
            following = link.get("href")
    items = [item for item in (_from_entry(e) for e in root.findall(f"{{{ATOM}}}entry")) if item]
    return items, _count(total.strip() if total else None), following


def _from_entry(entry: ET.Element) -> dict[str, Any] | None:
    title = entry.findtext(f"{{{ATOM}}}title")
    identifier = _identifier(title, entry.findtext(f"{{{DC}}}identifier"))
    if identifier is None:
        return None
    properties: dict[str, Any] = {"title": title} if title else {}
    begin = entry.findtext(f".//{{{GML}}}beginPosition")
    finish = entry.findtext(f".//{{{GML}}}endPosition")
    if not begin:
        span = (entry.findtext(f"{{{DC}}}date") or "").split("/")
        begin, finish = span[0], span[-1]
    _times(properties, begin, finish)
    for element in entry.iter():
        name = _local(element.tag)
        if name == "cloudCover" and element.text:
            _cloud(properties, element.text.strip())
        elif name == "productType" and element.text:
            properties["productType"] = element.text.strip()
    for kind, key in (("updated", "updated"), ("published", "created")):
        text = entry.findtext(f"{{{ATOM}}}{kind}")
        if text:
            properties[key] = text.strip()
    assets: dict[str, Any] = {}
    for link in entry.findall(f"{{{ATOM}}}link"):
        if link.get("rel") in ("enclosure", "download") and link.get("href"):
            length = link.get("length")
            assets.setdefault(
                "download",
                {
                    "href": link.get("href"),
                    "type": link.get("type") or "application/octet-stream",
                    "roles": ["data"],
                    **({"file:size": int(length)} if length and length.isdigit() else {}),
                },
            )
    for content in entry.iter(f"{{{MEDIA}}}content"):
        category = (content.findtext(f"{{{MEDIA}}}category") or "").strip().lower()
        if content.get("url") and category in ("thumbnail", "quicklook"):
            assets.setdefault(
                category, {"href": content.get("url"), "type": "image/jpeg", "roles": [category]}
            )
    return {
        "type": "Feature",
        "id": identifier,
        "geometry": _georss(entry),
        "properties": properties,
        "assets": assets,
    }


def _georss(entry: ET.Element) -> dict[str, Any] | None:
    """A footprint from GeoRSS (simple polygon, or GML in georss:where), latitude first."""
    simple = entry.findtext(f"{{{GEORSS}}}polygon")
    if simple:
        ring = _ring(simple)
        return {"type": "Polygon", "coordinates": [ring]} if ring else None
    where_element = entry.find(f"{{{GEORSS}}}where")
    if where_element is None:
        return None
    polygons = []
    for polygon in where_element.iter(f"{{{GML}}}Polygon"):
        rings = [_ring(pos.text or "") for pos in polygon.iter(f"{{{GML}}}posList")]
        if rings and all(rings):
            polygons.append(rings)
    if len(polygons) == 1:
        return {"type": "Polygon", "coordinates": polygons[0]}
    if polygons:
        return {"type": "MultiPolygon", "coordinates": polygons}
    lower = where_element.findtext(f".//{{{GML}}}lowerCorner")
    upper = where_element.findtext(f".//{{{GML}}}upperCorner")
    if lower and upper:
        corners = _ring(f"{lower} {upper}", closed=False)
        if corners and len(corners) == 2:
            (west, south), (east, north) = corners
            return {
                "type": "Polygon",
                "coordinates": [
                    [[west, south], [east, south], [east, north], [west, north], [west, south]]
                ],
            }
    return None


def _ring(text: str, *, closed: bool = True) -> list[list[float]] | None:
    values = [number(v) for v in text.replace(",", " ").split()]
    if len(values) % 2 or any(v is None for v in values):
        return None
    pairs = [[float(values[i + 1] or 0), float(values[i] or 0)] for i in range(0, len(values), 2)]
    if closed and (len(pairs) < 4 or pairs[0] != pairs[-1]):
        return None
    return pairs


# -- shared ---------------------------------------------------------------------------------------


def _identifier(title: Any, fallback: Any) -> str | None:
    """The product's name (its title without a .SAFE or .SEN3 suffix), else the entry's id."""
    for candidate in (title, fallback):
        if isinstance(candidate, str) and candidate.strip():
            name = _CONTAINER.sub("", candidate.strip())
            if 0 < len(name) <= 255 and not any(ord(c) < 32 for c in name):
                return name
    return None


def _times(properties: dict[str, Any], start: Any, end: Any) -> None:
    if isinstance(start, str) and start:
        properties["start_datetime"] = start.strip()
        properties["end_datetime"] = (end if isinstance(end, str) and end else start).strip()
        properties["datetime"] = (
            properties["start_datetime"]
            if properties["start_datetime"] == properties["end_datetime"]
            else None
        )


def _cloud(properties: dict[str, Any], value: Any) -> None:
    # resto writes -1 (and sometimes 0) where the cover was never estimated: -1 is unknown.
    found = number(value)
    if found is not None and 0 <= found <= 100:
        properties["eo:cloud_cover"] = found


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _local(tag: Any) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""
