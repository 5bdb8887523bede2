"""Fixtures of the federation tests: a real STAC API server loaded with items in Earth Search's
shape, whose assets are real-format scenes served with range requests and on S3.

Tests elsewhere use them by importing them with the fixtures they depend on (``from
tests.federation.conftest import scene_files, scene_server, scenes, stac_api, stac_server  #
noqa: F401``); however many modules import them, the session has one of each. All are
session-scoped; their names are stable:

- ``scene_files`` -> ``scenes.SceneFiles``: the files made once per session (Sentinel-2 B04, B08,
  SCL, TCI, thumbnail, product metadata; Landsat ST_B10, QA_PIXEL, MTL.json), see ``scenes.py``.
- ``scene_server`` -> ``servers.SceneServer``: the range-honouring file server that serves them,
  in a process of its own (so GDAL in the test process may read from it). ``served`` /
  ``bytes_served(url)`` body bytes per path, ``requests`` / ``requests_for(url)``, ``ranges``,
  ``most_at_once``, ``failures`` (snapshots, read from the server when asked for);
  ``fail(503, times=2, retry_after=1)``, ``fail(429)``, ``fail("drop")``, ``fail("cut")``
  (optionally for one ``path``); ``bearer = "token"`` to demand a token; ``down()`` / ``up()``
  (same port); ``publish(file, name)`` serves one more file. It is shared by the session: call
  ``reset()`` first (counts, failures, bearer) and leave it ``up()``.
- ``scenes`` -> ``Scenes``: the files, the ``districts`` (``clear``, ``cloudy``, ``half_cloudy``,
  ``cirrus``), the items and collections loaded into the STAC server, the asset URLs on the scene
  server (``urls``) and on moto (``s3``, plus ``s3_endpoint``). ``scenes.py`` computes NDVI and
  LST by hand over a district (``ndvi_by_hand``, ``lst_by_hand``).
- ``stac_api`` -> ``servers.StacServer``: stac-fastapi-pgstac in its own virtualenv over the
  database ``<CURE_TEST_DB or cure_test>_stac``; ``stop()`` / ``start()`` keep port and data
  (restart it in ``finally``), ``load(collections, items)`` adds more.
- ``stac_server`` -> its base URL (``http://127.0.0.1:PORT``).
- ``cdse_scenes``, ``cdse_stac_api``, ``cdse_stac_server``: made only when asked for. The main
  Sentinel-2 product as the Copernicus Data Space Ecosystem's STAC (v1, STAC 1.1) publishes it,
  in a second server (database ``<test db>_stac_cdse``), collection ``sentinel-2-l2a``, item id
  the product's name: B04_10m, B08_10m, SCL_20m as JPEG 2000 on moto at ``s3://eodata/...``
  (S3 keys), each with the OData download on the scene server as ``alternate.https`` (OIDC),
  ``raster:scale``/``raster:offset``, ``file:size`` and an md5 ``file:checksum``.

What is in the STAC server (collections ``sentinel-2-l2a`` and ``landsat-c2-l2``):
``S2B_33UXP_20260714_0_L2A`` (8.3 % cloud; clear over ``clear``), ``S2A_33UXP_20260719_0_L2A``
(96.2 % cloud), 26 archive items every 5 days from 2026-05-01 to 2026-06-30 on 33UXP and 33UWP
(the same files), ``LC09_L2SP_190026_20260715_02_T1`` (12.4 %) and
``LC08_L2SP_190026_20260723_02_T1`` (88.7 %). Sentinel-2 assets are on the scene server (as
Earth Search's https hrefs); Landsat's on moto at ``s3://usgs-landsat/...`` (requester pays, as
Earth Search's) with the scene server as their ``alternate.https``.

If the STAC server is not installed (scripts/test installs it) the fixture fails, saying so.
"""

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import ROOT, TEST_DB
from tests.federation import items as stac_items
from tests.federation import scenes as scene_files_module
from tests.federation.scenes import District, SceneFiles
from tests.federation.servers import SceneServer, StacServer, StacServerMissing, put_s3_object

T = TypeVar("T")


@dataclass
class Scenes:
    """The session's scenes: files, districts, items and where each asset is served."""

    files: SceneFiles
    districts: dict[str, District]
    s2_item: dict[str, Any]
    s2_cloudy_item: dict[str, Any]
    landsat_item: dict[str, Any]
    landsat_cloudy_item: dict[str, Any]
    archive: list[dict[str, Any]]
    collections: list[dict[str, Any]]
    urls: dict[str, str]  # asset key -> URL on the scene server (red, nir, scl, visual, ...)
    s3: dict[str, str]  # asset key -> s3://bucket/key on moto (red, nir, scl, lwir11, qa_pixel)
    s3_endpoint: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def items(self) -> list[dict[str, Any]]:
        """Every item loaded into the STAC server."""
        return [
            self.s2_item,
            self.s2_cloudy_item,
            *self.archive,
            self.landsat_item,
            self.landsat_cloudy_item,
        ]


class _Shared:
    """One instance of each resource per session, however many modules import these fixtures
    (each import is a fixture of its own to pytest): made by the first user, closed after the
    last."""

    def __init__(self) -> None:
        self.things: dict[str, Any] = {}
        self.users: Counter[str] = Counter()

    @contextlib.contextmanager
    def use(
        self, name: str, make: Callable[[], T], close: Callable[[T], None] | None = None
    ) -> Iterator[T]:
        if name not in self.things:
            self.things[name] = make()
        self.users[name] += 1
        try:
            yield self.things[name]
        finally:
            self.users[name] -= 1
            if self.users[name] == 0:
                thing = self.things.pop(name)
                if close is not None:
                    close(thing)


_shared = _Shared()


@pytest.fixture(scope="session")
def scene_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SceneFiles]:
    """The real-format scene files, made once per session (about 4 s)."""

    def make() -> SceneFiles:
        folder = tmp_path_factory.mktemp("scenes")
        return scene_files_module.make_scenes(folder, landsat_id=stac_items.LANDSAT_DISPLAY_ID)

    with _shared.use("scene_files", make) as files:
        yield files


@pytest.fixture(scope="session")
def scene_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SceneServer]:
    """The range-honouring file server of the scenes, on 127.0.0.1."""

    def make() -> SceneServer:
        server = SceneServer(tmp_path_factory.mktemp("scene-server"))
        server.start()
        return server

    with _shared.use("scene_server", make, SceneServer.stop) as server:
        yield server


def _publish(
    scene_files: SceneFiles, server: SceneServer, moto_url: str
) -> tuple[dict[str, str], dict[str, str]]:
    s2, landsat = scene_files.s2, scene_files.landsat
    s2_prefix = stac_items.s2_key_prefix(stac_items.S2_ITEM_ID)
    s2_files = {
        "red": s2.red,
        "nir": s2.nir,
        "scl": s2.scl,
        "visual": s2.visual,
        "thumbnail": s2.thumbnail,
        "product_metadata": s2.product_metadata,
    }
    urls = {key: server.publish(file, f"{s2_prefix}/{file.name}") for key, file in s2_files.items()}
    s3 = {
        key: put_s3_object(
            moto_url, f"s3://sentinel-cogs/{s2_prefix}/{s2_files[key].name}", s2_files[key]
        )
        for key in ("red", "nir", "scl")
    }
    landsat_prefix = stac_items.landsat_key_prefix(stac_items.LANDSAT_DISPLAY_ID)
    landsat_files = {
        "lwir11": landsat.lwir11,
        "qa_pixel": landsat.qa_pixel,
        "mtl.json": landsat.mtl_json,
    }
    for key, file in landsat_files.items():
        urls[key] = server.publish(file, f"data/{landsat_prefix}/{file.name}")
        s3[key] = put_s3_object(moto_url, f"s3://usgs-landsat/{landsat_prefix}/{file.name}", file)
    return urls, s3


@pytest.fixture(scope="session")
def scenes(scene_files: SceneFiles, scene_server: SceneServer, moto_url: str) -> Iterator[Scenes]:
    """The scenes served (scene server and moto) and their STAC items and collections."""
    with _shared.use("scenes", lambda: _scenes(scene_files, scene_server, moto_url)) as made:
        yield made


def _scenes(scene_files: SceneFiles, scene_server: SceneServer, moto_url: str) -> Scenes:
    urls, s3 = _publish(scene_files, scene_server, moto_url)
    s2_hrefs = {
        key: urls[key] for key in ("red", "nir", "scl", "visual", "thumbnail", "product_metadata")
    }
    landsat_keys = ("lwir11", "qa_pixel", "mtl.json")
    landsat_files = {
        "lwir11": scene_files.landsat.lwir11,
        "qa_pixel": scene_files.landsat.qa_pixel,
        "mtl.json": scene_files.landsat.mtl_json,
    }
    checksums = {key: stac_items.multihash_sha512(file) for key, file in landsat_files.items()}

    def landsat(item_id: str, display_id: str, when: str, cloud_cover: float) -> dict[str, Any]:
        return stac_items.landsat_item(
            item_id,
            display_id,
            when=when,
            cloud_cover=cloud_cover,
            hrefs={key: s3[key] for key in landsat_keys},
            https={key: urls[key] for key in landsat_keys},
            checksums=checksums,
        )

    return Scenes(
        files=scene_files,
        districts=dict(scene_files_module.DISTRICTS),
        s2_item=stac_items.sentinel2_item(
            stac_items.S2_ITEM_ID,
            when=stac_items.S2_DATETIME,
            cloud_cover=stac_items.S2_CLOUD_COVER,
            hrefs=s2_hrefs,
        ),
        s2_cloudy_item=stac_items.sentinel2_item(
            stac_items.S2_CLOUDY_ITEM_ID,
            when=stac_items.S2_CLOUDY_DATETIME,
            cloud_cover=stac_items.S2_CLOUDY_CLOUD_COVER,
            hrefs=s2_hrefs,
        ),
        landsat_item=landsat(
            stac_items.LANDSAT_ITEM_ID,
            stac_items.LANDSAT_DISPLAY_ID,
            stac_items.LANDSAT_DATETIME,
            stac_items.LANDSAT_CLOUD_COVER,
        ),
        landsat_cloudy_item=landsat(
            stac_items.LANDSAT_CLOUDY_ITEM_ID,
            stac_items.LANDSAT_CLOUDY_DISPLAY_ID,
            stac_items.LANDSAT_CLOUDY_DATETIME,
            stac_items.LANDSAT_CLOUDY_CLOUD_COVER,
        ),
        archive=stac_items.archive_items(s2_hrefs),
        collections=[stac_items.sentinel2_collection(), stac_items.landsat_collection()],
        urls=urls,
        s3=s3,
        s3_endpoint=moto_url,
    )


def _started_stac_server(
    database: str,
    tmp_path_factory: pytest.TempPathFactory,
    collections: list[dict[str, Any]],
    items: list[dict[str, Any]],
) -> StacServer:
    try:
        server = StacServer(
            database,
            tmp_path_factory.mktemp("stac-server"),
            log=ROOT / "var" / "log" / f"test-stac-server-{database}.log",
        )
    except StacServerMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    try:
        server.create_database()
        server.load(collections, items)
        server.start()
    except BaseException:
        _close_stac_server(server)
        raise
    return server


def _close_stac_server(server: StacServer) -> None:
    try:
        server.stop()
    finally:
        server.drop_database()


@pytest.fixture(scope="session")
def stac_api(scenes: Scenes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StacServer]:
    """stac-fastapi-pgstac on 127.0.0.1 over a database of its own, loaded with ``scenes``."""

    def make() -> StacServer:
        return _started_stac_server(
            f"{TEST_DB}_stac", tmp_path_factory, scenes.collections, scenes.items
        )

    with _shared.use("stac_api", make, _close_stac_server) as server:
        yield server


@pytest.fixture(scope="session")
def stac_server(stac_api: StacServer) -> str:
    """The STAC API's base URL."""
    return stac_api.url


# -- the same product as the Copernicus Data Space Ecosystem's STAC answers it -------------------


@dataclass
class CdseScenes:
    """The main Sentinel-2 scene as CDSE keeps it: JPEG 2000 granules on moto at
    ``s3://eodata/...`` (``s3``), the OData download of each on the scene server (``urls``),
    the item (id: the product's name) and collection in CDSE's STAC shape."""

    files: dict[str, Path]  # B04_10m, B08_10m, SCL_20m
    item: dict[str, Any]
    collection: dict[str, Any]
    urls: dict[str, str]
    s3: dict[str, str]
    s3_endpoint: str


@pytest.fixture(scope="session")
def cdse_scenes(
    scenes: Scenes,
    scene_server: SceneServer,
    moto_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CdseScenes]:
    """Made only when a test asks (about 3 s): the JPEG 2000 files, served and on moto."""

    def make() -> CdseScenes:
        identifier = stac_items.cdse_identifier(scenes.s2_item)
        files = scene_files_module.make_sentinel2_jp2(
            tmp_path_factory.mktemp("cdse"),
            tile=stac_items.CDSE_TILE,
            sensed=stac_items.cdse_sensed(identifier),
        )
        urls = {
            key: scene_server.publish(file, stac_items.cdse_odata_path(identifier, key))
            for key, file in files.items()
        }
        s3 = {
            key: put_s3_object(
                moto_url, f"s3://eodata/{stac_items.cdse_key(identifier, key)}", file
            )
            for key, file in files.items()
        }
        item = stac_items.cdse_sentinel2_item(scenes.s2_item, hrefs=s3, https=urls, files=files)
        return CdseScenes(
            files=files,
            item=item,
            collection=stac_items.cdse_sentinel2_collection(),
            urls=urls,
            s3=s3,
            s3_endpoint=moto_url,
        )

    with _shared.use("cdse_scenes", make) as made:
        yield made


@pytest.fixture(scope="session")
def cdse_stac_api(
    cdse_scenes: CdseScenes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StacServer]:
    """A second stac-fastapi-pgstac (database ``<test db>_stac_cdse``) holding CDSE's
    ``sentinel-2-l2a`` collection with the product's item; started only when a test asks."""

    def make() -> StacServer:
        return _started_stac_server(
            f"{TEST_DB}_stac_cdse",
            tmp_path_factory,
            [cdse_scenes.collection],
            [cdse_scenes.item],
        )

    with _shared.use("cdse_stac_api", make, _close_stac_server) as server:
        yield server


@pytest.fixture(scope="session")
def cdse_stac_server(cdse_stac_api: StacServer) -> str:
    """The CDSE-shaped STAC API's base URL."""
    return cdse_stac_api.url
