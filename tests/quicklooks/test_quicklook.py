"""Quicklooks: a raster drawn as a PNG in Web Mercator with its WGS84 bounds, colormap range,
histogram and statistics; rendered once and then read from storage."""

import asyncio
import contextlib
import dataclasses
import struct
import uuid
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio
from affine import Affine
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import create_async_engine

from cure.ccsi.models import Product
from cure.kit.db import make_sessionmaker
from cure.kit.state import state_of
from cure.quicklooks import render as quicklook
from cure.quicklooks import service as quicklook_service
from cure.quicklooks import styles
from cure.quicklooks.dependencies import RENDERS
from cure.quicklooks.renders import Renders
from cure.storage.dependencies import STORAGE
from tests.ccsi.factories import add_product, box
from tests.conftest import TEST_DATABASE_URL, loopback_address, started_app, until
from tests.factories import customer_with_token, order_body


def write_raster(path: Path, *, crs: str = "EPSG:3035") -> Path:
    """A 60 x 40 raster over Vienna in ETRS89-LAEA, warmer in the middle, no data on one edge."""
    values = np.fromfunction(lambda r, c: 10 - np.hypot(r - 20, c - 30) / 4, (40, 60)).astype(
        np.float32
    )
    values[:, :5] = -9999
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=60,
        height=40,
        count=1,
        dtype="float32",
        crs=crs,
        transform=Affine(100, 0, 4795000, 0, -100, 2810000),
        nodata=-9999,
    ) as raster:
        raster.write(values, 1)
    return path


def decode_png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, at = b"", 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        if kind == b"IDAT":
            chunks += data[at + 8 : at + 8 + length]
        at += 12 + length
    rows = np.frombuffer(zlib.decompress(chunks), dtype=np.uint8).reshape(height, width * 4 + 1)
    assert (rows[:, 0] == 0).all()  # unfiltered rows
    return rows[:, 1:].reshape(height, width, 4)


def test_a_raster_is_drawn_in_web_mercator_over_its_wgs84_bounds(tmp_path) -> None:
    png, description = quicklook.render(write_raster(tmp_path / "r.tif"), styles.STYLES["suhi"])
    pixels = decode_png(png)
    assert pixels.shape == (description["height"], description["width"], 4)
    west, south, east, north = description["bounds"]
    assert 16.2 < west < east < 16.5 and 48.1 < south < north < 48.3  # Vienna
    assert (pixels[..., 3] == 0).any() and (pixels[..., 3] == 255).any()  # no data is transparent
    low, high = description["range"]
    assert low == -high  # SUHI: symmetric about zero
    assert sum(description["histogram"]["counts"]) == description["statistics"]["count"] == 40 * 55
    assert len(description["histogram"]["edges"]) == quicklook.HISTOGRAM_BINS + 1
    assert description["colormap"]["stops"][0]["color"].startswith("#")


def test_ndvi_keeps_its_fixed_range_and_other_rasters_their_percentiles(tmp_path) -> None:
    path = write_raster(tmp_path / "r.tif")
    assert quicklook.render(path, styles.style_for("urban_green"))[1]["range"] == [-0.2, 0.9]
    low, high = quicklook.render(path, styles.style_for("unknown", None))[1]["range"]
    assert 0 < low < high < 10


def test_a_file_that_is_no_raster_is_refused(tmp_path) -> None:
    path = tmp_path / "not.tif"
    path.write_text("{}")
    with pytest.raises((ValueError, OSError)):
        quicklook.render(path, styles.DEFAULT_STYLE)


async def test_a_quicklook_is_rendered_once_then_read_from_storage(app, tmp_path) -> None:
    storage = state_of(app).need(STORAGE)
    key = f"results/{uuid.uuid4()}/1-1/suhi_intensity.tif"
    await storage.put_file(key, write_raster(tmp_path / "r.tif"), media_type="image/tiff")
    asset = quicklook_service.RasterAsset(key, styles.STYLES["suhi"], None)
    renders = Renders(concurrency=1, wait_seconds=10)
    first = await quicklook_service.quicklook_description(storage, renders, asset)
    png = await quicklook_service.quicklook_png(storage, renders, asset)
    assert sorted(await storage.keys(key)) == [
        key,
        f"{key}.quicklook-v{styles.STYLE_VERSION}.json",
        f"{key}.quicklook-v{styles.STYLE_VERSION}.png",
    ]
    await storage.delete([key])  # from now on only the cached quicklook can answer
    assert await quicklook_service.quicklook_description(storage, renders, asset) == first
    assert await quicklook_service.quicklook_png(storage, renders, asset) == png
    assert renders.flight.runs == 1


# -- renders hold no database connection, are bounded, and are done once ------------------------


class GatedStorage:
    """The app's real storage, except that reads of one key wait until the test lets them go:
    the test holds a request in the middle of its storage I/O for as long as it likes."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.gated: str | None = None
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def _gate(self, key: str) -> None:
        if key == self.gated:
            self.entered.set()
            await self.release.wait()

    async def keys(self, prefix: str) -> list[str]:
        await self._gate(prefix)
        return await self.inner.keys(prefix)  # type: ignore[attr-defined,no-any-return]

    async def get_file(self, key: str, path: Path) -> None:
        await self._gate(key)
        await self.inner.get_file(key, path)  # type: ignore[attr-defined]

    async def read(self, key: str) -> bytes | None:
        await self._gate(key)
        return await self.inner.read(key)  # type: ignore[attr-defined,no-any-return]


@contextlib.asynccontextmanager
async def gated_app(settings, *, pool_of_one: bool = True, **overrides):  # type: ignore[no-untyped-def]
    """An API of the test's own whose storage is gated and (by default) whose requests share a
    pool of ONE database connection: a request that held it across storage I/O would leave
    every other request waiting (for at most pool_timeout, then failing)."""
    async with started_app(settings.model_copy(update=overrides)) as api:
        engine = create_async_engine(TEST_DATABASE_URL, pool_size=1, max_overflow=0, pool_timeout=3)
        state = state_of(api)
        if pool_of_one:
            state.resources = dataclasses.replace(
                state.db,
                sessionmaker=make_sessionmaker(engine),
                read_sessionmaker=make_sessionmaker(
                    engine.execution_options(isolation_level="AUTOCOMMIT")
                ),
            )
        state.put(STORAGE, GatedStorage(state.need(STORAGE)))
        try:
            yield api
        finally:
            await engine.dispose()


@contextlib.asynccontextmanager
async def http_of(api):  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=api, client=(loopback_address(), 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
        yield http


async def _public_raster_product(api, tmp_path: Path, collection: str, **fields):  # type: ignore[no-untyped-def]
    """A committed public product with a GeoTIFF asset "data" in storage; returns it."""
    key = f"inputs/test/{uuid.uuid4()}/lst.tif"
    await (
        state_of(api)
        .need(STORAGE)
        .inner.put_file(
            key, write_raster(tmp_path / f"{uuid.uuid4().hex}.tif"), media_type="image/tiff"
        )
    )
    assets = {"data": {"href": key, "type": "image/tiff; application=geotiff"}}
    async with state_of(api).db.sessionmaker() as session:
        product = await add_product(
            session, collection, assets={**assets, **fields.pop("assets", {})}, **fields
        )
        await session.commit()
    return product, key


async def _remove(api, collection: str) -> None:  # type: ignore[no-untyped-def]
    async with state_of(api).db.sessionmaker() as session:
        await session.execute(delete(Product).where(Product.collection == collection))
        await session.commit()


async def test_renders_release_the_connection_and_run_once_for_simultaneous_requests(
    settings, tmp_path: Path
) -> None:
    collection = f"ql-{uuid.uuid4().hex[:12]}"
    async with gated_app(settings) as api, http_of(api) as http:
        _, headers = await customer_with_token(http)
        order = await http.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
        assert order.status_code == 202, order.text
        product, key = await _public_raster_product(api, tmp_path, collection)
        try:
            state_of(api).need(STORAGE).gated = key  # the render's read of the raster waits
            path = f"/v1/ccsi/{collection}/products/{product.identifier}/assets/data/quicklook"
            first = asyncio.create_task(http.get(path))
            await asyncio.wait_for(state_of(api).need(STORAGE).entered.wait(), 15)
            second = asyncio.create_task(http.get(f"{path}.png"))

            # While the render reads storage, the only connection is free for others.
            status = await http.get(f"/v1/orders/{order.json()['order_id']}", headers=headers)
            assert status.status_code == 200, status.text

            renders = state_of(api).need(RENDERS)
            await until(lambda: renders.flight.joins == 1)  # the image awaits the same render
            state_of(api).need(STORAGE).release.set()
            described, image = await asyncio.gather(first, second)
            assert described.status_code == 200, described.text
            assert image.status_code == 200 and image.content[:4] == b"\x89PNG"
            assert renders.flight.runs == 1
            assert (
                await state_of(api).need(STORAGE).inner.read(f"{key}.quicklook-v1.json") is not None
            )
        finally:
            await _remove(api, collection)


async def test_renders_beyond_the_cap_wait_briefly_then_answer_503(settings, tmp_path) -> None:
    collection = f"ql-{uuid.uuid4().hex[:12]}"
    async with (
        gated_app(
            settings, pool_of_one=False, quicklook_concurrency=1, quicklook_wait_seconds=0.2
        ) as api,
        http_of(api) as http,
    ):
        held, held_key = await _public_raster_product(api, tmp_path, collection)
        other, _ = await _public_raster_product(api, tmp_path, collection)
        try:
            state_of(api).need(STORAGE).gated = held_key
            base = f"/v1/ccsi/{collection}/products"
            first = asyncio.create_task(http.get(f"{base}/{held.identifier}/assets/data/quicklook"))
            await asyncio.wait_for(
                state_of(api).need(STORAGE).entered.wait(), 15
            )  # it holds the slot

            busy = await http.get(f"{base}/{other.identifier}/assets/data/quicklook")
            assert busy.status_code == 503, busy.text
            assert busy.json()["error"] == "QuicklookBusy" and busy.headers["Retry-After"]

            state_of(api).need(STORAGE).release.set()
            assert (await first).status_code == 200
            later = await http.get(f"{base}/{other.identifier}/assets/data/quicklook")
            assert later.status_code == 200, later.text
        finally:
            await _remove(api, collection)


async def test_a_storyline_reads_storage_without_holding_a_connection(settings, tmp_path) -> None:
    """berlin-green's demonstration product, published for the test: while the storyline's
    statistics are read from storage, the pool's only connection serves other requests."""
    async with gated_app(settings) as api, http_of(api) as http:
        _, headers = await customer_with_token(http)
        order = await http.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
        metadata = f"results/test/{uuid.uuid4()}/metadata.json"
        await (
            state_of(api)
            .need(STORAGE)
            .inner.put(metadata, b'{"mean_ndvi": 0.42}', media_type="application/json")
        )
        collection = "cure-urban_green"
        product, _ = await _public_raster_product(
            api,
            tmp_path,
            collection,
            identifier=f"urban_green-test-{uuid.uuid4().hex[:8]}",
            product_type="urban_green",
            footprint=box(13.32, 52.46, 13.49, 52.58),
            start="2024-07-15T10:00:00Z",
            properties={"app_id": "urban_green", "params": {"green_threshold": 0.4}},
            assets={"metadata": {"href": metadata, "type": "application/json"}},
        )
        try:
            state_of(api).need(STORAGE).gated = metadata
            story = asyncio.create_task(http.get("/v1/portal/storylines/berlin-green"))
            await asyncio.wait_for(state_of(api).need(STORAGE).entered.wait(), 15)
            status = await http.get(f"/v1/orders/{order.json()['order_id']}", headers=headers)
            assert status.status_code == 200, status.text
            state_of(api).need(STORAGE).release.set()
            read = (await story).json()["products"]["green"]
            assert read["identifier"] == product.identifier
            assert read["statistics"] == {"mean_ndvi": 0.42}
        finally:
            async with state_of(api).db.sessionmaker() as session:
                await session.execute(delete(Product).where(Product.id == product.id))
                await session.commit()
