"""Staging by window, against the federation's scene server and the S3 test server: a remote
Cloud-Optimized GeoTIFF is read only where the order's region lies (range requests over HTTP, or
from s3:// with the source's keys), other files whole and once; transfers are tried again on 429,
5xx and broken connections, then fail naming the source and the asset; the cache serves a second
order over the same district with no transfer."""

import hashlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds
from rasterio.windows import from_bounds
from shapely.geometry import shape

from cure.ccsi.sources.auth import SourceAuth, source_auth
from cure.ccsi.sources.schemas import SourceDocument
from cure.kit.state import state_of
from cure.workers import remote, staging, windows
from tests.federation import conftest as federation
from tests.federation import sourcing
from tests.federation.conftest import Scenes
from tests.federation.items import multihash_sha512
from tests.federation.servers import SceneServer

COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"

# The federation's session fixtures: its scene files, their range-honouring server, moto's copies.
scene_files = federation.scene_files
scene_server = federation.scene_server
scenes = federation.scenes


@pytest.fixture
def server(scene_server: SceneServer) -> Iterator[SceneServer]:
    """The session's scene server, its counts and failures reset, left up."""
    scene_server.reset()
    yield scene_server
    scene_server.reset()
    scene_server.up()


@pytest.fixture
def district(scenes: Scenes) -> dict[str, Any]:
    geometry: dict[str, Any] = scenes.districts["clear"].geometry
    return geometry


@pytest.fixture
def remote_settings(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(
        update={
            "input_hosts": ["127.0.0.1"],
            "allow_private_inputs": True,
            "stage_retries": 3,
            "stage_retry_base_seconds": 0.01,
            "stage_timeout_seconds": 60,
        }
    )


@pytest.fixture
def cache(tmp_path: Path) -> staging.InputCache:
    return staging.InputCache(tmp_path / "cache", max_bytes=256 << 20)


def product(assets: dict[str, dict[str, Any]], *, source: str = "earth") -> staging.FoundProduct:
    return staging.FoundProduct(
        "reflectance",
        {
            "type": "Feature",
            "properties": {
                "collection": "sentinel2-l2a",
                "identifier": "S2B_33UXP_20260714_0_L2A",
                "start": "2026-07-14T09:56:21Z",
                "end": "2026-07-14T09:56:21Z",
                "source": source,
                "cloudCover": 8.3,
                "s2:processing_baseline": "05.10",
                "eo:bands": [{"name": "B04"}],
                "assets": assets,
            },
        },
    )


def band(href: str, **extra: Any) -> dict[str, Any]:
    return {"href": href, "type": COG_TYPE, "roles": ["data"], **extra}


def document(**auth: Any) -> SourceDocument:
    return SourceDocument.model_validate(
        {
            "name": "earth",
            "kind": "stac",
            "url": "https://stac.example.org/v1",
            "auth": auth or {"type": "none"},
            "collections": {
                "sentinel2-l2a": {
                    "remote": "sentinel-2-l2a",
                    "product_type": "S2MSI2A",
                    "assets": {"red": "red"},
                }
            },
        }
    )


def loader(*, max_parallel: int = 4, auth: SourceAuth | None = None) -> staging.SourceLoader:
    async def load(name: str) -> remote.Source:
        return remote.Source(name, max_parallel, auth or source_auth(document()))

    return load


class ExpiringToken(SourceAuth):
    """A source whose first token has expired: the next one, after a 401, is accepted."""

    def __init__(self, tokens: list[str]) -> None:
        super().__init__("earth")
        self.tokens = tokens
        self.refreshes = 0

    async def headers(self, *, refresh: bool = False) -> dict[str, str]:
        if refresh:
            await self.refresh()
        return {"Authorization": f"Bearer {self.tokens[min(self.refreshes, len(self.tokens) - 1)]}"}

    async def refresh(self) -> None:
        self.refreshes += 1


async def stage(settings, cache, products, into: Path, roi, **options):  # type: ignore[no-untyped-def]
    return await staging.stage(
        settings,
        storage=None,  # type: ignore[arg-type]  (no local product: the bucket is not asked)
        products=products,
        cache=cache,
        into=into,
        roi=roi,
        sources=options.pop("sources", None) or loader(),
        **options,
    )


def assert_is_the_window(staged: Path, tile: Path, roi: dict[str, Any]) -> None:
    """Georeferenced as the tile, covering the region, with the tile's own values there."""
    with rasterio.open(staged) as cut, rasterio.open(tile) as whole:
        assert cut.crs == whole.crs and cut.dtypes == whole.dtypes and cut.nodata == whole.nodata
        assert (cut.transform.a, cut.transform.e) == (whole.transform.a, whole.transform.e)
        west, south, east, north = transform_bounds(
            "EPSG:4326", cut.crs, *shape(roi).bounds, densify_pts=21
        )
        assert cut.bounds.left <= west and cut.bounds.right >= east
        assert cut.bounds.bottom <= south and cut.bounds.top >= north
        assert cut.width < whole.width // 4 and cut.height < whole.height // 4
        same = from_bounds(*cut.bounds, transform=whole.transform)
        np.testing.assert_array_equal(cut.read(1), whole.read(1, window=same))


# -- by window -------------------------------------------------------------------------------


async def test_a_district_is_staged_by_window_and_the_second_time_from_the_cache(
    remote_settings, cache, server, scenes, district, tmp_path
) -> None:
    tile = scenes.files.s2.red
    red = band(scenes.urls["red"], scale=0.0001, offset=-0.1, nodata=0)
    products = [product({"red": red})]
    first = await stage(remote_settings, cache, products, tmp_path / "one", district)

    served = server.bytes_served(scenes.urls["red"])
    assert 0 < served < tile.stat().st_size / 10  # the district's tiles, not the tile
    assert first.transferred == served and (first.fetched, first.from_cache) == (1, 0)
    staged = first.files["inputs/reflectance/red.tif"]
    assert_is_the_window(staged, tile, district)
    with rasterio.open(staged) as cut:
        assert (cut.scales, cut.offsets) == ((0.0001,), (-0.1,))
        assert cut.tags(1)["scale"] == "0.0001" and cut.tags(1)["offset"] == "-0.1"
    [described] = first.described["reflectance"]
    assert described == {
        "collection": "sentinel2-l2a",
        "identifier": "S2B_33UXP_20260714_0_L2A",
        "start": "2026-07-14T09:56:21Z",
        "end": "2026-07-14T09:56:21Z",
        "source": "earth",
        "cloud_cover": 8.3,
        "properties": {"s2:processing_baseline": "05.10"},
        "assets": {"red": "inputs/reflectance/red.tif"},
        "values": {
            "red": {
                "path": "inputs/reflectance/red.tif",
                "media_type": "image/tiff",
                "windowed": True,
                "scale": 0.0001,
                "offset": -0.1,
                "nodata": 0.0,
            }
        },
    }

    # The same district again (another order, another run folder): nothing is transferred.
    second = await stage(remote_settings, cache, products, tmp_path / "two", district)
    assert server.bytes_served(scenes.urls["red"]) == served
    assert (second.transferred, second.from_cache) == (0, 1)
    assert second.described == first.described
    assert_is_the_window(second.files["inputs/reflectance/red.tif"], tile, district)


async def test_a_file_changed_at_the_source_is_read_again(
    remote_settings, cache, server, scenes, district, tmp_path
) -> None:
    copy = tmp_path / "B04.tif"
    shutil.copyfile(scenes.files.s2.red, copy)
    href = server.publish(copy, "changing/B04.tif")
    products = [product({"red": band(href)})]
    await stage(remote_settings, cache, products, tmp_path / "one", district)
    served = server.bytes_served(href)
    copy.touch()  # a new ETag and Last-Modified
    again = await stage(remote_settings, cache, products, tmp_path / "two", district)
    assert again.from_cache == 0 and server.bytes_served(href) == 2 * served


async def test_a_window_from_s3_with_the_sources_keys(
    remote_settings, cache, scenes, district, tmp_path
) -> None:
    keys = source_auth(
        document(
            type="s3",
            endpoint_url=scenes.s3_endpoint,
            access_key_id="testing",
            secret_access_key="testing",
        )
    )
    products = [product({"red": band(scenes.s3["red"])})]
    first = await stage(
        remote_settings, cache, products, tmp_path / "one", district, sources=loader(auth=keys)
    )
    assert 0 < first.transferred < scenes.files.s2.red.stat().st_size / 10
    assert_is_the_window(first.files["inputs/reflectance/red.tif"], scenes.files.s2.red, district)
    second = await stage(
        remote_settings, cache, products, tmp_path / "two", district, sources=loader(auth=keys)
    )
    assert (second.transferred, second.from_cache) == (0, 1)

    # The S3 endpoint is held to the guard like any host: a loopback one only where allowed.
    closed = remote_settings.model_copy(update={"allow_private_inputs": False})
    with pytest.raises(staging.InputRefused, match="S3 endpoint of the source earth is refused"):
        await stage(
            closed, cache, products, tmp_path / "three", district, sources=loader(auth=keys)
        )


async def test_landsat_from_a_requester_pays_bucket(
    remote_settings, cache, scenes, tmp_path
) -> None:
    keys = source_auth(
        document(
            type="s3",
            endpoint_url=scenes.s3_endpoint,
            access_key_id="testing",
            secret_access_key="testing",
            requester_pays=True,
        )
    )
    lst = band(scenes.s3["lwir11"], scale=0.00341802, offset=149.0, nodata=0)
    staged = await stage(
        remote_settings,
        cache,
        [product({"lst": lst})],
        tmp_path / "one",
        scenes.districts["clear"].geometry,
        sources=loader(auth=keys),
    )
    path = staged.files["inputs/reflectance/lst.tif"]
    assert_is_the_window(path, scenes.files.landsat.lwir11, scenes.districts["clear"].geometry)
    values = staged.described["reflectance"][0]["values"]["lst"]
    assert (values["scale"], values["offset"], values["nodata"]) == (0.00341802, 149.0, 0.0)


# -- when sources fail -----------------------------------------------------------------------


async def test_transfers_are_tried_again_on_503_429_and_broken_connections(
    remote_settings, cache, server, scenes, district, tmp_path
) -> None:
    server.fail(503)
    server.fail(429, retry_after=0)
    server.fail("drop")
    products = [product({"red": band(scenes.urls["red"])})]
    staged = await stage(remote_settings, cache, products, tmp_path / "one", district)
    assert server.failures == []  # all three were met, and then it went on
    assert_is_the_window(staged.files["inputs/reflectance/red.tif"], scenes.files.s2.red, district)


async def test_a_source_that_stays_down_fails_the_stage_naming_the_source_and_asset(
    remote_settings, cache, server, scenes, district, tmp_path
) -> None:
    server.fail(503, times=50)
    href = scenes.urls["red"] + "?X-Signature=very-secret"
    products = [product({"red": band(href)})]
    with pytest.raises(staging.InputRefused) as refused:
        await stage(remote_settings, cache, products, tmp_path / "one", district)
    message = str(refused.value)
    assert "the source earth did not deliver the asset red of S2B_33UXP_20260714_0_L2A" in message
    assert scenes.urls["red"] in message and "answered 503 (after 4 tries)" in message
    assert "very-secret" not in message
    assert server.requests_for(scenes.urls["red"]) == 4  # stage_retries (3) more after the first
    assert not list((tmp_path / "cache").iterdir())  # no partial left

    # Nothing listens any more: the same, after as many tries.
    server.reset()
    server.down()
    with pytest.raises(staging.InputRefused, match=r"connection broke \(ConnectError\)"):
        await stage(remote_settings, cache, products, tmp_path / "two", district)
    server.up()

    # A Retry-After past the stage deadline is not waited for.
    server.fail(503, retry_after=3600)
    with pytest.raises(staging.InputRefused, match="would pass the stage deadline"):
        await stage(remote_settings, cache, products, tmp_path / "three", district)


async def test_the_sources_token_is_sent_and_refreshed_on_401(
    remote_settings, cache, server, scenes, district, tmp_path
) -> None:
    server.bearer = "fresh"
    token = ExpiringToken(["expired", "fresh"])
    products = [product({"red": band(scenes.urls["red"])})]
    staged = await stage(
        remote_settings, cache, products, tmp_path / "one", district, sources=loader(auth=token)
    )
    assert token.refreshes == 1
    assert_is_the_window(staged.files["inputs/reflectance/red.tif"], scenes.files.s2.red, district)


@pytest.fixture
def redirects(scene_server: SceneServer) -> Iterator[str]:
    """A server that redirects /elsewhere/<path> to the scene server under a name that is not
    allowed (localhost) and /here/<path> to it at the allowed address."""
    target = scene_server

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            _, kind, rest = self.path.split("/", 2)
            host = "localhost" if kind == "elsewhere" else "127.0.0.1"
            self.send_response(302)
            self.send_header("Location", f"http://{host}:{target.port}/{rest}")
            self.send_header("Content-Length", "0")
            self.end_headers()

    redirecting = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=redirecting.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{redirecting.server_address[1]}"
    redirecting.shutdown()
    redirecting.server_close()


async def test_hosts_outside_the_allowed_list_are_refused_redirects_included(
    remote_settings, cache, server, scenes, district, redirects, tmp_path
) -> None:
    name = scenes.urls["red"].split("/", 3)[3]
    elsewhere = [product({"red": band(f"http://localhost:{server.port}/{name}")})]
    with pytest.raises(staging.InputRefused, match="localhost of the source earth is not one"):
        await stage(remote_settings, cache, elsewhere, tmp_path / "one", district)
    closed = remote_settings.model_copy(update={"allow_private_inputs": False})
    products = [product({"red": band(scenes.urls["red"])})]
    with pytest.raises(staging.InputRefused, match="non-public"):
        await stage(closed, cache, products, tmp_path / "two", district)
    redirected = [product({"red": band(f"{redirects}/elsewhere/{name}")})]
    with pytest.raises(staging.InputRefused, match="localhost of the source earth is not one"):
        await stage(remote_settings, cache, redirected, tmp_path / "three", district)
    assert server.requests_for(scenes.urls["red"]) == 0

    followed = [product({"red": band(f"{redirects}/here/{name}")})]
    staged = await stage(remote_settings, cache, followed, tmp_path / "four", district)
    assert_is_the_window(staged.files["inputs/reflectance/red.tif"], scenes.files.s2.red, district)


async def test_at_most_max_parallel_transfers_of_a_source_at_once(
    remote_settings, cache, server, scenes, district, tmp_path
) -> None:
    assets = {key: band(scenes.urls[key]) for key in ("red", "nir", "scl")}
    await stage(
        remote_settings,
        cache,
        [product(assets)],
        tmp_path / "one",
        district,
        sources=loader(max_parallel=1),
    )
    assert server.most_at_once == 1
    # The SCL is smaller than the first read: its tiles come from that read, no byte twice.
    assert server.bytes_served(scenes.urls["scl"]) == scenes.files.s2.scl.stat().st_size
    server.reset()
    other = staging.InputCache(tmp_path / "other-cache", max_bytes=256 << 20)
    await stage(
        remote_settings,
        other,
        [product(assets)],
        tmp_path / "two",
        district,
        sources=loader(max_parallel=2),
    )
    assert server.most_at_once <= 2


# -- whole files -----------------------------------------------------------------------------


async def test_a_file_that_is_not_a_cog_is_downloaded_whole_once_and_verified(
    remote_settings, cache, server, scenes, district, tmp_path
) -> None:
    mtl = scenes.files.landsat.mtl_json
    asset = {
        "href": scenes.urls["mtl.json"],
        "type": "application/json",
        "size": mtl.stat().st_size,
        "checksum": multihash_sha512(mtl),  # STAC's file:checksum, here a sha2-512 multihash
    }
    products = [product({"mtl": asset})]
    first = await stage(remote_settings, cache, products, tmp_path / "one", district)
    staged = first.files["inputs/reflectance/mtl.json"]
    assert staged.read_bytes() == mtl.read_bytes()
    assert server.bytes_served(scenes.urls["mtl.json"]) == mtl.stat().st_size
    assert first.described["reflectance"][0]["values"]["mtl"]["windowed"] is False
    second = await stage(remote_settings, cache, products, tmp_path / "two", district)
    assert (second.transferred, second.from_cache) == (0, 1)
    assert server.bytes_served(scenes.urls["mtl.json"]) == mtl.stat().st_size

    # Known by its sha256 (CURE's form, or a sha2-256 multihash): not even asked again.
    metadata = scenes.files.s2.product_metadata
    digest = hashlib.sha256(metadata.read_bytes()).hexdigest()
    xml = {"href": scenes.urls["product_metadata"], "type": "application/xml"}
    for number, checksum in enumerate((f"1220{digest}", f"sha256:{digest}")):
        again = [product({"metadata": {**xml, "checksum": checksum}})]
        await stage(remote_settings, cache, again, tmp_path / f"xml-{number}", district)
    assert server.requests_for(scenes.urls["product_metadata"]) == 1

    # Bytes that are not the catalogue's are refused, and nothing of them is kept.
    wrong = [product({"mtl": {**asset, "checksum": multihash_sha512(metadata)}})]
    kept = sorted(p.name for p in (tmp_path / "cache").iterdir())
    with pytest.raises(staging.InputRefused, match="not the catalogue's checksum"):
        await stage(remote_settings, cache, wrong, tmp_path / "three", district)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == kept

    # A checksum form no one can check is refused, not ignored.
    unknown = [product({"mtl": {**asset, "checksum": "blake3:abc"}})]
    with pytest.raises(staging.InputRefused, match="cannot check"):
        await stage(remote_settings, cache, unknown, tmp_path / "four", district)


async def test_a_broken_download_resumes_where_it_stopped(
    remote_settings, cache, server, scenes, district, tmp_path
) -> None:
    data = scenes.files.s2.thumbnail.read_bytes()
    asset = {
        "href": scenes.urls["thumbnail"],
        "type": "image/jpeg",
        "checksum": f"sha256:{hashlib.sha256(data).hexdigest()}",  # no probe: the GET comes first
    }
    server.fail("cut")
    staged = await stage(
        remote_settings, cache, [product({"thumbnail": asset})], tmp_path / "one", district
    )
    assert staged.files["inputs/reflectance/thumbnail.jpg"].read_bytes() == data
    path = "/" + scenes.urls["thumbnail"].split("/", 3)[3]
    assert [r for p, r in server.ranges if p == path] == ["", f"bytes={len(data) // 2}-"]
    assert server.bytes_served(scenes.urls["thumbnail"]) == len(data)  # no byte twice


async def test_only_the_assets_the_app_reads_are_staged(
    remote_settings, cache, server, scenes, district, tmp_path
) -> None:
    assets = {
        key: {"href": scenes.urls[name], "type": "application/json"}
        for key, name in (("mtl", "mtl.json"), ("metadata", "product_metadata"))
    }
    found = product(assets)
    wanted = staging.FoundProduct(found.role, found.feature, ("mtl", "cloud"))
    staged = await stage(remote_settings, cache, [wanted], tmp_path / "one", district)
    assert sorted(staged.files) == ["inputs/reflectance/mtl.json"]
    assert staged.described["reflectance"][0]["assets"] == {"mtl": "inputs/reflectance/mtl.json"}
    assert server.requests_for(scenes.urls["product_metadata"]) == 0


# -- rules -----------------------------------------------------------------------------------


def test_what_is_read_by_window() -> None:
    assert windows.is_cloud_optimized({"href": "s3://b/x.jp2", "type": COG_TYPE})
    assert windows.is_cloud_optimized({"href": "https://h/B04.tif"})
    assert not windows.is_cloud_optimized({"href": "https://h/B04.tif", "checksum": "1220ab"})
    assert not windows.is_cloud_optimized({"href": "https://h/S2.zip", "type": "application/zip"})
    assert not windows.is_cloud_optimized(
        {"href": "https://h/x.nc", "type": "application/x-netcdf"}
    )


def test_checksums_as_stac_and_cure_give_them() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert staging.parse_checksum(f"1220{digest}") == ("sha256", digest)
    assert staging.parse_checksum(f"sha256:{digest}") == ("sha256", digest)
    md5 = hashlib.md5(b"x").hexdigest()  # noqa: S324
    assert staging.parse_checksum(f"d50110{md5}") == ("md5", md5)
    assert staging.parse_checksum(None) is None
    with pytest.raises(staging.InputRefused):
        staging.parse_checksum("1220abc")


async def test_the_worker_loads_a_registered_source_with_its_secrets(
    app, sessionmaker, remote_settings, cache, scenes, district, tmp_path
) -> None:
    name = sourcing.source_name("keys")
    sealed = {
        **sourcing.stac_source("https://stac.example.org/v1", name=name),
        "max_parallel": 2,
        "auth": {
            "type": "s3",
            "endpoint_url": scenes.s3_endpoint,
            "access_key_id": "testing",
            "secret_access_key": "testing",
        },
    }
    products = [product({"red": band(scenes.s3["red"])}, source=name)]
    load = staging.source_loader(remote_settings, state_of(app).db.engine)
    async with sourcing.registered(app, sessionmaker, sealed):
        first = await load(name)
        assert (first.name, first.max_parallel) == (name, 2)
        assert first.auth is not None and first.auth.s3().access_key_id == "testing"
        assert await load(name) is first  # the same version: the same credentials (and token)
        staged = await stage(
            remote_settings, cache, products, tmp_path / "one", district, sources=load
        )
        assert_is_the_window(
            staged.files["inputs/reflectance/red.tif"], scenes.files.s2.red, district
        )
    # Removed (or disabled) since the search: the order cannot be staged, and says why.
    with pytest.raises(staging.InputRefused, match=f"the source {name} is not an enabled"):
        await stage(remote_settings, cache, products, tmp_path / "two", district, sources=load)


class Signing(SourceAuth):
    """A source that signs its hrefs (a query that changes at each signing)."""

    signs_hrefs = True

    def __init__(self) -> None:
        super().__init__("earth")
        self.signed: list[str] = []

    async def sign(self, href: str) -> str:
        self.signed.append(href)
        return f"{href}?sig={len(self.signed)}"


async def test_a_signing_sources_hrefs_are_signed_and_cached_without_their_query(
    remote_settings, cache, server, scenes, district, tmp_path
) -> None:
    signing = Signing()
    products = [product({"red": band(scenes.urls["red"])})]
    first = await stage(
        remote_settings, cache, products, tmp_path / "one", district, sources=loader(auth=signing)
    )
    assert set(signing.signed) == {scenes.urls["red"]}
    assert_is_the_window(first.files["inputs/reflectance/red.tif"], scenes.files.s2.red, district)
    requests = server.requests_for(scenes.urls["red"])
    second = await stage(
        remote_settings, cache, products, tmp_path / "two", district, sources=loader(auth=signing)
    )
    # A signed link is for GET only: no HEAD, and the window is known by its href alone.
    assert second.from_cache == 1 and server.requests_for(scenes.urls["red"]) == requests
