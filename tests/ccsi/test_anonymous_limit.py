"""Anonymous reads of the catalogue (/v1/ccsi/*, the product quicklooks under it) and of the STAC
API (/stac/*) are limited per client address: past CURE_ANONYMOUS_READS_PER_MINUTE a 429 with
Retry-After, in each API's own error shape. Authenticated readers are not counted."""

import httpx

from cure.ccsi.reads import ANONYMOUS_READS
from cure.kit.state import state_of
from tests.conftest import loopback_address, started_app
from tests.factories import customer_with_token


def _client(api, address: str) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=api, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://cure.test")


async def test_anonymous_reads_past_the_limit_are_429_per_address(settings) -> None:
    async with started_app(settings.model_copy(update={"anonymous_reads_per_minute": 3})) as api:
        address = loopback_address()
        async with _client(api, address) as http, _client(api, loopback_address()) as other:
            assert (await http.get("/v1/ccsi/collections")).status_code == 200
            buckets = state_of(api).need(ANONYMOUS_READS)  # made at the first anonymous read
            now = buckets.clock()
            buckets.clock = lambda: now  # no token comes back while the test runs
            assert (await http.get("/stac/conformance")).status_code == 200
            assert (await http.get("/v1/ccsi/search")).status_code == 200

            limited = await http.get("/v1/ccsi/search")
            assert limited.status_code == 429, limited.text
            assert limited.json()["error"] == "AnonymousReadsLimited"
            assert 1 <= int(limited.headers["Retry-After"]) <= 20
            stac = await http.get("/stac/search")
            assert stac.status_code == 429 and stac.json()["code"] == "AnonymousReadsLimited"
            assert int(stac.headers["Retry-After"]) >= 1
            quicklook = await http.get("/v1/ccsi/c/products/p/assets/data/quicklook")
            assert quicklook.status_code == 429, quicklook.text

            _, headers = await customer_with_token(other)
            for path in ("/v1/ccsi/search", "/stac/search", "/v1/ccsi/collections"):
                signed_in = await http.get(path, headers=headers)
                assert signed_in.status_code == 200, (path, signed_in.text)
            assert (await other.get("/stac/search")).status_code == 200  # its own bucket
