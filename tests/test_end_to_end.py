"""Steps 1-6 of the README over HTTP against a running API process and a Celery worker."""

import hashlib
import json

import docker
import httpx
import pytest

from tests.factories import VIENNA, order_body, unique_email, wait_final


async def test_register_token_order_follow_download(live_api: str) -> None:
    async with httpx.AsyncClient(base_url=live_api, timeout=10) as http:
        # 1. register
        registered = await http.post(
            "/v1/crm/customers",
            json={"name": "Ana Analyst", "email": unique_email(), "password": "heat island 2024!"},
        )
        assert registered.status_code == 201
        customer = registered.json()
        assert customer["client_id"] and customer["client_secret"]

        # 2. token, client authenticated by HTTP Basic
        token = await http.post(
            "/v1/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(customer["client_id"], customer["client_secret"]),
        )
        assert token.status_code == 200
        assert token.json()["token_type"] == "Bearer"
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

        # 3. the catalogue
        apps = (await http.get("/v1/apps")).json()
        assert "roi_stats" in [app["id"] for app in apps]
        schema = (await http.get("/v1/apps/roi_stats")).json()["parameters"]
        assert schema["properties"]["area_unit"]["default"] == "km2"

        # 4. order
        submitted = await http.post(
            "/v1/apps/roi_stats/orders",
            json=order_body(params={"area_unit": "ha", "precision": 1}),
            headers=headers,
        )
        assert submitted.status_code == 202, submitted.text
        order_id = submitted.json()["order_id"]
        assert submitted.headers["Location"] == f"/v1/orders/{order_id}"
        assert submitted.json()["status"] == "RECEIVED"

        # 5. follow it to the end
        final = await wait_final(http, order_id, headers)
        assert final["status"] == "SUCCESS", final
        seen = [event["status"] for event in final["history"]]
        assert [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s] == [
            "RECEIVED",
            "QUEUED",
            "RUNNING",
            "SUCCESS",
        ]
        assert all(event["at"] for event in final["history"])

        # 6. download through the presigned S3 link
        result = await http.get(f"/v1/orders/{order_id}/result", headers=headers)
        assert result.status_code == 307
        link = result.headers["Location"]
        assert "X-Amz-Signature=" in link and "X-Amz-Expires=" in link
        downloaded = await http.get(link)
        assert downloaded.status_code == 200
        assert (
            f"sha256:{hashlib.sha256(downloaded.content).hexdigest()}"
            == final["result"]["checksum"]
        )
        assert len(downloaded.content) == final["result"]["size"]

        feature = json.loads(downloaded.content)["features"][0]
        # 0.1 x 0.1 degrees at 48.25 N: about 7.42 km x 11.12 km = 8,250 ha on the sphere.
        assert feature["properties"]["area_unit"] == "ha"
        assert 8200 < feature["properties"]["area"] < 8300
        assert feature["properties"]["days"] == 31
        assert feature["geometry"]["coordinates"] == pytest.approx([16.35, 48.25])
        assert feature["properties"]["bbox"] == [16.3, 48.2, 16.4, 48.3]
        assert feature["properties"]["order_id"] == order_id

    # the app container and its volume are gone
    engine = docker.from_env()
    label = {"label": f"cure.order_id={order_id}"}
    assert engine.containers.list(all=True, ignore_removed=True, filters=label) == []
    assert engine.volumes.list(filters=label) == []
    engine.close()


async def test_multipolygon_order_over_http(live_api: str) -> None:
    async with httpx.AsyncClient(base_url=live_api, timeout=10) as http:
        customer = (
            await http.post(
                "/v1/crm/customers",
                json={"name": "Bo", "email": unique_email(), "password": "another passphrase"},
            )
        ).json()
        token = (
            await http.post(
                "/v1/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": customer["client_id"],
                    "client_secret": customer["client_secret"],
                },
            )
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        shifted = [[[x + 1, y] for x, y in VIENNA["coordinates"][0]]]
        roi = {"type": "MultiPolygon", "coordinates": [VIENNA["coordinates"], shifted]}
        submitted = await http.post(
            "/v1/apps/roi_stats/orders",
            json={"roi": roi, "start_date": "2024-07-01", "params": {}},
            headers=headers,
        )
        assert submitted.status_code == 202, submitted.text
        final = await wait_final(http, submitted.json()["order_id"], headers)
        assert final["status"] == "SUCCESS"
        assert final["end_date"] == "2024-07-01"  # defaults to start_date
        link = (await http.get(final["result"]["href"], headers=headers)).headers["Location"]
        properties = json.loads((await http.get(link)).content)["features"][0]["properties"]
        assert properties["polygons"] == 2
        assert properties["area_unit"] == "km2"
        assert 164 < properties["area"] < 166  # two ~82.3 km2 squares
