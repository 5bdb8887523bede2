"""scripts/run's default: results on local disk, served by the API through signed links."""

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import running_stack
from tests.factories import customer_with_token, order_body, wait_final


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    storage_dir = tmp_path_factory.mktemp("storage")
    with running_stack(
        "local",
        CURE_STORAGE_BACKEND="local",
        CURE_STORAGE_DIR=str(storage_dir),
        CURE_STORAGE_SECRET="local-stack-secret-" + "s" * 32,
    ) as stack:
        yield stack.url, storage_dir


async def test_order_result_is_kept_on_disk_and_served_by_signed_link(local_stack) -> None:
    url, storage_dir = local_stack
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        _, headers = await customer_with_token(http)
        order_id = (
            await http.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
        ).json()["order_id"]
        final = await wait_final(http, order_id, headers)
        assert final["status"] == "SUCCESS", final

        redirect = await http.get(f"/v1/orders/{order_id}/result", headers=headers)
        assert redirect.status_code == 307
        link = redirect.headers["Location"]
        # the run's own folder under the order's: results/<order>/<attempt>-<run>/
        assert re.match(
            rf"{re.escape(url)}/v1/storage/results/{order_id}/1-[0-9a-f]{{12}}/result.geojson\?expires=",
            link,
        )
        downloaded = await http.get(link)  # no token: the signature is the authorisation
        assert downloaded.status_code == 200
        assert downloaded.headers["content-type"] == "application/geo+json"
        digest = hashlib.sha256(downloaded.content).hexdigest()
        assert f"sha256:{digest}" == final["result"]["checksum"]

    (on_disk,) = (storage_dir / "results" / order_id).glob("*/result.geojson")
    assert on_disk.read_bytes() == downloaded.content
    assert json.loads(on_disk.read_bytes())["features"][0]["properties"]["order_id"] == order_id
