"""The local storage backend: files on disk behind HMAC-signed, expiring links the API serves."""

import time
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import SecretStr

from cure.storage.service import LocalStorage
from tests.conftest import started_app


@pytest.fixture
def local_settings(settings, tmp_path):
    return settings.model_copy(
        update={
            "storage_backend": "local",
            "storage_dir": tmp_path / "storage",
            "storage_secret": SecretStr("local-test-secret-" + "s" * 32),
            "run_background_services": False,
        }
    )


@pytest.fixture
async def local_client(local_settings):
    async with started_app(local_settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
            yield http


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_signed_link_serves_the_object(local_settings, local_client) -> None:
    storage = LocalStorage(local_settings)
    await storage.put(
        "results/abc/result.geojson", b'{"type": "x"}', media_type="application/geo+json"
    )
    url = await storage.presigned_url("results/abc/result.geojson", expires_in=60)
    assert url.startswith(local_settings.public_url)
    response = await local_client.get(path_and_query(url))
    assert response.status_code == 200
    assert response.content == b'{"type": "x"}'
    assert response.headers["content-type"] == "application/geo+json"


async def test_tampered_expired_and_escaping_links_are_refused(
    local_settings, local_client
) -> None:
    storage = LocalStorage(local_settings)
    await storage.put("results/abc/a.txt", b"secret a", media_type="text/plain")
    await storage.put("results/xyz/b.txt", b"secret b", media_type="text/plain")
    good = path_and_query(await storage.presigned_url("results/abc/a.txt", expires_in=60))

    other_key = good.replace("results/abc/a.txt", "results/xyz/b.txt")
    assert (await local_client.get(other_key)).status_code == 403

    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    assert (await local_client.get(tampered)).status_code == 403

    past = int(time.time()) - 10
    old_signature = storage.signature("results/abc/a.txt", past)
    expired = f"/v1/storage/results/abc/a.txt?expires={past}&signature={old_signature}"
    response = await local_client.get(expired)
    assert response.status_code == 403
    assert response.json()["error"] == "LinkInvalid"

    escaping = "results/../../outside"
    far = int(time.time()) + 60
    response = await local_client.get(
        f"/v1/storage/{escaping}?expires={far}&signature={storage.signature(escaping, far)}"
    )
    assert response.status_code in (403, 404)
    with pytest.raises(ValueError):
        storage.path_of("../outside")


async def test_missing_query_is_422(local_client) -> None:
    response = await local_client.get("/v1/storage/results/abc/a.txt")
    assert response.status_code == 422
    assert response.json()["error"] == "ValidationError"


# Percent-encoded in the query: "é" * 43, a snowman, and bytes that are not UTF-8 at all.
@pytest.mark.parametrize("signature", ["%C3%A9" * 43, "%E2%98%83", "%FF%FE%ED%B3%BF"])
async def test_a_non_ascii_signature_is_a_403_not_a_500(local_settings, local_client, signature):
    storage = LocalStorage(local_settings)
    await storage.put("results/abc/a.txt", b"secret a", media_type="text/plain")
    far = int(time.time()) + 60
    response = await local_client.get(
        f"/v1/storage/results/abc/a.txt?expires={far}&signature={signature}"
    )
    assert response.status_code == 403
    assert response.json()["error"] == "LinkInvalid"
