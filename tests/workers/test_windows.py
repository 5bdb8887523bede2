"""Staging by window: a remote Cloud-Optimized GeoTIFF is read only where the order's region
lies (range requests over HTTP, or from s3:// with the source's keys), other files whole and
once; transfers are tried again on 429, 5xx and broken connections, then fail naming the source
and the asset; the cache serves a second order over the same district with no transfer."""

import hashlib
import http.server
import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds
from rasterio.windows import from_bounds
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles

from cure.workers import remote, staging, windows

COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
# A 30 km tile at 10 m in UTM 33N (3000 x 3000 pixels, 256-pixel tiles) and a district in it.
ORIGIN = (399960.0, 5800020.0)
SIZE = 3000
DISTRICT_UTM = (412000.0, 5785000.0, 414000.0, 5787000.0)  # 2 km x 2 km


# -- a range-honouring HTTP server of the test's own ------------------------------------------


@dataclass
class Scenes:
    """What the server did: body bytes served and requests per path, most at once; what it
    should do next (``failures``: statuses with headers, or "drop" to break the connection)."""

    root: Path
    port: int = 0
    served: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    failures: list[Any] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)  # the Range header of each GET
    bearer: str | None = None  # when set, requests must carry it
    in_flight: int = 0
    most_at_once: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


def _handler(scenes: Scenes) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            path = self.path.split("?", 1)[0]
            with scenes.lock:
                scenes.requests[path] += 1
                scenes.in_flight += 1
                scenes.most_at_once = max(scenes.most_at_once, scenes.in_flight)
                failure = scenes.failures.pop(0) if scenes.failures else None
            try:
                self._serve(path, failure, body=body)
            finally:
                with scenes.lock:
                    scenes.in_flight -= 1

        def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _serve(self, path: str, failure: Any, *, body: bool) -> None:
            threading.Event().wait(0.005)  # room for requests to overlap
            if failure == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if failure is not None and failure != "cut":
                self._empty(*failure)
                return
            if scenes.bearer and self.headers.get("Authorization") != f"Bearer {scenes.bearer}":
                self._empty(401)
                return
            if path.startswith("/elsewhere/"):  # to a host that is not allowed
                moved = f"http://localhost:{scenes.port}/{path.split('/', 2)[2]}"
                self._empty(302, {"Location": moved})
                return
            if path.startswith("/here/"):  # to the same host
                self._empty(307, {"Location": f"/{path.split('/', 2)[2]}"})
                return
            file = scenes.root / path.lstrip("/")
            if not file.is_file():
                self._empty(404)
                return
            data = file.read_bytes()
            status, start, end = 200, 0, len(data) - 1
            if body:
                with scenes.lock:
                    scenes.ranges.append(self.headers.get("Range") or "")
            asked = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
            if asked:
                status, start = 206, int(asked.group(1))
                end = min(int(asked.group(2) or end), end)
            self.send_response(status)
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("ETag", f'"{file.stat().st_mtime_ns:x}"')
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.end_headers()
            if body and failure == "cut":  # half the body, then the connection breaks
                half = data[start : start + (end - start + 1) // 2]
                self.wfile.write(half)
                self.wfile.flush()
                with scenes.lock:
                    scenes.served[path] += len(half)
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if body:
                self.wfile.write(data[start : end + 1])
                with scenes.lock:
                    scenes.served[path] += end - start + 1

    return Handler


@pytest.fixture
def scenes(tile: Path, tmp_path: Path) -> Iterator[Scenes]:
    root = tmp_path / "scenes"
    root.mkdir()
    (root / "B04.tif").write_bytes(tile.read_bytes())
    found = Scenes(root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(found))
    found.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()


# -- files ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Sentinel-2-like band as a COG: uint16 reflectance, nodata 0, deflate, 256-pixel tiles,
    overviews; random values, so no tile compresses away."""
    folder = tmp_path_factory.mktemp("tile")
    plain, cog = folder / "plain.tif", folder / "B04.tif"
    values = np.random.default_rng(19).integers(1, 10000, (SIZE, SIZE), dtype="uint16")
    profile = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": 1,
        "dtype": "uint16",
        "crs": "EPSG:32633",
        "transform": from_origin(*ORIGIN, 10, 10),
        "nodata": 0,
    }
    with rasterio.open(plain, "w", **profile) as out:
        out.write(values, 1)
    cog_profile = {**cog_profiles.get("deflate"), "blockxsize": 256, "blockysize": 256}
    cog_translate(plain, cog, cog_profile, quiet=True)
    return cog


def district() -> dict[str, Any]:
    west, south, east, north = transform_bounds("EPSG:32633", "EPSG:4326", *DISTRICT_UTM)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def product(assets: dict[str, dict[str, Any]], *, source: str = "scenes") -> staging.FoundProduct:
    return staging.FoundProduct(
        "reflectance",
        {
            "type": "Feature",
            "properties": {
                "collection": "sentinel2-l2a",
                "identifier": "S2B_33UVP_20240812_0_L2A",
                "start": "2024-08-12T10:05:59Z",
                "end": "2024-08-12T10:05:59Z",
                "source": source,
                "cloudCover": 12.4,
                "s2:processing_baseline": "05.10",
                "eo:bands": [{"name": "B04"}],
                "assets": assets,
            },
        },
    )


def band(href: str, **extra: Any) -> dict[str, Any]:
    return {"href": href, "type": COG_TYPE, "roles": ["data"], **extra}


class Token:
    """A source's OAuth2-like credentials: a new token on refresh."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.refreshes = 0

    signs_hrefs = False

    async def headers(self, *, refresh: bool = False) -> dict[str, str]:
        if refresh:
            self.refreshes += 1
        return {"Authorization": f"Bearer {self.tokens[min(self.refreshes, len(self.tokens) - 1)]}"}

    async def sign(self, href: str) -> str:
        return href

    def s3(self) -> remote.S3Access | None:
        return None


class Keys:
    """A source's S3 keys."""

    signs_hrefs = False

    def __init__(self, access: remote.S3Access) -> None:
        self.access = access

    async def headers(self, *, refresh: bool = False) -> dict[str, str]:
        return {}

    async def sign(self, href: str) -> str:
        return href

    def s3(self) -> remote.S3Access | None:
        return self.access


def loader(*, max_parallel: int = 4, auth: Any = None) -> staging.SourceLoader:
    async def load(name: str) -> remote.Source:
        return remote.Source(name=name, max_parallel=max_parallel, auth=auth)

    return load


@pytest.fixture
def remote_settings(settings, tmp_path: Path):  # type: ignore[no-untyped-def]
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


async def stage(settings, cache, products, into: Path, **options):  # type: ignore[no-untyped-def]
    return await staging.stage(
        settings,
        storage=None,  # type: ignore[arg-type]  (no local product: the bucket is not asked)
        products=products,
        cache=cache,
        into=into,
        roi=district(),
        sources=options.pop("sources", None) or loader(),
        **options,
    )


def assert_is_the_district(staged: Path, tile: Path) -> None:
    """Georeferenced as the tile, covering the district, with the tile's own values there."""
    with rasterio.open(staged) as cut, rasterio.open(tile) as whole:
        assert cut.crs == whole.crs and cut.dtypes == whole.dtypes and cut.nodata == whole.nodata
        assert (cut.transform.a, cut.transform.e) == (whole.transform.a, whole.transform.e)
        west, south, east, north = transform_bounds(
            "EPSG:4326", cut.crs, *staged_region_bounds(), densify_pts=21
        )
        assert cut.bounds.left <= west and cut.bounds.right >= east
        assert cut.bounds.bottom <= south and cut.bounds.top >= north
        assert cut.width < whole.width // 4 and cut.height < whole.height // 4
        same = from_bounds(*cut.bounds, transform=whole.transform)
        np.testing.assert_array_equal(cut.read(1), whole.read(1, window=same))


def staged_region_bounds() -> tuple[float, float, float, float]:
    from shapely.geometry import shape

    west, south, east, north = shape(district()).bounds
    return west, south, east, north


# -- tests ------------------------------------------------------------------------------------


async def test_a_district_is_staged_by_window_and_the_second_time_from_the_cache(
    remote_settings, cache, scenes, tile, tmp_path
) -> None:
    products = [product({"red": band(scenes.url("B04.tif"), scale=0.0001, offset=-0.1)})]
    first = await stage(remote_settings, cache, products, tmp_path / "one")

    size = tile.stat().st_size
    served = scenes.served["/B04.tif"]
    assert 0 < served < size / 10, (served, size)  # the district's tiles, not the tile
    assert first.transferred == served and (first.fetched, first.from_cache) == (1, 0)
    staged = first.files["inputs/reflectance/red.tif"]
    assert_is_the_district(staged, tile)
    with rasterio.open(staged) as cut:
        assert (cut.scales, cut.offsets) == ((0.0001,), (-0.1,))
        assert cut.tags(1)["scale"] == "0.0001" and cut.tags(1)["offset"] == "-0.1"
    [described] = first.described["reflectance"]
    assert described == {
        "collection": "sentinel2-l2a",
        "identifier": "S2B_33UVP_20240812_0_L2A",
        "start": "2024-08-12T10:05:59Z",
        "end": "2024-08-12T10:05:59Z",
        "source": "scenes",
        "cloud_cover": 12.4,
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
    second = await stage(remote_settings, cache, products, tmp_path / "two")
    assert scenes.served["/B04.tif"] == served
    assert (second.transferred, second.from_cache) == (0, 1)
    assert second.described == first.described
    assert_is_the_district(second.files["inputs/reflectance/red.tif"], tile)

    # The file changed at the source (a new ETag): read again.
    (scenes.root / "B04.tif").touch()
    third = await stage(remote_settings, cache, products, tmp_path / "three")
    assert third.from_cache == 0 and scenes.served["/B04.tif"] == 2 * served


async def test_a_window_from_s3_with_the_sources_keys(
    remote_settings, cache, moto_url, tile, tmp_path
) -> None:
    bucket = f"scenes-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="tiles/33/U/VP/B04.tif", Body=tile.read_bytes())
    keys = Keys(
        remote.S3Access(endpoint_url=moto_url, access_key_id="testing", secret_access_key="testing")
    )
    products = [product({"red": band(f"s3://{bucket}/tiles/33/U/VP/B04.tif")})]

    first = await stage(
        remote_settings, cache, products, tmp_path / "one", sources=loader(auth=keys)
    )
    assert 0 < first.transferred < tile.stat().st_size / 10
    assert_is_the_district(first.files["inputs/reflectance/red.tif"], tile)
    second = await stage(
        remote_settings, cache, products, tmp_path / "two", sources=loader(auth=keys)
    )
    assert (second.transferred, second.from_cache) == (0, 1)

    # The S3 endpoint is held to the guard like any host: a loopback one only where allowed.
    closed = remote_settings.model_copy(update={"allow_private_inputs": False})
    with pytest.raises(staging.InputRefused, match="S3 endpoint of the source scenes is refused"):
        await stage(closed, cache, products, tmp_path / "three", sources=loader(auth=keys))


async def test_transfers_are_tried_again_on_503_429_and_broken_connections(
    remote_settings, cache, scenes, tile, tmp_path
) -> None:
    scenes.failures = [(503, {}), (429, {"Retry-After": "0"}), "drop"]
    products = [product({"red": band(scenes.url("B04.tif"))})]
    staged = await stage(remote_settings, cache, products, tmp_path / "one")
    assert scenes.failures == []  # all three were met, and then it went on
    assert_is_the_district(staged.files["inputs/reflectance/red.tif"], tile)


async def test_a_source_that_stays_down_fails_the_stage_naming_the_source_and_asset(
    remote_settings, cache, scenes, tmp_path
) -> None:
    scenes.failures = [(503, {})] * 50
    href = scenes.url("B04.tif") + "?X-Signature=very-secret"
    products = [product({"red": band(href)})]
    with pytest.raises(staging.InputRefused) as refused:
        await stage(remote_settings, cache, products, tmp_path / "one")
    message = str(refused.value)
    assert "the source scenes did not deliver the asset red of S2B_33UVP_20240812_0_L2A" in message
    assert scenes.url("B04.tif") in message and "answered 503 (after 4 tries)" in message
    assert "very-secret" not in message
    assert scenes.requests["/B04.tif"] == 4  # stage_retries (3) more after the first
    assert not list((tmp_path / "cache").iterdir())  # no partial left

    # A Retry-After past the stage deadline is not waited for.
    scenes.failures = [(503, {"Retry-After": "3600"})]
    with pytest.raises(staging.InputRefused, match="would pass the stage deadline"):
        await stage(remote_settings, cache, products, tmp_path / "two")


async def test_a_file_that_is_not_a_cog_is_downloaded_whole_once_and_verified(
    remote_settings, cache, scenes, tmp_path
) -> None:
    data = b"CDF\x01" + bytes(range(256)) * 400  # a netCDF's worth of bytes
    (scenes.root / "LST_in.nc").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    asset = {
        "href": scenes.url("LST_in.nc"),
        "type": "application/x-netcdf",
        "size": len(data),
        "checksum": f"1220{digest}",  # STAC's file:checksum, a sha2-256 multihash
    }
    products = [product({"lst": asset})]
    first = await stage(remote_settings, cache, products, tmp_path / "one")
    staged = first.files["inputs/reflectance/lst.nc"]
    assert staged.read_bytes() == data and scenes.served["/LST_in.nc"] == len(data)
    assert first.described["reflectance"][0]["values"]["lst"]["windowed"] is False
    second = await stage(remote_settings, cache, products, tmp_path / "two")
    assert (second.transferred, second.from_cache) == (0, 1)
    assert scenes.requests["/LST_in.nc"] == 1  # known by its checksum: not even asked

    # A whole file whose bytes are not the catalogue's (and so not in the cache either).
    (scenes.root / "other.nc").write_bytes(data[:-1] + b"!")
    wrong = [
        product(
            {"lst": {**asset, "href": scenes.url("other.nc"), "checksum": f"sha256:{'0' * 64}"}}
        )
    ]
    with pytest.raises(staging.InputRefused, match="not the catalogue's checksum"):
        await stage(remote_settings, cache, wrong, tmp_path / "three")
    assert scenes.served["/other.nc"] == len(data)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [digest]  # nothing else kept

    # A checksum form no one can check is refused, not ignored.
    unknown = [product({"lst": {**asset, "checksum": "blake3:abc"}})]
    with pytest.raises(staging.InputRefused, match="cannot check"):
        await stage(remote_settings, cache, unknown, tmp_path / "four")


async def test_a_broken_download_resumes_where_it_stopped(
    remote_settings, cache, scenes, tmp_path
) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    (scenes.root / "S3_SL_2_LST.zip").write_bytes(data)
    asset = {"href": scenes.url("S3_SL_2_LST.zip"), "type": "application/zip"}
    scenes.failures = [(500, {}), None, "cut"]  # the HEAD, its second try, the first GET
    staged = await stage(remote_settings, cache, [product({"lst": asset})], tmp_path / "one")
    assert staged.files["inputs/reflectance/lst.zip"].read_bytes() == data
    assert scenes.ranges == ["", f"bytes={len(data) // 2}-"]
    assert scenes.served["/S3_SL_2_LST.zip"] == len(data)  # no byte twice


async def test_the_sources_token_is_sent_and_refreshed_on_401_never_given_to_a_redirect(
    remote_settings, cache, scenes, tile, tmp_path
) -> None:
    scenes.bearer = "fresh"
    token = Token(["expired", "fresh"])
    products = [product({"red": band(scenes.url("B04.tif"))})]
    staged = await stage(
        remote_settings, cache, products, tmp_path / "one", sources=loader(auth=token)
    )
    assert token.refreshes == 1
    assert_is_the_district(staged.files["inputs/reflectance/red.tif"], tile)


async def test_hosts_outside_the_allowed_list_are_refused_redirects_included(
    remote_settings, cache, scenes, tile, tmp_path
) -> None:
    elsewhere = [product({"red": band("http://localhost:9/B04.tif")})]
    with pytest.raises(staging.InputRefused, match="localhost of the source scenes is not one"):
        await stage(remote_settings, cache, elsewhere, tmp_path / "one")
    closed = remote_settings.model_copy(update={"allow_private_inputs": False})
    products = [product({"red": band(scenes.url("B04.tif"))})]
    with pytest.raises(staging.InputRefused, match="non-public"):
        await stage(closed, cache, products, tmp_path / "two")
    assert scenes.requests["/B04.tif"] == 0

    redirected = [product({"red": band(scenes.url("elsewhere/B04.tif"))})]
    with pytest.raises(staging.InputRefused, match="localhost of the source scenes is not one"):
        await stage(remote_settings, cache, redirected, tmp_path / "three")
    assert scenes.requests["/B04.tif"] == 0
    followed = [product({"red": band(scenes.url("here/B04.tif"))})]
    staged = await stage(remote_settings, cache, followed, tmp_path / "four")
    assert_is_the_district(staged.files["inputs/reflectance/red.tif"], tile)


async def test_at_most_max_parallel_transfers_of_a_source_at_once(
    remote_settings, cache, scenes, tile, tmp_path
) -> None:
    for name in ("B02.tif", "B03.tif", "B08.tif"):
        (scenes.root / name).write_bytes(tile.read_bytes())
    assets = {
        key: band(scenes.url(name))
        for key, name in (("blue", "B02.tif"), ("green", "B03.tif"), ("nir", "B08.tif"))
    }
    await stage(
        remote_settings, cache, [product(assets)], tmp_path / "one", sources=loader(max_parallel=1)
    )
    assert scenes.most_at_once == 1
    scenes.most_at_once = 0
    other = staging.InputCache(tmp_path / "other-cache", max_bytes=256 << 20)
    await stage(
        remote_settings, other, [product(assets)], tmp_path / "two", sources=loader(max_parallel=3)
    )
    assert 1 < scenes.most_at_once <= 3


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


async def test_only_the_assets_the_app_reads_are_staged(
    remote_settings, cache, scenes, tmp_path
) -> None:
    for name in ("ST_B10.nc", "QA_PIXEL.nc", "ST_EMIS.nc"):
        (scenes.root / name).write_bytes(name.encode() * 100)
    found = product(
        {
            key: {"href": scenes.url(name), "type": "application/x-netcdf"}
            for key, name in (("lst", "ST_B10.nc"), ("qa", "QA_PIXEL.nc"), ("emis", "ST_EMIS.nc"))
        }
    )
    wanted = staging.FoundProduct(found.role, found.feature, ("lst", "qa", "cloud"))
    staged = await stage(remote_settings, cache, [wanted], tmp_path / "one")
    assert sorted(staged.files) == ["inputs/reflectance/lst.nc", "inputs/reflectance/qa.nc"]
    assert staged.described["reflectance"][0]["assets"] == {
        "lst": "inputs/reflectance/lst.nc",
        "qa": "inputs/reflectance/qa.nc",
    }
    assert scenes.requests["/ST_EMIS.nc"] == 0
