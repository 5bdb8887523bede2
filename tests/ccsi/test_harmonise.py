"""Remote items as CURE's products: items in the shapes the public catalogues publish (an Earth
Search Sentinel-2 L2A and Landsat Collection 2 Level-2 item, the Copernicus Data Space
Ecosystem's resto JSON page, a resto Atom feed) read into the same fields as a local product."""

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from cure.ccsi.sources.harmonise import harmonise, product_id
from cure.ccsi.sources.opensearch import read_page
from cure.ccsi.sources.remote import Answer
from cure.ccsi.sources.schemas import CollectionMapping

DATA = Path(__file__).parent / "data"


def load(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((DATA / name).read_text())


def answer(name: str, media_type: str) -> Answer:
    return Answer(
        status_code=200,
        headers=httpx.Headers({"content-type": media_type}),
        content=(DATA / name).read_bytes(),
        url="https://catalogue.test/resto/api/collections/Sentinel2/search.json",
    )


S2 = CollectionMapping(
    remote="sentinel-2-l2a",
    product_type="S2MSI2A",
    assets={"red": "red", "nir": "nir", "scl": "scl"},
)


def test_an_earth_search_sentinel2_item_reads_as_a_product() -> None:
    item = load("earth_search_sentinel2_l2a_item.json")

    product = harmonise(item, source="earth-search", collection="sentinel2-l2a", mapping=S2)

    assert product is not None
    assert product.id == uuid.uuid5(
        uuid.UUID("5d1e4b7a-2f0c-5b8e-9a51-3c0e5f2d7c11"),
        "earth-search/sentinel2-l2a/S2B_22MHD_20230912_0_L2A",
    )
    assert product.id == product_id("earth-search", "sentinel2-l2a", item["id"])
    assert (product.collection, product.identifier) == ("sentinel2-l2a", item["id"])
    assert product.product_type == "S2MSI2A"
    assert product.source == "earth-search"
    assert product.cloud_cover == pytest.approx(1.286568)
    assert product.start == product.end == datetime(2023, 9, 12, 13, 42, 47, 536000, tzinfo=UTC)
    assert product.created_at == datetime(2023, 9, 12, 23, 4, 12, 344000, tzinfo=UTC)
    assert product.footprint["type"] == "Polygon"
    assert product.footprint["coordinates"][0][0] == [-48.304814333806114, -0.9033707970044846]
    assert (product.owner_id, product.order_id, product.published) == (None, None, True)
    # Only the mapped roles, keyed by CURE's role; the thumbnail is not asked for.
    assert set(product.assets) == {"red", "nir", "scl"}
    red = product.assets["red"]
    assert red.href == item["assets"]["red"]["href"]
    assert red.type == "image/tiff; application=geotiff; profile=cloud-optimized"
    assert red.roles == ["data", "reflectance"]
    assert (red.scale, red.offset, red.nodata) == (0.0001, -0.1, 0)
    scl = product.assets["scl"]
    assert (scl.scale, scl.offset, scl.nodata) == (None, None, 0)
    # The remote properties are kept.
    assert product.properties["s2:processing_baseline"] == "05.09"
    assert product.properties["earthsearch:boa_offset_applied"] is True


def test_a_landsat_item_takes_scale_and_offset_from_the_collections_item_assets() -> None:
    item = load("earth_search_landsat_c2_l2_item.json")
    collection = load("earth_search_landsat_c2_l2_collection.json")
    mapping = CollectionMapping(
        remote="landsat-c2-l2", product_type="L2SP", assets={"lst": "lwir11", "qa": "qa_pixel"}
    )

    product = harmonise(
        item,
        source="earth-search",
        collection="landsat-c2-l2",
        mapping=mapping,
        remote_collection=collection,
    )

    assert product is not None
    lst, qa = product.assets["lst"], product.assets["qa"]
    assert (lst.scale, lst.offset, lst.nodata) == (0.00341802, 149, 0)
    assert lst.href.endswith("_ST_B10.TIF")
    assert qa.nodata == 1
    # file:checksum is a multihash (0x12 0x20: sha256); file:size is bytes.
    assert qa.checksum == "sha256:" + "ab" * 32
    assert qa.size == 1234567
    item["assets"]["qa_pixel"]["file:checksum"] = "1340" + "CD" * 64
    again = harmonise(item, source="e", collection="c", mapping=mapping)
    assert again is not None and again.assets["qa"].checksum == "sha512:" + "cd" * 64
    assert product.cloud_cover == pytest.approx(12.4)
    assert product.product_type == "L2SP"


def test_items_without_a_footprint_or_a_time_are_left_out() -> None:
    item = load("earth_search_sentinel2_l2a_item.json")
    no_time = {
        **item,
        "properties": {k: v for k, v in item["properties"].items() if k != "datetime"},
    }
    no_shape = {**item, "geometry": None, "bbox": None}
    line = {**item, "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}
    line.pop("bbox")

    for broken in (no_time, no_shape, line, {**item, "id": ""}, {**item, "properties": []}):
        assert harmonise(broken, source="s", collection="c", mapping=S2) is None


def test_a_bow_tie_footprint_is_repaired_and_a_missing_one_falls_back_to_the_bbox() -> None:
    item = load("earth_search_sentinel2_l2a_item.json")
    bow_tie = {
        **item,
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
    }
    boxed = {**item, "geometry": None, "bbox": [10.0, 20.0, 11.0, 21.0]}

    repaired = harmonise(bow_tie, source="s", collection="c", mapping=S2)
    from_bbox = harmonise(boxed, source="s", collection="c", mapping=S2)

    assert repaired is not None and repaired.footprint["type"] == "MultiPolygon"
    assert from_bbox is not None
    assert from_bbox.footprint["type"] == "Polygon"
    assert {tuple(p) for p in from_bbox.footprint["coordinates"][0]} == {
        (10.0, 20.0),
        (11.0, 20.0),
        (11.0, 21.0),
        (10.0, 21.0),
    }


def test_oversized_properties_are_bounded_and_unusable_hrefs_left_out() -> None:
    item = load("earth_search_sentinel2_l2a_item.json")
    item["properties"]["huge"] = "x" * 100_000
    item["properties"]["nan"] = float("nan")
    item["assets"]["red"]["href"] = "file:///etc/passwd"

    product = harmonise(item, source="s", collection="c", mapping=S2)

    assert product is not None
    assert "huge" not in product.properties and "nan" not in product.properties
    assert product.properties["eo:cloud_cover"] == pytest.approx(1.286568)
    assert set(product.assets) == {"nir", "scl"}


def test_a_resto_json_page_reads_as_stac_shaped_items() -> None:
    items, total, following = read_page(
        answer("cdse_resto_sentinel2_page.json", "application/json")
    )
    mapping = CollectionMapping(
        remote="Sentinel2", product_type="S2MSI2A", assets={"product": "download"}
    )

    products = [
        harmonise(i, source="cdse", collection="sentinel2-l2a", mapping=mapping) for i in items
    ]

    assert total == 2 and following is None
    first, second, auxiliary = products
    assert auxiliary is None  # resto's empty geometry ([]): no footprint
    assert first is not None and second is not None
    # The product's name, without .SAFE; resto's own id is kept among the properties.
    assert first.identifier == "S2B_MSIL2A_20240715T095559_N0510_R122_T33UXP_20240715T120604"
    assert first.properties["opensearch:id"] == "a6f1b3c2-7d44-4e0a-9a1c-2f6b8e0d9c11"
    assert first.start == datetime(2024, 7, 15, 9, 55, 59, 24000, tzinfo=UTC)
    assert first.cloud_cover == pytest.approx(7.13)
    assert second.cloud_cover is None  # resto's -1: never estimated
    assert first.created_at == datetime(2024, 7, 15, 13, 57, 49, 716000, tzinfo=UTC)
    download = first.assets["product"]
    assert download.href == (
        "https://catalogue.dataspace.copernicus.eu/download/a6f1b3c2-7d44-4e0a-9a1c-2f6b8e0d9c11"
    )
    assert download.size == 1134567890
    assert first.footprint["coordinates"][0][0] == [15.65, 48.75]


def test_a_resto_atom_feed_reads_like_its_json() -> None:
    items, total, following = read_page(answer("resto_sentinel2_page.atom", "application/atom+xml"))
    mapping = CollectionMapping(remote="S2", product_type="S2MSI2A", assets={"product": "download"})

    (product,) = [
        harmonise(i, source="r", collection="sentinel2-l2a", mapping=mapping) for i in items
    ]

    assert total == 2
    assert following == "https://resto.example/collections/S2/search.atom?maxRecords=1&page=2"
    assert product is not None
    assert product.identifier == "S2B_MSIL2A_20240715T095559_N0510_R122_T33UXP_20240715T120604"
    assert product.cloud_cover == pytest.approx(7.13)
    assert product.start == datetime(2024, 7, 15, 9, 55, 59, 24000, tzinfo=UTC)
    # GeoRSS writes latitude first; GeoJSON longitude first.
    assert product.footprint["coordinates"][0][:2] == [[15.65, 48.75], [17.16, 48.72]]
    assert product.assets["product"].size == 1134567890
    assert product.assets["product"].type == "application/zip"


def test_xml_with_a_document_type_declaration_is_refused_unparsed() -> None:
    from cure.ccsi.sources.remote import SourceFailure

    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;">]><feed xmlns="http://www.w3.org/2005/Atom">'
        b"<title>&lol2;</title></feed>"
    )
    hostile = Answer(
        200, httpx.Headers({"content-type": "application/atom+xml"}), bomb, "https://x.test/s"
    )

    with pytest.raises(SourceFailure, match="document type declaration"):
        read_page(hostile)
