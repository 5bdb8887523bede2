"""CcsiClient pages through every result of the in-process catalogue and reports refusals."""

from datetime import date

import httpx
import pytest

from cure.ccsi.client import CcsiClient, CcsiError, CcsiUnavailable
from tests.ccsi.factories import add_product, box
from tests.conftest import free_port


async def test_pages_through_more_than_one_page(app, session, collection) -> None:
    for number in range(23):
        await add_product(
            session,
            collection,
            identifier=f"C{number:02d}",
            footprint=box(10, 40, 11, 41) if number % 2 else box(20, 40, 21, 41),
            start=f"2024-07-{number + 1:02d}T10:00:00Z",
            product_type="L2A",
        )
    await session.commit()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
        ccsi = CcsiClient("http://cure.test/v1/ccsi", http=http)
        everything = [p async for p in ccsi.search(collection=collection, page_size=5)]
        assert len(everything) == 23
        assert [p["properties"]["identifier"] for p in everything] == [
            f"C{n:02d}" for n in reversed(range(23))
        ]
        west = [
            p["properties"]["identifier"]
            async for p in ccsi.search(
                collection=collection,
                bbox=(9.5, 39.5, 11.5, 41.5),
                start=date(2024, 7, 5),
                end=date(2024, 7, 14),
                product_type="L2A",
                page_size=2,
            )
        ]
        assert west == ["C13", "C11", "C09", "C07", "C05"]
        shaped = [p async for p in ccsi.search(geometry=box(20.2, 40.2, 20.4, 40.4), page_size=500)]
        assert {p["properties"]["collection"] for p in shaped} >= {collection}
        assert len([p for p in shaped if p["properties"]["collection"] == collection]) == 12

        with pytest.raises(CcsiError) as refused:
            async for _ in ccsi.search(collection=collection, bbox=(5, 5, 1, 1)):
                pass
        assert refused.value.status_code == 400
        assert "bbox" in str(refused.value)
        assert refused.value.detail[0]["loc"] == ["query", "bbox"]


async def test_an_unreachable_catalogue_is_reported_as_unavailable() -> None:
    async with CcsiClient(f"http://127.0.0.1:{free_port()}/v1/ccsi", timeout=2) as ccsi:
        with pytest.raises(CcsiUnavailable):
            async for _ in ccsi.search():
                pass


async def test_a_catalogue_that_limits_us_is_unavailable_for_now(settings) -> None:
    """A 429 (the anonymous-read limit) is an outage to wait out, never a refusal that would
    fail the order whose inputs are being searched."""
    from tests.conftest import started_app

    async with started_app(settings.model_copy(update={"anonymous_reads_per_minute": 1})) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
            ccsi = CcsiClient("http://cure.test/v1/ccsi", http=http)
            assert (await http.get("/v1/ccsi/search?format=json")).status_code == 200  # the one
            with pytest.raises(CcsiUnavailable) as limited:
                async for _ in ccsi.search(page_size=1):
                    pass
    assert limited.value.status_code == 429


def test_anonymous_reads_are_counted_per_ipv4_address_and_per_ipv6_64() -> None:
    from cure.ccsi.reads import client_key

    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("192.0.2.7") != client_key("192.0.2.8")
