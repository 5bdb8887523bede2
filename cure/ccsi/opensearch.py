"""OpenSearch rendering: the description document, GeoJSON pages and Atom feeds (pure functions).

XML is built with ElementTree, never by pasting strings; nothing here parses XML.
"""

import xml.etree.ElementTree as ET  # noqa: S405 (only builds and serialises, never parses)
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from cure.ccsi.repository import COUNT_LIMIT, LAST_START_INDEX
from cure.ccsi.schemas import DEFAULT_RECORDS, MAX_RECORDS, ProductRead, SearchQuery

OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
GEO = "http://a9.com/-/opensearch/extensions/geo/1.0/"
TIME = "http://a9.com/-/opensearch/extensions/time/1.0/"
EO = "http://a9.com/-/opensearch/extensions/eo/1.0/"
PARAMETER_EXTENSION = "http://a9.com/-/spec/opensearch/extensions/parameters/1.0/"
ATOM = "http://www.w3.org/2005/Atom"
GEORSS = "http://www.georss.org/georss"
GML = "http://www.opengis.net/gml"
DC = "http://purl.org/dc/elements/1.1/"
CURE = "urn:cure:ccsi"

DESCRIPTION_TYPE = "application/opensearchdescription+xml"
GEOJSON_TYPE = "application/geo+json"
ATOM_TYPE = "application/atom+xml"

for _prefix, _uri in {
    "os": OPENSEARCH,
    "geo": GEO,
    "time": TIME,
    "eo": EO,
    "parameters": PARAMETER_EXTENSION,
    "georss": GEORSS,
    "gml": GML,
    "dc": DC,
    "cure": CURE,
}.items():
    ET.register_namespace(_prefix, _uri)


# name, template value, title; the order of the URL templates.
SEARCH_PARAMETERS: tuple[tuple[str, str, str], ...] = (
    ("collection", "eo:parentIdentifier", "The collection to search (all when absent)"),
    ("bbox", "geo:box", "Bounding box: minlon,minlat,maxlon,maxlat in WGS84"),
    ("geometry", "geo:geometry", "A WKT geometry in WGS84 the footprint must intersect"),
    ("timeStart", "time:start", "ISO 8601 date or date-time; products ending at or after it"),
    ("timeEnd", "time:end", "ISO 8601 date or date-time; products starting at or before it"),
    ("productType", "eo:productType", "The product type, e.g. S2MSI2A"),
    (
        "cloudCover",
        "eo:cloudCover",
        "Cloud cover in percent: N (at most N) or [min,max]; products that do not say theirs "
        "are left out",
    ),
    ("maxRecords", "count", f"Results per page, 1 to {MAX_RECORDS} (default {DEFAULT_RECORDS})"),
    (
        "startIndex",
        "startIndex",
        f"1-based index of the first result (default 1, at most {LAST_START_INDEX})",
    ),
)
_TEMPLATE_VALUE = {name: value for name, value, _ in SEARCH_PARAMETERS}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _qualified(name: str) -> str:
    """'geo:box' -> '{namespace}box' for an XML attribute; unprefixed names stay as they are."""
    prefix, _, local = name.rpartition(":")
    namespaces = {"geo": GEO, "time": TIME, "eo": EO}
    return f"{{{namespaces[prefix]}}}{local}" if prefix else name


def _url(base: str, params: dict[str, str]) -> str:
    if not params:
        return base
    return f"{base}?{urlencode(params, quote_via=quote, safe=',:')}"


def _xml(root: ET.Element) -> bytes:
    # The root declares its default namespace as an xmlns attribute and its children use plain
    # names (ElementTree's default_namespace option refuses unprefixed attributes).
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


# --- the description document -------------------------------------------------------------


def description_document(*, base_url: str, collections: list[str]) -> bytes:
    """The OpenSearch 1.1 description of ``{base_url}/search`` (Geo, Time, EO, Parameter)."""
    base_url = base_url.rstrip("/")
    root = ET.Element("OpenSearchDescription", {"xmlns": OPENSEARCH})
    ET.SubElement(root, "ShortName").text = "CURE CCSI"
    ET.SubElement(root, "LongName").text = "CURE Copernicus product catalogue"
    ET.SubElement(root, "Description").text = (
        "Input products and products CURE generated, searched by area, time and product type. "
        "A date alone as timeEnd means the end of that day; naive times are UTC. "
        f"totalResults counts up to {COUNT_LIMIT} (a search that matches more says {COUNT_LIMIT}); "
        f"pages start at most at startIndex {LAST_START_INDEX}."
    )
    ET.SubElement(root, "Tags").text = "CURE Copernicus CCSI EO"
    for media_type, format_name in ((GEOJSON_TYPE, "json"), (ATOM_TYPE, "atom")):
        template = "&".join(f"{name}={{{value}?}}" for name, value, _ in SEARCH_PARAMETERS)
        url = ET.SubElement(
            root,
            "Url",
            {
                "type": media_type,
                "rel": "results",
                "template": f"{base_url}/search?{template}&format={format_name}",
                "indexOffset": "1",
                "pageOffset": "1",
            },
        )
        _describe_parameters(url, collections)
    ET.SubElement(
        root,
        "Url",
        {"type": DESCRIPTION_TYPE, "rel": "self", "template": f"{base_url}/description.xml"},
    )
    example = ET.SubElement(root, "Query", {"role": "example"})
    example.set(f"{{{GEO}}}box", "16.2,48.1,16.5,48.4")
    example.set(f"{{{TIME}}}start", "2024-07-01")
    example.set(f"{{{TIME}}}end", "2024-07-31")
    ET.SubElement(root, "Developer").text = "CURE"
    ET.SubElement(root, "SyndicationRight").text = "open"
    ET.SubElement(root, "InputEncoding").text = "UTF-8"
    ET.SubElement(root, "OutputEncoding").text = "UTF-8"
    return _xml(root)


def _describe_parameters(url: ET.Element, collections: list[str]) -> None:
    for name, value, title in SEARCH_PARAMETERS:
        attributes = {"name": name, "value": f"{{{value}}}", "title": title, "minimum": "0"}
        if name == "maxRecords":
            attributes.update(minInclusive="1", maxInclusive=str(MAX_RECORDS))
        elif name == "startIndex":
            attributes.update(minInclusive="1", maxInclusive=str(LAST_START_INDEX))
        elif name == "bbox":
            attributes["pattern"] = r"^[-+0-9.eE]+(,[-+0-9.eE]+){3}$"
        parameter = ET.SubElement(url, f"{{{PARAMETER_EXTENSION}}}Parameter", attributes)
        if name == "collection":
            for collection in collections:
                ET.SubElement(
                    parameter,
                    f"{{{PARAMETER_EXTENSION}}}Option",
                    {"value": collection, "label": collection},
                )


# --- paging ---------------------------------------------------------------------------------


def page_links(
    *, more: bool, query: SearchQuery, search_url: str, format_name: str
) -> dict[str, str]:
    """self, and next and previous where they exist, each carrying the same query; no next
    link starts past LAST_START_INDEX (the search then has to be narrowed)."""

    def at(index: int) -> str:
        return _url(search_url, {**query.link_params(index), "format": format_name})

    links = {"self": at(query.start_index)}
    following = query.start_index + query.max_records
    if more and following <= LAST_START_INDEX:
        links["next"] = at(following)
    if query.start_index > 1:
        links["previous"] = at(max(1, query.start_index - query.max_records))
    return links


# --- GeoJSON ----------------------------------------------------------------------------------


def feature(product: ProductRead) -> dict[str, Any]:
    """A product as a GeoJSON Feature; the catalogue's own keys win over stored properties."""
    start, end = iso(product.start), iso(product.end)
    properties: dict[str, Any] = {
        **product.properties,
        "collection": product.collection,
        "identifier": product.identifier,
        "title": product.identifier,
        "productType": product.product_type,
        "start": start,
        "end": end,
        "date": f"{start}/{end}",
        "updated": iso(product.created_at),
        "public": product.published or product.owner_id is None,
        "assets": {
            key: asset.model_dump(exclude_none=True) for key, asset in product.assets.items()
        },
    }
    if product.order_id is not None:
        properties["orderId"] = str(product.order_id)
    properties["source"] = product.source
    if product.cloud_cover is not None:
        properties["cloudCover"] = product.cloud_cover
    if product.derived_from:  # lineage: the products it was made from
        properties["derivedFrom"] = [
            reference.model_dump(mode="json") for reference in product.derived_from
        ]
    return {
        "type": "Feature",
        "id": str(product.id),
        "geometry": product.footprint,
        "properties": properties,
    }


def geojson_page(
    items: list[ProductRead],
    *,
    total: int,
    more: bool,
    query: SearchQuery,
    search_url: str,
    description_url: str,
    missing: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``total`` is counted up to COUNT_LIMIT: that many means at least that many. ``missing``
    names the sources that gave no answer (the page lacks what they hold)."""
    links = page_links(more=more, query=query, search_url=search_url, format_name="json")
    return {
        "type": "FeatureCollection",
        "totalResults": total,
        "itemsPerPage": query.max_records,
        "startIndex": query.start_index,
        "sourcesMissing": list(missing),
        "features": [feature(product) for product in items],
        "links": [
            *({"rel": rel, "type": GEOJSON_TYPE, "href": href} for rel, href in links.items()),
            {"rel": "search", "type": DESCRIPTION_TYPE, "href": description_url},
        ],
    }


# --- Atom -------------------------------------------------------------------------------------


def atom_feed(
    items: list[ProductRead],
    *,
    total: int,
    more: bool,
    query: SearchQuery,
    search_url: str,
    description_url: str,
    updated: datetime,
    missing: tuple[str, ...] = (),
) -> bytes:
    links = page_links(more=more, query=query, search_url=search_url, format_name="atom")
    feed = ET.Element("feed", {"xmlns": ATOM})
    ET.SubElement(feed, "title").text = "CURE CCSI search results"
    ET.SubElement(feed, "id").text = links["self"]
    ET.SubElement(feed, "updated").text = iso(updated)
    author = ET.SubElement(feed, "author")
    ET.SubElement(author, "name").text = "CURE"
    ET.SubElement(feed, f"{{{OPENSEARCH}}}totalResults").text = str(total)
    ET.SubElement(feed, f"{{{OPENSEARCH}}}itemsPerPage").text = str(query.max_records)
    ET.SubElement(feed, f"{{{OPENSEARCH}}}startIndex").text = str(query.start_index)
    request = ET.SubElement(feed, f"{{{OPENSEARCH}}}Query", {"role": "request"})
    for name, value in query.link_params(query.start_index).items():
        if name in _TEMPLATE_VALUE:
            request.set(_qualified(_TEMPLATE_VALUE[name]), value)
    for rel, href in links.items():
        ET.SubElement(feed, "link", {"rel": rel, "type": ATOM_TYPE, "href": href})
    for name in missing:  # a source that gave no answer: the feed lacks what it holds
        ET.SubElement(feed, f"{{{CURE}}}sourceMissing").text = name
    ET.SubElement(
        feed, "link", {"rel": "search", "type": DESCRIPTION_TYPE, "href": description_url}
    )
    for product in items:
        feed.append(_entry(product))
    return _xml(feed)


def _entry(product: ProductRead) -> ET.Element:
    entry = ET.Element("entry")
    ET.SubElement(entry, "id").text = f"urn:uuid:{product.id}"
    ET.SubElement(entry, "title").text = product.identifier
    ET.SubElement(entry, "updated").text = iso(product.created_at)
    ET.SubElement(entry, "summary", {"type": "text"}).text = (
        f"{product.product_type} in {product.collection}, "
        f"{iso(product.start)} to {iso(product.end)}"
    )
    ET.SubElement(entry, "category", {"term": product.collection, "label": "collection"})
    ET.SubElement(entry, "category", {"term": product.product_type, "label": "productType"})
    ET.SubElement(entry, f"{{{DC}}}identifier").text = product.identifier
    ET.SubElement(entry, f"{{{DC}}}date").text = f"{iso(product.start)}/{iso(product.end)}"
    entry.append(_where(product.footprint))
    for key, asset in product.assets.items():
        link = {"rel": "enclosure", "href": asset.href, "type": asset.type, "title": key}
        if asset.title:
            link["title"] = asset.title
        if asset.size is not None:
            link["length"] = str(asset.size)
        ET.SubElement(entry, "link", link)
    for reference in product.derived_from or []:  # lineage: the products it was made from
        made_from = {"collection": reference.collection, "source": reference.source}
        if reference.identifier is not None:  # withheld: another customer's product
            made_from["identifier"] = reference.identifier
        ET.SubElement(entry, f"{{{CURE}}}derivedFrom", made_from)
    return entry


def _pos_list(ring: list[list[float]]) -> str:
    # GeoRSS writes latitude first.
    return " ".join(f"{float(lat)!r} {float(lon)!r}" for lon, lat, *_ in ring)


def _where(geometry: dict[str, Any]) -> ET.Element:
    """georss:polygon for a polygon without holes; GML in georss:where for anything else."""
    kind, coordinates = geometry.get("type"), geometry.get("coordinates") or []
    if kind == "Polygon" and len(coordinates) == 1:
        polygon = ET.Element(f"{{{GEORSS}}}polygon")
        polygon.text = _pos_list(coordinates[0])
        return polygon
    where = ET.Element(f"{{{GEORSS}}}where")
    if kind == "Polygon":
        where.append(_gml_polygon(coordinates))
    elif kind == "MultiPolygon":
        surface = ET.SubElement(where, f"{{{GML}}}MultiSurface", {"srsName": "EPSG:4326"})
        for polygon in coordinates:
            member = ET.SubElement(surface, f"{{{GML}}}surfaceMember")
            member.append(_gml_polygon(polygon))
    else:  # not a footprint the catalogue registers; its envelope still locates it
        where.append(_gml_envelope(geometry))
    return where


def _gml_polygon(rings: list[list[list[float]]]) -> ET.Element:
    polygon = ET.Element(f"{{{GML}}}Polygon", {"srsName": "EPSG:4326"})
    for number, ring in enumerate(rings):
        side = "exterior" if number == 0 else "interior"
        boundary = ET.SubElement(polygon, f"{{{GML}}}{side}")
        linear = ET.SubElement(boundary, f"{{{GML}}}LinearRing")
        ET.SubElement(linear, f"{{{GML}}}posList").text = _pos_list(ring)
    return polygon


def _gml_envelope(geometry: dict[str, Any]) -> ET.Element:
    from shapely.geometry import shape

    min_lon, min_lat, max_lon, max_lat = shape(geometry).bounds
    envelope = ET.Element(f"{{{GML}}}Envelope", {"srsName": "EPSG:4326"})
    ET.SubElement(envelope, f"{{{GML}}}lowerCorner").text = f"{min_lat!r} {min_lon!r}"
    ET.SubElement(envelope, f"{{{GML}}}upperCorner").text = f"{max_lat!r} {max_lon!r}"
    return envelope
