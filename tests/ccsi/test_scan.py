"""GeoTIFFs describe themselves: footprint in WGS84, acquisition times, type, size, checksum."""

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform as warp_transform
from shapely.geometry import Point, shape

from cure.ccsi.scan import period_of, read_geotiff_product, register_folder
from cure.storage.service import S3Storage


def write_geotiff(path: Path, *, crs: str = "EPSG:32633", **tags: str) -> Path:
    """A 20 x 10 pixel raster, 100 m pixels, its upper left corner at 500000 E, 5350000 N."""
    profile = {
        "driver": "GTiff",
        "width": 20,
        "height": 10,
        "count": 1,
        "dtype": "uint8",
        "crs": crs,
        "transform": Affine(100, 0, 500000, 0, -100, 5350000),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(numpy.arange(200, dtype="uint8").reshape(1, 10, 20))
        dst.update_tags(**tags)
    return path


def test_reads_footprint_times_type_size_and_checksum(tmp_path) -> None:
    path = write_geotiff(
        tmp_path / "S2B_T33UXP_20240701.tif",
        ACQUISITION_START="2024-07-01T10:00:31Z",
        ACQUISITION_END="2024-07-01T10:00:41Z",
        PRODUCT_TYPE="S2MSI2A",
    )
    scanned = read_geotiff_product(path)
    assert scanned.identifier == "S2B_T33UXP_20240701"
    assert scanned.product_type == "S2MSI2A"
    assert scanned.start == datetime(2024, 7, 1, 10, 0, 31, tzinfo=UTC)
    assert scanned.end == datetime(2024, 7, 1, 10, 0, 41, tzinfo=UTC)
    data = path.read_bytes()
    assert scanned.size == len(data)
    assert scanned.checksum == "sha256:" + hashlib.sha256(data).hexdigest()
    footprint = shape(scanned.footprint)
    # 500000 E in UTM 33 is the central meridian, 15 E; 5350000 N is about 48.3 N.
    west, south, east, north = footprint.bounds
    assert west == pytest.approx(15.0, abs=1e-6)
    assert 48.2 < south < north < 48.4 and 15.0 < east < 15.04
    corners = [(500000 + dx, 5350000 - dy) for dx in (0, 2000) for dy in (0, 1000)]
    lons, lats = warp_transform("EPSG:32633", "EPSG:4326", *zip(*corners, strict=True))
    for lon, lat in zip(lons, lats, strict=True):
        assert footprint.buffer(1e-9).contains(Point(lon, lat))
    product = scanned.as_product("inputs/x/S2B.tif")
    assert product.assets["data"].checksum == scanned.checksum
    assert product.footprint["type"] == "Polygon"


def test_falls_back_to_the_tiff_datetime_and_a_given_type(tmp_path) -> None:
    path = write_geotiff(tmp_path / "old.tiff", TIFFTAG_DATETIME="2023:05:06 07:08:09")
    scanned = read_geotiff_product(path, product_type="DEM")
    assert scanned.start == scanned.end == datetime(2023, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert scanned.product_type == "DEM"
    with pytest.raises(ValueError, match="PRODUCT_TYPE"):
        read_geotiff_product(path)
    bare = write_geotiff(tmp_path / "bare.tif", PRODUCT_TYPE="X")
    with pytest.raises(ValueError, match="ACQUISITION_START"):
        read_geotiff_product(bare)


def test_a_file_without_time_takes_the_period_given_its_own_time_wins(tmp_path) -> None:
    """The HRL's GeoTIFFs carry no acquisition time: `cure ccsi register --start 2018-01-01
    --end 2018-12-31` gives them their reference year."""
    bare = write_geotiff(tmp_path / "IMD_2018_020m_E48N28.tif")
    scanned = read_geotiff_product(
        bare, product_type="IMD", period=period_of("2018-01-01", "2018-12-31")
    )
    assert scanned.start == datetime(2018, 1, 1, tzinfo=UTC)
    assert scanned.end == datetime(2018, 12, 31, 23, 59, 59, tzinfo=UTC)
    tagged = write_geotiff(tmp_path / "tagged.tif", ACQUISITION_START="2024-07-01T10:00:31Z")
    own = read_geotiff_product(tagged, product_type="X", period=period_of("2018-01-01"))
    assert own.start == datetime(2024, 7, 1, 10, 0, 31, tzinfo=UTC)
    # TIFF's DateTime says when the file was made: a period given wins over it.
    made = write_geotiff(tmp_path / "made.tif", TIFFTAG_DATETIME="2023:05:06 07:08:09")
    given = read_geotiff_product(made, product_type="X", period=period_of("20180101"))
    assert (given.start, given.end) == (
        datetime(2018, 1, 1, tzinfo=UTC),
        datetime(2018, 1, 1, 23, 59, 59, tzinfo=UTC),
    )
    with pytest.raises(ValueError, match="--end is before --start"):
        period_of("2018-12-31", "2018-01-01")
    with pytest.raises(ValueError, match="not an ISO 8601"):
        period_of("last year")


async def test_reads_a_geotiff_over_http(app, tmp_path, settings) -> None:
    import asyncio

    path = write_geotiff(
        tmp_path / "remote.tif", ACQUISITION_START="2024-01-02T03:04:05Z", PRODUCT_TYPE="GRD"
    )
    storage = S3Storage(settings)
    key = f"scan-tests/{tmp_path.name}/remote.tif"
    await storage.put(key, path.read_bytes(), media_type="image/tiff")
    url = await storage.presigned_url(key, expires_in=60)
    scanned = await asyncio.to_thread(read_geotiff_product, url)
    assert scanned.identifier == "remote" and scanned.product_type == "GRD"
    assert scanned.checksum == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


async def test_register_folder_uploads_registers_and_skips_known_files(
    app, tmp_path, settings, session, collection
) -> None:
    (tmp_path / "sub").mkdir()
    write_geotiff(tmp_path / "a.tif", ACQUISITION_START="2024-07-01T00:00:00Z", PRODUCT_TYPE="L2A")
    write_geotiff(
        tmp_path / "sub" / "b.TIF", ACQUISITION_START="2024-07-02T00:00:00Z", PRODUCT_TYPE="L2A"
    )
    (tmp_path / "notes.txt").write_text("not a raster")
    report = await register_folder(session, settings, collection, tmp_path)
    await session.commit()
    assert sorted(p.identifier for p in report.added) == ["a", "b"]
    keys = {p.identifier: p.assets["data"]["href"] for p in report.added}
    assert keys == {"a": f"inputs/{collection}/a.tif", "b": f"inputs/{collection}/sub/b.TIF"}
    link = await S3Storage(settings).presigned_url(keys["b"], expires_in=60)
    async with httpx.AsyncClient() as http:
        uploaded = await http.get(link)
    assert uploaded.content == (tmp_path / "sub" / "b.TIF").read_bytes()

    write_geotiff(tmp_path / "c.tif", ACQUISITION_START="2024-07-03T00:00:00Z", PRODUCT_TYPE="L2A")
    again = await register_folder(session, settings, collection, tmp_path)
    await session.commit()
    assert [p.identifier for p in again.added] == ["c"]
    assert sorted(again.skipped) == ["a", "b"]


async def test_register_stored_reads_geotiffs_already_in_the_bucket(
    app, tmp_path, settings, session, collection
) -> None:
    from cure.ccsi.scan import register_stored

    storage = S3Storage(settings)
    prefix = f"landing/{collection}/"
    for name in ("c.tif", "d.tiff", "notes.txt"):
        source = write_geotiff(
            tmp_path / name,
            ACQUISITION_START="2024-07-02T10:00:00Z",
            PRODUCT_TYPE="S2MSI2A",
        )
        await storage.put_file(f"{prefix}{name}", source, media_type="image/tiff")
    report = await register_stored(session, settings, collection, prefix)
    await session.commit()
    hrefs = sorted(asset["href"] for p in report.added for asset in p.assets.values())
    assert hrefs == [f"{prefix}c.tif", f"{prefix}d.tiff"]  # the stored keys; the .txt is no GeoTIFF
    assert {p.product_type for p in report.added} == {"S2MSI2A"}
    again = await register_stored(session, settings, collection, prefix)
    assert (again.added, sorted(again.skipped)) == ([], ["c", "d"])
