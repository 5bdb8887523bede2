"""An OpenSearch source in the style of the Copernicus Data Space Ecosystem's resto: its recorded
answers (a search.json page in CDSE's exact shape, a resto Atom feed, the collection's
description document) served by a local HTTP server, searched through CURE's own catalogue."""

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.federation.sourcing import registered, source_name

DATA = Path(__file__).resolve().parents[1] / "ccsi" / "data"
VIENNA = "16.30,48.15,16.45,48.25"
JSON_NAME = "S2B_MSIL2A_20240715T095559_N0510_R122_T33UXP_20240715T120604"
OLDER_NAME = "S2A_MSIL2A_20240713T100031_N0510_R122_T33UXP_20240713T142110"


def describe(base: str, *, kinds: tuple[str, ...]) -> bytes:
    """The collection's description document as resto writes it (URL templates per format)."""
    urls = []
    for kind in kinds:
        media_type = "application/json" if kind == "json" else "application/atom+xml"
        urls.append(
            f'<Url type="{media_type}" rel="results" template="{base}/search.{kind}?'
            "maxRecords={count?}&amp;page={startPage?}&amp;box={geo:box?}&amp;"
            "startDate={time:start?}&amp;completionDate={time:end?}&amp;"
            'productType={eo:productType?}&amp;cloudCover={eo:cloudCover?}"/>'
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<OpenSearchDescription xmlns="http://a9.com/-/spec/opensearch/1.1/" '
        'xmlns:parameters="http://a9.com/-/spec/opensearch/extensions/parameters/1.0/">'
        f"<ShortName>Sentinel-2</ShortName>{''.join(urls)}</OpenSearchDescription>"
    ).encode()


class RestoServer:
    """Recorded resto answers by path, on 127.0.0.1; it keeps each request's path and query."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, str, bytes]] = {}
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}/resto/api/collections"
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        resto = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                parts = urlsplit(self.path)
                resto.requests.append((parts.path, parse_qs(parts.query)))
                page = parse_qs(parts.query).get("page", ["1"])[0]
                found = resto.answers.get(f"{parts.path}?page={page}") or resto.answers.get(
                    parts.path
                )
                status, media_type, body = found or (404, "application/json", b'{"error":"no"}')
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def searches(self) -> list[dict[str, list[str]]]:
        return [query for path, query in self.requests if "/search." in path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def resto() -> Iterator[RestoServer]:
    server = RestoServer()
    try:
        yield server
    finally:
        server.close()


def opensearch_source(url: str, **overrides: Any) -> dict[str, Any]:
    """The Copernicus Data Space Ecosystem's OpenSearch, as the README's source document maps it."""
    return {
        "name": source_name("cdse-os"),
        "kind": "opensearch",
        "url": url,
        "timeout_seconds": 30,
        "collections": {
            "sentinel2-l2a": {
                "remote": "Sentinel2",
                "product_type": "S2MSI2A",
                "assets": {"product": "download"},
            }
        },
        **overrides,
    }


def recorded_page() -> dict[str, Any]:
    return json.loads((DATA / "cdse_resto_sentinel2_page.json").read_text())


def _of_source(features: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The features a search took from the source ``name``, in the answer's order."""
    return [f for f in features if f["properties"]["source"] == name]


async def test_a_resto_json_source_is_searched_through_ccsi(
    app, sessionmaker, client, resto
) -> None:
    collection = f"{resto.url}/Sentinel2"
    resto.answers[urlsplit(f"{collection}/describe.xml").path] = (
        200,
        "application/opensearchdescription+xml",
        describe(collection, kinds=("json", "atom")),
    )
    resto.answers[urlsplit(f"{collection}/search.json").path] = (
        200,
        "application/json",
        json.dumps(recorded_page()).encode(),
    )
    document = opensearch_source(resto.url)

    mapped_only = f"{document['name']}-only"
    document["collections"][mapped_only] = document["collections"]["sentinel2-l2a"]

    async with registered(app, sessionmaker, document):
        answer = await client.get(
            "/v1/ccsi/sentinel2-l2a/search",
            params={"bbox": VIENNA, "timeStart": "2024-07-13", "timeEnd": "2024-07-15"},
        )
        description = await client.get("/v1/ccsi/description.xml")

    # The description document offers the collections the sources map, as the local ones.
    assert f'value="{mapped_only}"' in description.text
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert page["sourcesMissing"] == []
    # Only the source's own products: the local catalogue may hold demo scenes of the same days
    # (another test's `cure demo seed`), merged into the same page.
    remote = _of_source(page["features"], document["name"])
    features = {f["properties"]["identifier"]: f["properties"] for f in remote}
    # The entry without a footprint (resto's geometry []) is left out; the others are products.
    assert set(features) == {JSON_NAME, OLDER_NAME}
    newest = features[JSON_NAME]
    assert newest["source"] == document["name"]
    assert newest["productType"] == "S2MSI2A"
    assert newest["cloudCover"] == pytest.approx(7.13)
    assert newest["assets"]["product"]["href"].endswith(
        "/download/a6f1b3c2-7d44-4e0a-9a1c-2f6b8e0d9c11"
    )
    assert [f["properties"]["identifier"] for f in remote] == [JSON_NAME, OLDER_NAME]
    # What resto was asked: the box, the period, the product type, newest first.
    (query,) = resto.searches()
    assert [float(v) for v in query["box"][0].split(",")] == [float(v) for v in VIENNA.split(",")]
    assert query["startDate"] == ["2024-07-13T00:00:00Z"]
    assert query["completionDate"][0].startswith("2024-07-15T23:59:59")
    assert query["productType"] == ["S2MSI2A"]
    assert (query["sortParam"], query["sortOrder"]) == (["startDate"], ["descending"])


async def test_a_cloud_filter_goes_to_resto_as_an_interval(
    app, sessionmaker, client, resto
) -> None:
    collection = f"{resto.url}/Sentinel2"
    resto.answers[urlsplit(f"{collection}/describe.xml").path] = (404, "text/plain", b"no")
    resto.answers[urlsplit(f"{collection}/search.json").path] = (
        200,
        "application/json",
        json.dumps(recorded_page()).encode(),
    )

    document = opensearch_source(resto.url)
    # resto's own name of the product type (as CDSE's SL_2_LST___ for CURE's SL_2_LST).
    document["collections"]["sentinel2-l2a"]["remote_product_type"] = "S2MSI2A_RESTO"

    async with registered(app, sessionmaker, document):
        answer = await client.get(
            "/v1/ccsi/sentinel2-l2a/search",
            params={"bbox": VIENNA, "timeStart": "2024-07-13", "cloudCover": "[0,20]"},
        )

    assert answer.status_code == 200, answer.text
    (query,) = resto.searches()
    assert query["cloudCover"] == ["[0,20]"]
    assert query["productType"] == ["S2MSI2A_RESTO"]
    remote = _of_source(answer.json()["features"], document["name"])
    assert remote[0]["properties"]["productType"] == "S2MSI2A"
    # The recorded answer is the same whatever the filter: CURE applies it too. The older scene's
    # cover is unknown to resto (-1), so a cloud filter leaves it out, as CQL2 would.
    assert [f["properties"]["identifier"] for f in remote] == [JSON_NAME]


async def test_an_atom_only_source_is_read_from_its_feed_page_after_page(
    app, sessionmaker, client, resto
) -> None:
    collection = f"{resto.url}/S2"
    atom_path = urlsplit(f"{collection}/search.atom").path
    resto.answers[urlsplit(f"{collection}/describe.xml").path] = (
        200,
        "application/opensearchdescription+xml",
        describe(collection, kinds=("atom",)),
    )
    first = (DATA / "resto_sentinel2_page.atom").read_text()
    # The recorded feed's next link, on this server; the second page holds the older scene.
    first = first.replace(
        "https://resto.example/collections/S2/search.atom?maxRecords=1&amp;page=2",
        f"{collection}/search.atom?maxRecords=1&amp;page=2",
    )
    second = (
        first.split("<entry>")[0].replace('<link rel="next"', '<link rel="previous"')
        + "<entry>"
        + first.split("<entry>")[1]
        .replace(JSON_NAME, OLDER_NAME)
        .replace("2024-07-15T09:55:59.024Z", "2024-07-13T10:00:31.024Z")
        .replace("<eo:cloudCover>7.13</eo:cloudCover>", "<eo:cloudCover>31.5</eo:cloudCover>")
    )
    resto.answers[atom_path] = (200, "application/atom+xml", first.encode())
    resto.answers[f"{atom_path}?page=2"] = (200, "application/atom+xml", second.encode())
    document = opensearch_source(resto.url)
    document["collections"]["sentinel2-l2a"]["remote"] = "S2"

    async with registered(app, sessionmaker, document):
        answer = await client.get(
            "/v1/ccsi/sentinel2-l2a/search",
            params={"bbox": VIENNA, "timeStart": "2024-07-13", "timeEnd": "2024-07-15"},
        )

    assert answer.status_code == 200, answer.text
    remote = _of_source(answer.json()["features"], document["name"])
    products = {f["properties"]["identifier"]: f["properties"] for f in remote}
    assert set(products) == {JSON_NAME, OLDER_NAME}
    assert products[OLDER_NAME]["cloudCover"] == pytest.approx(31.5)
    assert products[JSON_NAME]["assets"]["product"]["type"] == "application/zip"
    paths = [path for path, _ in resto.requests if "/search." in path]
    assert paths == [atom_path, atom_path]  # the JSON the document does not offer is never asked
    assert [q.get("page") for q in resto.searches()] == [["1"], ["2"]]


async def test_a_resto_that_answers_garbage_is_named_missing(
    app, sessionmaker, client, resto
) -> None:
    collection = f"{resto.url}/Sentinel2"
    resto.answers[urlsplit(f"{collection}/describe.xml").path] = (404, "text/plain", b"no")
    resto.answers[urlsplit(f"{collection}/search.json").path] = (
        200,
        "application/json",
        b'{"type": "FeatureCollection", "features": "not a list"}',
    )
    document = opensearch_source(resto.url)

    async with registered(app, sessionmaker, document):
        answer = await client.get("/v1/ccsi/sentinel2-l2a/search", params={"bbox": VIENNA})

    assert answer.status_code == 200, answer.text
    assert answer.json()["sourcesMissing"] == [document["name"]]
    assert answer.headers["CURE-Sources-Missing"] == document["name"]


async def test_the_workers_search_waits_when_a_source_gave_no_answer(
    app, sessionmaker, client, resto
) -> None:
    """A page that names a missing source is incomplete: the worker's client treats the
    catalogue as down for now (its order waits and retries), never as "no product"."""
    from cure.ccsi.client import CcsiClient, CcsiUnavailable

    document = opensearch_source(resto.url)  # nothing recorded: every path answers 404

    async with registered(app, sessionmaker, document):
        async with CcsiClient("http://cure.test/v1/ccsi", http=client) as ccsi:
            with pytest.raises(CcsiUnavailable, match=document["name"]):
                async for _ in ccsi.search(
                    collection="sentinel2-l2a", bbox=(16.3, 48.15, 16.45, 48.25)
                ):
                    pass
