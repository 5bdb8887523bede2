"""Stage-in rules: where inputs may come from, verification, and the size-bounded cache."""

import hashlib
import os
import uuid

import httpx
import pytest

from cure.storage.service import make_storage
from cure.workers import staging


def checksum(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


async def test_only_the_bucket_and_allowed_public_hosts_are_fetched(settings) -> None:
    origin = await staging.storage_origin(make_storage(settings))
    stored = await staging._request_for(settings, f"{origin}inputs/key.tif?sig=x", origin)
    assert str(stored.url).startswith(origin)
    # the storage host, but not the bucket: refused like any other host
    host = origin.split("/", 3)
    with pytest.raises(staging.InputRefused, match="neither"):
        await staging._request_for(settings, f"{host[0]}//{host[2]}/other-bucket/x.tif", origin)
    with pytest.raises(staging.InputRefused, match="neither"):
        await staging._request_for(settings, "http://example.org/lst.tif", origin)
    allowed = settings.model_copy(update={"input_hosts": ["localhost"]})
    with pytest.raises(staging.InputRefused, match="refused"):  # allowed, but a loopback address
        await staging._request_for(allowed, "http://localhost:8080/lst.tif", origin)
    with pytest.raises(staging.InputRefused, match="http"):
        await staging._request_for(settings, "file:///etc/passwd", origin)


async def test_assets_are_verified_and_cached(app, settings, tmp_path) -> None:
    # (the app fixture has made the bucket)
    storage = make_storage(settings)
    data = os.urandom(4096)
    key = f"inputs/test/{uuid.uuid4().hex}.tif"
    await storage.put(key, data, media_type="image/tiff")
    origin = await staging.storage_origin(storage)
    cache = staging.InputCache(tmp_path / "cache", max_bytes=10_000)
    href = await storage.presigned_url(key, expires_in=60)
    async with httpx.AsyncClient() as http:
        asset = {"href": href, "size": len(data), "checksum": checksum(data)}
        path, cached = await staging._fetch(settings, http, cache, asset, origin)
        assert (path.read_bytes(), cached) == (data, False)
        again, cached = await staging._fetch(settings, http, cache, asset, origin)
        assert (again, cached) == (path, True)
        wrong = {"href": href, "size": len(data), "checksum": checksum(b"other")}
        with pytest.raises(staging.InputRefused, match="checksum"):
            await staging._fetch(settings, http, cache, wrong, origin)
        short = {"href": href, "size": len(data) - 1, "checksum": "sha256:" + "1" * 64}
        with pytest.raises(staging.InputRefused, match="more than"):
            await staging._fetch(settings, http, cache, short, origin)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]  # no partial left


def test_the_cache_evicts_the_least_recently_used(tmp_path) -> None:
    cache = staging.InputCache(tmp_path, max_bytes=25)
    paths = []
    for number, data in enumerate((b"a" * 10, b"b" * 10)):
        partial = cache.partial()
        partial.write_bytes(data)
        paths.append(cache.admit(partial, checksum(data)))
        os.utime(paths[-1], (1000 + number, 1000 + number))
    assert cache.lookup(checksum(b"a" * 10), 10) == paths[0]  # used again: now the newest
    partial = cache.partial()
    partial.write_bytes(b"c" * 10)
    cache.admit(partial, checksum(b"c" * 10))
    assert cache.lookup(checksum(b"b" * 10), 10) is None  # the least recently used went
    assert cache.lookup(checksum(b"a" * 10), 10) is not None


def test_a_reference_keeps_only_a_local_uuid_and_skips_what_it_cannot_hold() -> None:
    """Another catalogue's ids (CURE_CCSI_URL) are not ours: the lineage names the product
    without one; a name longer than a reference holds leaves the product out of the lineage
    (the run goes on)."""
    from cure.workers.staging import FoundProduct

    def found(feature_id: str, identifier: str) -> FoundProduct:
        properties = {"collection": "lst", "identifier": identifier}
        return FoundProduct("lst", {"id": feature_id, "properties": properties}, ("data",))

    scene = "S3A_SL_2_LST____20240701T093000"
    reference = found(scene, scene).reference()
    assert reference is not None and (reference.identifier, reference.id) == (scene, None)
    ours = uuid.uuid4()
    assert found(str(ours), "x").reference().id == ours  # type: ignore[union-attr]
    assert found(scene, "x" * 300).reference() is None
