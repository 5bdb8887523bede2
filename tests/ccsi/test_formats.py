"""The answers parse as what they claim to be: GeoJSON pages, Atom feeds (read with an XML parser),
and the OpenSearch description document."""

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.ccsi.factories import add_product, box

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "os": "http://a9.com/-/spec/opensearch/1.1/",
    "georss": "http://www.georss.org/georss",
    "gml": "http://www.opengis.net/gml",
    "dc": "http://purl.org/dc/elements/1.1/",
    "param": "http://a9.com/-/spec/opensearch/extensions/parameters/1.0/",
}
MULTI = {
    "type": "MultiPolygon",
    "coordinates": [box(10, 40, 11, 41)["coordinates"], box(12, 40, 13, 41)["coordinates"]],
}


@pytest.fixture
async def five(session, collection) -> str:  # type: ignore[no-untyped-def]
    """Five public products, one a day from 2024-07-01 (newest first: P4 .. P0)."""
    for day in range(5):
        await add_product(
            session,
            collection,
            identifier=f"P{day}",
            footprint=MULTI if day == 0 else box(10, 40, 11, 41),
            start=f"2024-07-0{day + 1}T10:00:00Z",
            end=f"2024-07-0{day + 1}T10:00:30Z",
            assets={
                "data": {
                    "href": f"https://data.example.org/P{day}.tif",
                    "type": "image/tiff",
                    "size": 1000 + day,
                }
            },
        )
    await session.commit()
    return collection


def _query(href: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(href).query)


async def test_geojson_page_with_next_and_previous_links(client, five) -> None:
    params = {"maxRecords": "2", "startIndex": "3", "timeStart": "2024-07-01", "bbox": "9,39,14,42"}
    response = await client.get(f"/v1/ccsi/{five}/search", params=params)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/geo+json"
    page = response.json()
    assert page["type"] == "FeatureCollection"
    assert (page["totalResults"], page["itemsPerPage"], page["startIndex"]) == (5, 2, 3)
    names = [f["properties"]["identifier"] for f in page["features"]]
    assert names == ["P2", "P1"]
    feature = page["features"][0]
    assert feature["geometry"] == box(10, 40, 11, 41)
    props = feature["properties"]
    assert props["collection"] == five and props["productType"] == "S2MSI2A"
    assert props["start"] == "2024-07-03T10:00:00Z" and props["end"] == "2024-07-03T10:00:30Z"
    assert props["date"] == "2024-07-03T10:00:00Z/2024-07-03T10:00:30Z"
    assert props["cloudCover"] == 12.5
    links = {link["rel"]: link["href"] for link in page["links"]}
    for rel, index in (("self", ["3"]), ("next", ["5"]), ("previous", ["1"])):
        query = _query(links[rel])
        assert urlsplit(links[rel]).path == f"/v1/ccsi/{five}/search"
        assert query.get("startIndex", ["1"]) == index, rel
        assert query["bbox"] == ["9,39,14,42"] and query["timeStart"] == ["2024-07-01"]
        assert query["maxRecords"] == ["2"]
    last = (
        await client.get(f"/v1/ccsi/{five}/search", params={**params, "startIndex": "5"})
    ).json()
    assert [f["properties"]["identifier"] for f in last["features"]] == ["P0"]
    assert {link["rel"] for link in last["links"]} == {"self", "previous", "search"}
    first = (await client.get(f"/v1/ccsi/{five}/search", params={"maxRecords": "10"})).json()
    assert {link["rel"] for link in first["links"]} == {"self", "search"}
    # The total is the same whether the page tells it (all on it, or its last page) or it is
    # counted (a page with more after it, or one past the end).
    past = {**params, "startIndex": "9"}
    beyond = (await client.get(f"/v1/ccsi/{five}/search", params=past)).json()
    assert beyond["features"] == []
    totals = [page["totalResults"] for page in (first, last, beyond)]
    assert totals == [5, 5, 5], totals


async def test_atom_feed_parses_with_entries_counts_and_links(client, five) -> None:
    response = await client.get(
        f"/v1/ccsi/{five}/search", params={"maxRecords": "2", "format": "atom", "startIndex": "4"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(response.content)
    assert feed.tag == "{http://www.w3.org/2005/Atom}feed"
    assert feed.findtext("os:totalResults", namespaces=NS) == "5"
    assert feed.findtext("os:itemsPerPage", namespaces=NS) == "2"
    assert feed.findtext("os:startIndex", namespaces=NS) == "4"
    links = {link.get("rel"): link.get("href") for link in feed.findall("atom:link", NS)}
    assert set(links) == {"self", "previous", "search"}
    assert _query(links["previous"])["startIndex"] == ["2"]
    assert _query(links["previous"])["format"] == ["atom"]
    entries = feed.findall("atom:entry", NS)
    assert [e.findtext("atom:title", namespaces=NS) for e in entries] == ["P1", "P0"]
    p1, p0 = entries
    assert p1.findtext("dc:date", namespaces=NS) == "2024-07-02T10:00:00Z/2024-07-02T10:00:30Z"
    assert p1.findtext("dc:identifier", namespaces=NS) == "P1"
    # GeoRSS writes latitude first.
    assert p1.findtext("georss:polygon", namespaces=NS).split()[:4] == [
        "40.0",
        "10.0",
        "40.0",
        "11.0",
    ]
    assert len(p0.findall("georss:where/gml:MultiSurface/gml:surfaceMember", NS)) == 2
    (enclosure,) = [link for link in p1.findall("atom:link", NS) if link.get("rel") == "enclosure"]
    assert enclosure.get("href") == "https://data.example.org/P1.tif"
    assert enclosure.get("length") == "1001" and enclosure.get("type") == "image/tiff"
    assert p1.findtext("atom:id", namespaces=NS).startswith("urn:uuid:")


async def test_format_follows_the_accept_header(client, five) -> None:
    url = f"/v1/ccsi/{five}/search"
    for accept, expected in (
        ("application/atom+xml", "application/atom+xml"),
        ("application/atom+xml;q=0.9, application/geo+json", "application/geo+json"),
        ("application/geo+json;q=0.5, application/atom+xml", "application/atom+xml"),
        ("application/atom+xml, */*", "application/atom+xml"),
        ("*/*", "application/geo+json"),
        ("text/html", "application/geo+json"),
    ):
        response = await client.get(url, headers={"Accept": accept})
        assert response.headers["content-type"].startswith(expected), accept
    forced = await client.get(
        url, params={"format": "json"}, headers={"Accept": "application/atom+xml"}
    )
    assert forced.headers["content-type"] == "application/geo+json"


async def test_description_document_names_parameters_templates_and_collections(
    client, five
) -> None:
    response = await client.get("/v1/ccsi/description.xml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/opensearchdescription+xml")
    root = ET.fromstring(response.content)
    assert root.tag == "{http://a9.com/-/spec/opensearch/1.1/}OpenSearchDescription"
    urls = {url.get("type"): url for url in root.findall("os:Url", NS)}
    assert {"application/geo+json", "application/atom+xml"} <= set(urls)
    for media_type, url in urls.items():
        if url.get("rel") != "results":
            continue
        template = url.get("template")
        assert urlsplit(template).path == "/v1/ccsi/search"
        for fragment in ("bbox={geo:box?}", "timeStart={time:start?}", "timeEnd={time:end?}"):
            assert fragment in template, media_type
        assert "startIndex={startIndex?}" in template and "maxRecords={count?}" in template
        names = {p.get("name") for p in url.findall("param:Parameter", NS)}
        assert names >= {
            "bbox",
            "geometry",
            "timeStart",
            "timeEnd",
            "productType",
            "maxRecords",
            "startIndex",
            "collection",
        }
        (collections,) = [
            p for p in url.findall("param:Parameter", NS) if p.get("name") == "collection"
        ]
        assert five in {option.get("value") for option in collections}
    # The template works when a client fills it in.
    template = urls["application/geo+json"].get("template")
    filled = (
        template.replace("{eo:parentIdentifier?}", five)
        .replace("{count?}", "3")
        .replace("{startIndex?}", "1")
    )
    for placeholder in (
        "{geo:box?}",
        "{geo:geometry?}",
        "{time:start?}",
        "{time:end?}",
        "{eo:productType?}",
        "{eo:cloudCover?}",
    ):
        filled = filled.replace(placeholder, "")
    answer = await client.get(filled.replace("http://127.0.0.1:8000", ""))
    assert answer.status_code == 200 and answer.json()["totalResults"] == 5


async def test_collections_summarise_extent_time_and_types(client, session, five) -> None:
    await add_product(
        session, five, identifier="X", product_type="L1C", footprint=box(-5, -5, -4, -4)
    )
    await session.commit()
    body = (await client.get("/v1/ccsi/collections")).json()
    (mine,) = [c for c in body["collections"] if c["id"] == five]
    assert mine["product_count"] == 6
    assert mine["bbox"] == [-5, -5, 13, 41]
    assert mine["start"] == "2024-07-01T10:00:00Z" and mine["end"] == "2024-07-05T10:00:30Z"
    assert mine["product_types"] == ["L1C", "S2MSI2A"]
