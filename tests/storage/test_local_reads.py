"""The local storage backend reads an object by its path: no listing of the tree for a read, and a
listing walks only the folder its prefix names."""

import uuid

from pydantic import SecretStr

from cure.quicklooks import service as quicklook_service
from cure.quicklooks import styles
from cure.quicklooks.renders import Renders
from cure.storage.service import LocalStorage
from tests.quicklooks.test_quicklook import write_raster


class CountingStorage(LocalStorage):
    """The real local backend, counting its listings."""

    listings = 0

    async def keys(self, prefix: str) -> list[str]:
        self.listings += 1
        return await super().keys(prefix)


def local(settings, tmp_path) -> CountingStorage:  # type: ignore[no-untyped-def]
    return CountingStorage(
        settings.model_copy(
            update={
                "storage_backend": "local",
                "storage_dir": tmp_path / "storage",
                "storage_secret": SecretStr("local-test-secret-" + "s" * 32),
            }
        )
    )


async def test_a_stored_quicklook_is_read_by_its_key_without_listing(settings, tmp_path) -> None:
    storage = local(settings, tmp_path)
    key = f"results/{uuid.uuid4()}/1-1/suhi_intensity.tif"
    await storage.put_file(key, write_raster(tmp_path / "r.tif"), media_type="image/tiff")
    asset = quicklook_service.RasterAsset(key, styles.STYLES["suhi"], None)
    renders = Renders(concurrency=1, wait_seconds=10)
    first = await quicklook_service.quicklook_description(storage, renders, asset)
    png = await quicklook_service.quicklook_png(storage, renders, asset)
    assert await quicklook_service.quicklook_description(storage, renders, asset) == first
    assert await quicklook_service.quicklook_png(storage, renders, asset) == png
    assert storage.listings == 0
    assert renders.flight.runs == 1


async def test_read_and_keys_of_the_local_backend(settings, tmp_path) -> None:
    storage = local(settings, tmp_path)
    for key in ("a/b/x", "a/bc/y", "c/z"):
        await storage.put(key, key.encode(), media_type="text/plain")
    assert await storage.read("a/b/x") == b"a/b/x"
    for missing in ("a/b/nope", "a/b", "a/b/x.type", "nope/at/all", ""):
        assert await storage.read(missing) is None, missing
    assert await storage.keys("a/b") == ["a/b/x", "a/bc/y"]
    assert await storage.keys("a/b/") == ["a/b/x"]
    assert await storage.keys("a/b/x") == ["a/b/x"]
    assert await storage.keys("") == ["a/b/x", "a/bc/y", "c/z"]
    assert await storage.keys("nope/") == []
    assert await storage.keys("../") == []
