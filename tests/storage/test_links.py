"""Expiring links to stored objects: signed without the S3 client's per-link machinery, yet the
very links the client makes, and they open the object."""

import httpx

from cure.storage.service import S3Storage, make_storage

KEYS = ["results/a b/c.tif", "demo/ü/x+y=z&q.tif", "a/~b/%41.tif", "plain.json"]


def _date(url: str) -> str:
    return url.split("X-Amz-Date=", 1)[1][:16]


async def test_links_are_the_ones_the_s3_client_signs(settings) -> None:
    storage = make_storage(settings)
    assert isinstance(storage, S3Storage)
    client = storage._signer()  # the client the links were made with before
    for key in KEYS:
        for _ in range(5):  # both within one second: the same signing time
            ours = (await storage.presigned_urls([key], expires_in=900))[key]
            theirs = client.generate_presigned_url(
                "get_object", Params={"Bucket": settings.s3_bucket, "Key": key}, ExpiresIn=900
            )
            if _date(ours) == _date(theirs):
                break
        assert ours == theirs, key


async def test_a_link_opens_its_object(settings, tmp_path) -> None:
    storage = make_storage(settings)
    await storage.ensure_bucket()
    path = tmp_path / "x.json"
    path.write_bytes(b'{"linked": true}')
    key = "tests/links/a b ü.json"
    await storage.put_file(key, path, media_type="application/json")
    (url,) = (await storage.presigned_urls([key], expires_in=60)).values()
    async with httpx.AsyncClient() as http:
        answer = await http.get(url)
    assert answer.status_code == 200 and answer.content == b'{"linked": true}'
    await storage.delete([key])
