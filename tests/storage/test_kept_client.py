"""A storage that keeps its S3 client: one per event loop, reused across calls, closed by its
owner, and not poisoned by a call that failed while the S3 server was away."""

import asyncio

import pytest
from botocore.exceptions import BotoCoreError

from cure.storage.service import S3Storage, make_storage
from tests.conftest import free_port


def _moto(port: int):  # type: ignore[no-untyped-def]
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


async def test_one_client_per_loop_reused_and_closed(settings) -> None:
    storage = make_storage(settings, kept=True)
    assert isinstance(storage, S3Storage)
    await storage.ensure_bucket()
    for n in range(3):
        await storage.put(f"tests/kept/{n}.txt", str(n).encode(), media_type="text/plain")
    assert len(storage._kept) == 1  # the three calls went through one client
    (mine,) = storage._kept.values()

    def elsewhere() -> tuple[bytes | None, bool, int]:
        async def other_loop() -> tuple[bytes | None, bool, int]:
            data = await storage.read("tests/kept/1.txt")
            (theirs,) = (k for loop, k in storage._kept.items() if loop is not main_loop)
            shared = theirs is mine
            await storage.close()  # closes this loop's client only
            return data, shared, len(storage._kept)

        return asyncio.run(other_loop())

    main_loop = asyncio.get_running_loop()
    data, shared, left = await asyncio.to_thread(elsewhere)
    assert data == b"1" and not shared and left == 1
    assert await storage.keys("tests/kept/") == [f"tests/kept/{n}.txt" for n in range(3)]
    await storage.close()
    assert len(storage._kept) == 0
    # A closed storage can be used again on the loop: it makes a new client.
    assert await storage.read("tests/kept/2.txt") == b"2"
    await storage.close()


async def test_a_kept_client_survives_the_s3_server_restarting(settings) -> None:
    port = free_port()
    server = _moto(port)
    url = f"http://127.0.0.1:{port}"
    storage = S3Storage(
        settings.model_copy(update={"s3_endpoint_url": url, "s3_bucket": "kept-restart"}),
        keep_client=True,
    )
    try:
        await storage.ensure_bucket()
        await storage.put("a.txt", b"before", media_type="text/plain")
        server.stop()
        with pytest.raises((BotoCoreError, OSError)):
            await storage.put("b.txt", b"while away", media_type="text/plain")
        server = _moto(port)  # the same address again (moto's buckets live in this process)
        await storage.ensure_bucket()
        await storage.put("c.txt", b"after", media_type="text/plain")
        assert await storage.keys("") == ["a.txt", "c.txt"]
        assert await storage.read("c.txt") == b"after"
    finally:
        await storage.close()
        server.stop()


async def test_a_failed_call_never_closes_the_client_under_another_call(settings) -> None:
    storage = make_storage(settings, kept=True)
    assert isinstance(storage, S3Storage)
    await storage.ensure_bucket()
    try:
        async with storage._client() as in_flight:  # a call still using the kept client
            with pytest.raises(RuntimeError):
                async with storage._client():
                    raise RuntimeError("this call broke, not S3's answer")
            assert storage._kept == {}  # forgotten: the next call makes a new client
            # ...but the call in flight goes on on its connections.
            await in_flight.put_object(
                Bucket=settings.s3_bucket, Key="tests/kept/on.txt", Body=b"on"
            )
        await asyncio.gather(*storage._closing)  # closed once its last call was done
        assert await storage.read("tests/kept/on.txt") == b"on"
        assert len(storage._kept) == 1
    finally:
        await storage.close()
