"""Asset keys in the object store come back as expiring links that download the file; absolute
URLs pass through as they are."""

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import httpx

from cure.storage.service import S3Storage
from tests.ccsi.factories import product_body
from tests.factories import create_admin


async def test_storage_keys_become_presigned_links(client, settings, collection, session) -> None:
    _, admin = await create_admin(client, session)
    key = f"inputs/{collection}/scene.tif"
    await S3Storage(settings).put(key, b"GeoTIFF bytes", media_type="image/tiff")
    body = product_body(
        assets={
            "data": {"href": key, "type": "image/tiff", "size": 13, "roles": ["data"]},
            "preview": {"href": "https://previews.example.org/scene.png", "type": "image/png"},
        }
    )
    created = await client.post(f"/v1/ccsi/{collection}/products", json=body, headers=admin)
    assert created.status_code == 201, created.text

    page = (await client.get(f"/v1/ccsi/{collection}/search")).json()
    assets = page["features"][0]["properties"]["assets"]
    link = assets["data"]["href"]
    query = parse_qs(urlsplit(link).query)
    assert link.startswith(settings.s3_endpoint_url)
    assert query["X-Amz-Expires"] == [str(settings.result_link_ttl_seconds)]
    assert "X-Amz-Signature" in query
    async with httpx.AsyncClient() as http:
        download = await http.get(link)
        assert download.status_code == 200 and download.content == b"GeoTIFF bytes"
        tampered = await http.get(link.replace("scene.tif", "other.tif"))
        assert tampered.status_code != 200
    assert assets["preview"]["href"] == "https://previews.example.org/scene.png"
    assert assets["data"]["size"] == 13 and assets["data"]["type"] == "image/tiff"

    atom = await client.get(f"/v1/ccsi/{collection}/search", params={"format": "atom"})
    feed = ET.fromstring(atom.content)
    atom_ns = "{http://www.w3.org/2005/Atom}"
    enclosures = [
        link.get("href") for link in feed.iter(f"{atom_ns}link") if link.get("rel") == "enclosure"
    ]
    assert len(enclosures) == 2
    signed = next(href for href in enclosures if "X-Amz-Signature" in href)
    assert urlsplit(signed).path == urlsplit(link).path
