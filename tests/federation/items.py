"""STAC collections and items for the test scenes, in the exact shape Element 84's Earth Search
(v1) publishes them: ``sentinel-2-l2a`` (sentinel-cogs COGs over HTTPS, ``raster:bands`` with
scale 0.0001 and offset -0.1 from processing baseline 04.00, ``earthsearch:*`` properties) and
``landsat-c2-l2`` (USGS COGs on ``s3://usgs-landsat/...``, requester pays, with an HTTPS
alternate; ST_B10 scale 0.00341802 and offset 149.0, QA_PIXEL nodata 1; ``file:checksum`` as a
multihash). Hrefs are given by the caller: the scene server's URLs and moto's ``s3://`` keys.
"""

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rasterio.warp import transform as transform_points

from tests.federation import scenes

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
S2_COLLECTION = "sentinel-2-l2a"
LANDSAT_COLLECTION = "landsat-c2-l2"
EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"  # only in links, as the originals

# The scenes the tests order from. The Sentinel-2 date is one no local catalogue holds.
S2_ITEM_ID = "S2B_33UXP_20260714_0_L2A"
S2_DATETIME = "2026-07-14T09:56:51.024000Z"
S2_CLOUD_COVER = 8.312471
# The same tile five days later, nearly all cloud (its assets are the same files).
S2_CLOUDY_ITEM_ID = "S2A_33UXP_20260719_0_L2A"
S2_CLOUDY_DATETIME = "2026-07-19T09:56:43.512000Z"
S2_CLOUDY_CLOUD_COVER = 96.204118
LANDSAT_ITEM_ID = "LC09_L2SP_190026_20260715_02_T1"
LANDSAT_DISPLAY_ID = "LC09_L2SP_190026_20260715_20260716_02_T1"
LANDSAT_DATETIME = "2026-07-15T09:41:27.123456Z"
LANDSAT_CLOUD_COVER = 12.4
LANDSAT_CLOUDY_ITEM_ID = "LC08_L2SP_190026_20260723_02_T1"
LANDSAT_CLOUDY_DISPLAY_ID = "LC08_L2SP_190026_20260723_20260724_02_T1"
LANDSAT_CLOUDY_DATETIME = "2026-07-23T09:41:12.654321Z"
LANDSAT_CLOUDY_CLOUD_COVER = 88.7
# An archive of earlier Sentinel-2 items over the same tile and its western neighbour, every
# 5 days from 2026-05-01 to 2026-06-30 (26 items, more than two pages of 10); their assets are
# the same files as the main scene's.
ARCHIVE_START = datetime(2026, 5, 1, 9, 56, 40, tzinfo=UTC)
ARCHIVE_STEPS = 13
ARCHIVE_TILES = ("33UXP", "33UWP")


def s2_key_prefix(item_id: str) -> str:
    """Where sentinel-cogs keeps an item's files: ``sentinel-s2-l2a-cogs/33/U/XP/2026/7/<id>``."""
    tile = item_id.split("_")[1]
    day = datetime.strptime(item_id.split("_")[2], "%Y%m%d")
    return f"sentinel-s2-l2a-cogs/{tile[:2]}/{tile[2]}/{tile[3:]}/{day.year}/{day.month}/{item_id}"


def landsat_key_prefix(display_id: str) -> str:
    """Where USGS keeps a scene: ``collection02/level-2/standard/oli-tirs/2026/190/026/<id>``."""
    path_row, year = display_id.split("_")[2], display_id.split("_")[3][:4]
    return (
        f"collection02/level-2/standard/oli-tirs/{year}/{path_row[:3]}/{path_row[3:]}/{display_id}"
    )


def multihash_sha256(file: Path) -> str:
    """A file's ``file:checksum``: a sha2-256 multihash in hex (0x12, 32 bytes, digest)."""
    return "1220" + hashlib.sha256(file.read_bytes()).hexdigest()


def multihash_sha512(file: Path) -> str:
    """As USGS gives it: a sha2-512 multihash in hex (0x13, 64 bytes, digest)."""
    return "1340" + hashlib.sha512(file.read_bytes()).hexdigest()


def _polygon(xs: list[float], ys: list[float]) -> dict[str, Any]:
    lons, lats = transform_points(scenes.CRS, "EPSG:4326", xs, ys)
    ring = [[round(x, 12), round(y, 12)] for x, y in zip(lons, lats, strict=True)]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def _bbox(geometry: dict[str, Any]) -> list[float]:
    ring = geometry["coordinates"][0]
    return [
        min(p[0] for p in ring),
        min(p[1] for p in ring),
        max(p[0] for p in ring),
        max(p[1] for p in ring),
    ]


def s2_footprint(shift_x: float = 0.0) -> dict[str, Any]:
    """Where the tile has data: the whole grid but its no-data wedge in the lower-left corner."""
    west, north = scenes.S2_ORIGIN
    west += shift_x
    east, south = west + scenes.S2_SIZE * 10, north - scenes.S2_SIZE * 10
    xs = [west, east, east, west + 436 * 20, west]
    ys = [north, north, south, south, north - 1100 * 20]
    return _polygon(xs, ys)


def landsat_footprint() -> dict[str, Any]:
    """Where the scene has data: the whole grid but its fill wedge in the upper-right corner."""
    west, north = scenes.LANDSAT_ORIGIN
    size = scenes.LANDSAT_SIZE * 30
    xs = [west, west + 900 * 30, west + size, west + size, west]
    ys = [north, north, north - 126 * 30, north - size, north - size]
    return _polygon(xs, ys)


# -- Sentinel-2 L2A (Earth Search v1, sentinel-2-l2a) ------------------------------------------


def _reflectance_band(name: str, number: str, wavelength: float, fwhm: float) -> dict[str, Any]:
    return {
        "type": COG,
        "title": f"{name.capitalize() if name != 'nir' else 'NIR 1'} (band {number}) - 10m",
        "eo:bands": [
            {
                "name": name,
                "common_name": name,
                "description": f"{name.capitalize() if name != 'nir' else 'NIR 1'} (band {number})",
                "center_wavelength": wavelength,
                "full_width_half_max": fwhm,
            }
        ],
        "gsd": 10,
        "proj:shape": [scenes.S2_SIZE, scenes.S2_SIZE],
        "proj:transform": [10, 0, scenes.S2_ORIGIN[0], 0, -10, scenes.S2_ORIGIN[1]],
        "raster:bands": [
            {
                "nodata": 0,
                "data_type": "uint16",
                "bits_per_sample": 15,
                "spatial_resolution": 10,
                "scale": scenes.S2_SCALE,
                "offset": scenes.S2_OFFSET,
            }
        ],
        "roles": ["data", "reflectance"],
    }


def s2_assets(hrefs: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The assets of an Earth Search Sentinel-2 L2A item, those in ``hrefs`` (by key: red, nir,
    scl, visual, thumbnail, product_metadata) with those hrefs."""
    scl_shape = [scenes.SCL_SIZE, scenes.SCL_SIZE]
    scl_transform = [20, 0, scenes.S2_ORIGIN[0], 0, -20, scenes.S2_ORIGIN[1]]
    templates: dict[str, dict[str, Any]] = {
        "nir": _reflectance_band("nir", "8", 0.842, 0.145),
        "red": _reflectance_band("red", "4", 0.665, 0.038),
        "scl": {
            "type": COG,
            "title": "Scene classification map (SCL)",
            "proj:shape": scl_shape,
            "proj:transform": scl_transform,
            "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}],
            "roles": ["data", "reflectance"],
        },
        "visual": {
            "type": COG,
            "title": "True color image",
            "eo:bands": [
                {
                    "name": "red",
                    "common_name": "red",
                    "description": "Red (band 4)",
                    "center_wavelength": 0.665,
                    "full_width_half_max": 0.038,
                },
                {
                    "name": "green",
                    "common_name": "green",
                    "description": "Green (band 3)",
                    "center_wavelength": 0.56,
                    "full_width_half_max": 0.045,
                },
                {
                    "name": "blue",
                    "common_name": "blue",
                    "description": "Blue (band 2)",
                    "center_wavelength": 0.49,
                    "full_width_half_max": 0.098,
                },
            ],
            "proj:shape": [scenes.S2_SIZE, scenes.S2_SIZE],
            "proj:transform": [10, 0, scenes.S2_ORIGIN[0], 0, -10, scenes.S2_ORIGIN[1]],
            "roles": ["visual"],
        },
        "thumbnail": {"type": "image/jpeg", "title": "Thumbnail image", "roles": ["thumbnail"]},
        "product_metadata": {"type": "application/xml", "roles": ["metadata"]},
    }
    return {
        key: {"href": hrefs[key], **template} for key, template in templates.items() if key in hrefs
    }


def sentinel2_item(
    item_id: str,
    *,
    when: str,
    cloud_cover: float,
    hrefs: dict[str, str],
    geometry: dict[str, Any] | None = None,
    baseline: str = "05.11",
) -> dict[str, Any]:
    """An Earth Search v1 ``sentinel-2-l2a`` item (as its API answers, before its links are
    rewritten by the serving API)."""
    platform = {"S2A": "sentinel-2a", "S2B": "sentinel-2b", "S2C": "sentinel-2c"}[item_id[:3]]
    tile = item_id.split("_")[1]
    geometry = geometry or s2_footprint()
    stamp = datetime.strptime(when, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    generated = (stamp + timedelta(hours=2, minutes=13)).strftime("%Y%m%dT%H%M%S")
    sensed = stamp.strftime("%Y%m%dT%H%M%S")
    created = (stamp + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    prefix = s2_key_prefix(item_id)
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "properties": {
            "created": created,
            "platform": platform,
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": cloud_cover,
            "proj:epsg": scenes.EPSG,
            "mgrs:utm_zone": int(tile[:2]),
            "mgrs:latitude_band": tile[2],
            "mgrs:grid_square": tile[3:],
            "grid:code": f"MGRS-{tile}",
            "view:sun_azimuth": 158.412846331,
            "view:sun_elevation": 60.9812747651,
            "s2:degraded_msi_data_percentage": 0.0123,
            "s2:nodata_pixel_percentage": 10.146812,
            "s2:saturated_defective_pixel_percentage": 0,
            "s2:dark_features_percentage": 0.214613,
            "s2:cloud_shadow_percentage": 0.713425,
            "s2:vegetation_percentage": 48.651211,
            "s2:not_vegetated_percentage": 38.408711,
            "s2:water_percentage": 2.518833,
            "s2:unclassified_percentage": 0.412911,
            "s2:medium_proba_clouds_percentage": round(cloud_cover * 0.3, 6),
            "s2:high_proba_clouds_percentage": round(cloud_cover * 0.6, 6),
            "s2:thin_cirrus_percentage": round(cloud_cover * 0.1, 6),
            "s2:snow_ice_percentage": 0.004188,
            "s2:product_type": "S2MSI2A",
            "s2:processing_baseline": baseline,
            "s2:product_uri": (
                f"{item_id[:3]}_MSIL2A_{sensed}_N{baseline.replace('.', '')}_R079_T{tile}_{generated}.SAFE"
            ),
            "s2:generation_time": (stamp + timedelta(hours=2, minutes=13)).strftime(
                "%Y-%m-%dT%H:%M:%S.000000Z"
            ),
            "s2:datatake_id": f"G{item_id[:3]}_{sensed}_048301_N{baseline}",
            "s2:datatake_type": "INS-NOBS",
            "s2:datastrip_id": (
                f"{item_id[:3]}_OPER_MSI_L2A_DS_2BPS_{generated}_S{sensed}_N{baseline}"
            ),
            "s2:granule_id": (
                f"{item_id[:3]}_OPER_MSI_L2A_TL_2BPS_{generated}_A048301_T{tile}_N{baseline}"
            ),
            "s2:reflectance_conversion_factor": 0.968721836184,
            "datetime": when,
            "s2:sequence": "0",
            "earthsearch:s3_path": f"s3://sentinel-cogs/{prefix}",
            "earthsearch:payload_id": (
                "roda-sentinel2/workflow-sentinel2-to-stac/"
                + hashlib.md5(item_id.encode(), usedforsecurity=False).hexdigest()
            ),
            "earthsearch:boa_offset_applied": True,
            "processing:software": {"sentinel2-to-stac": "0.1.1"},
            "updated": created,
        },
        "geometry": geometry,
        "links": [
            {
                "rel": "canonical",
                "href": f"s3://sentinel-cogs/{prefix}/{item_id}.json",
                "type": "application/json",
            },
            {
                "rel": "license",
                "href": "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice",
            },
            {
                "rel": "derived_from",
                "href": f"{EARTH_SEARCH}/collections/sentinel-2-l1c/items/{item_id[:-3]}L1C",
                "type": "application/geo+json",
            },
        ],
        "assets": s2_assets(hrefs),
        "bbox": _bbox(geometry),
        "stac_extensions": [
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
            "https://stac-extensions.github.io/file/v2.1.0/schema.json",
        ],
        "collection": S2_COLLECTION,
    }


def archive_items(hrefs: dict[str, str]) -> list[dict[str, Any]]:
    """Earlier Sentinel-2 items (see ARCHIVE_*), cloud cover 3..87 %, alternating platforms."""
    items = []
    for step in range(ARCHIVE_STEPS):
        when = ARCHIVE_START + timedelta(days=5 * step)
        for number, tile in enumerate(ARCHIVE_TILES):
            platform = "S2A" if step % 2 == 0 else "S2B"
            item_id = f"{platform}_{tile}_{when:%Y%m%d}_0_L2A"
            shift = -(scenes.S2_SIZE * 10 - 9780) * number  # the western neighbour overlaps
            items.append(
                sentinel2_item(
                    item_id,
                    when=when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z",
                    cloud_cover=float(3 + (step * 37 + number * 11) % 85),
                    hrefs=hrefs,
                    geometry=s2_footprint(shift),
                )
            )
    return items


def sentinel2_collection() -> dict[str, Any]:
    template = s2_assets({key: "" for key in ("red", "nir", "scl", "visual", "thumbnail")})
    item_assets = {
        key: {k: v for k, v in asset.items() if k not in ("href", "proj:shape", "proj:transform")}
        for key, asset in template.items()
    }
    return {
        "type": "Collection",
        "id": S2_COLLECTION,
        "stac_version": "1.0.0",
        "description": (
            "Global Sentinel-2 data from the Multispectral Instrument (MSI) onboard Sentinel-2"
        ),
        "title": "Sentinel-2 Level-2A",
        "keywords": ["sentinel", "earth observation", "esa"],
        "license": "proprietary",
        "providers": [
            {"name": "ESA", "roles": ["producer"], "url": "https://earth.esa.int/web/guest/home"},
            {
                "name": "Sinergise",
                "roles": ["processor"],
                "url": "https://registry.opendata.aws/sentinel-2/",
            },
            {
                "name": "AWS",
                "roles": ["host"],
                "url": "http://sentinel-pds.s3-website.eu-central-1.amazonaws.com/",
            },
            {"name": "Element 84", "roles": ["processor"], "url": "https://element84.com"},
        ],
        "extent": {
            "spatial": {"bbox": [[-180, -90, 180, 90]]},
            "temporal": {"interval": [["2015-06-27T10:25:31.456000Z", None]]},
        },
        "summaries": {
            "platform": ["sentinel-2a", "sentinel-2b", "sentinel-2c"],
            "constellation": ["sentinel-2"],
            "instruments": ["msi"],
            "gsd": [10, 20, 60],
            "view:off_nadir": [0],
            "sci:citation": ["Copernicus Sentinel data [Year]"],
        },
        "item_assets": item_assets,
        "links": [
            {
                "rel": "license",
                "href": "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice",
            }
        ],
        "stac_extensions": [
            "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
            "https://stac-extensions.github.io/scientific/v1.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
        ],
    }


# -- Landsat Collection 2 Level-2 (Earth Search v1, landsat-c2-l2) ------------------------------


def _landsat_asset(
    href: str, https: str | None, template: dict[str, Any], checksum: str | None
) -> dict[str, Any]:
    asset: dict[str, Any] = {"href": href, **template}
    if href.startswith("s3://"):
        asset.update(
            {
                "storage:platform": "AWS",
                "storage:region": "us-west-2",
                "storage:requester_pays": True,
            }
        )
    if https:
        asset["alternate"] = {"https": {"href": https}}
    if checksum:
        asset["file:checksum"] = checksum
    return asset


LANDSAT_TEMPLATES: dict[str, dict[str, Any]] = {
    "lwir11": {
        "type": COG,
        "title": "Surface Temperature Band",
        "description": "Collection 2 Level-2 Thermal Infrared Band (ST_B10) Surface Temperature",
        "eo:bands": [
            {
                "name": "TIRS_B10",
                "common_name": "lwir11",
                "description": "Long-wave infrared",
                "center_wavelength": 10.9,
                "full_width_half_max": 0.59,
            }
        ],
        "gsd": 100,
        "raster:bands": [
            {
                "nodata": 0,
                "data_type": "uint16",
                "spatial_resolution": 30,
                "unit": "kelvin",
                "scale": scenes.ST_SCALE,
                "offset": scenes.ST_OFFSET,
            }
        ],
        "roles": ["data", "temperature"],
    },
    "qa_pixel": {
        "type": COG,
        "title": "Pixel Quality Assessment Band",
        "description": "Collection 2 Level-1 Pixel Quality Assessment Band (QA_PIXEL)",
        "classification:bitfields": [
            {"name": "fill", "description": "Image or fill data", "offset": 0, "length": 1},
            {"name": "dilated_cloud", "description": "Dilated cloud", "offset": 1, "length": 1},
            {"name": "cirrus", "description": "Cirrus mask", "offset": 2, "length": 1},
            {"name": "cloud", "description": "Cloud mask", "offset": 3, "length": 1},
            {"name": "cloud_shadow", "description": "Cloud shadow mask", "offset": 4, "length": 1},
            {"name": "snow", "description": "Snow/Ice mask", "offset": 5, "length": 1},
            {"name": "clear", "description": "Clear mask", "offset": 6, "length": 1},
            {"name": "water", "description": "Water mask", "offset": 7, "length": 1},
        ],
        "raster:bands": [
            {"nodata": 1, "data_type": "uint16", "spatial_resolution": 30, "unit": "bit index"}
        ],
        "roles": ["cloud", "cloud-shadow", "snow-ice", "water-mask"],
    },
    "mtl.json": {
        "type": "application/json",
        "title": "Product Metadata File (json)",
        "description": "Collection 2 Level-2 Product Metadata File (json)",
        "roles": ["metadata"],
    },
}


def landsat_item(
    item_id: str,
    display_id: str,
    *,
    when: str,
    cloud_cover: float,
    hrefs: dict[str, str],
    https: dict[str, str] | None = None,
    checksums: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An Earth Search v1 ``landsat-c2-l2`` item: ``hrefs`` by asset key (lwir11, qa_pixel,
    mtl.json; USGS's ``s3://usgs-landsat/...``), ``https`` the alternates, ``checksums`` the
    ``file:checksum`` of each."""
    https, checksums = https or {}, checksums or {}
    geometry = landsat_footprint()
    platform = {"LC08": "landsat-8", "LC09": "landsat-9"}[item_id[:4]]
    stamp = datetime.strptime(when, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    created = (stamp + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    path_row = item_id.split("_")[2]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "properties": {
            "platform": platform,
            "instruments": ["oli", "tirs"],
            "created": created,
            "gsd": 30,
            "description": "Landsat Collection 2 Level-2",
            "eo:cloud_cover": cloud_cover,
            "view:off_nadir": 0,
            "view:sun_elevation": 59.81526411,
            "view:sun_azimuth": 141.20373157,
            "proj:epsg": scenes.EPSG,
            "proj:shape": [scenes.LANDSAT_SIZE, scenes.LANDSAT_SIZE],
            "proj:transform": [30, 0, scenes.LANDSAT_ORIGIN[0], 0, -30, scenes.LANDSAT_ORIGIN[1]],
            "landsat:cloud_cover_land": round(cloud_cover - 0.5, 2),
            "landsat:wrs_type": "2",
            "landsat:wrs_path": path_row[:3],
            "landsat:wrs_row": path_row[3:],
            "landsat:collection_category": "T1",
            "landsat:collection_number": "02",
            "landsat:correction": "L2SP",
            "landsat:scene_id": f"L{item_id[3]}{path_row}{stamp:%Y%j}LGN00",
            "landsat:product_generated": (stamp + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "grid:code": f"WRS2-{path_row}",
            "datetime": when,
            "updated": created,
        },
        "geometry": geometry,
        "links": [
            {
                "rel": "cite-as",
                "href": "https://doi.org/10.5066/P9OGBGM6",
                "title": "Landsat 8-9 OLI/TIRS Collection 2 Level-2",
            },
            {
                "rel": "via",
                "href": (
                    "https://landsatlook.usgs.gov/stac-server/collections/landsat-c2l2-st/items/"
                    f"{display_id}_ST"
                ),
                "type": "application/json",
                "title": "USGS STAC Item",
            },
            {
                "rel": "license",
                "href": "https://www.usgs.gov/core-science-systems/hdds/data-policy",
            },
        ],
        "assets": {
            key: _landsat_asset(hrefs[key], https.get(key), template, checksums.get(key))
            for key, template in LANDSAT_TEMPLATES.items()
            if key in hrefs
        },
        "bbox": _bbox(geometry),
        "stac_extensions": [
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://landsat.usgs.gov/stac/landsat-extension/v1.1.1/schema.json",
            "https://stac-extensions.github.io/classification/v1.0.0/schema.json",
            "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
            "https://stac-extensions.github.io/file/v2.1.0/schema.json",
            "https://stac-extensions.github.io/alternate-assets/v1.1.0/schema.json",
            "https://stac-extensions.github.io/storage/v1.0.0/schema.json",
        ],
        "collection": LANDSAT_COLLECTION,
    }


def landsat_collection() -> dict[str, Any]:
    item_assets = {key: dict(template) for key, template in LANDSAT_TEMPLATES.items()}
    return {
        "type": "Collection",
        "id": LANDSAT_COLLECTION,
        "stac_version": "1.0.0",
        "title": "Landsat Collection 2 Level-2",
        "description": (
            "Atmospherically corrected global Landsat Collection 2 Level-2 data from the Thematic"
            " Mapper (TM) onboard Landsat 4 and 5, the Enhanced Thematic Mapper Plus (ETM+) onboard"
            " Landsat 7, and the Operational Land Imager (OLI) and Thermal Infrared Sensor (TIRS)"
            " onboard Landsat 8 and 9."
        ),
        "keywords": ["landsat", "usgs", "nasa", "satellite", "global", "imagery"],
        "license": "proprietary",
        "providers": [
            {"name": "NASA", "roles": ["producer"], "url": "https://landsat.gsfc.nasa.gov/"},
            {
                "name": "USGS",
                "roles": ["producer", "processor", "licensor"],
                "url": "https://www.usgs.gov/landsat-missions/landsat-collection-2-level-2-science-products",
            },
            {"name": "Element 84", "roles": ["host"], "url": "https://element84.com"},
        ],
        "extent": {
            "spatial": {"bbox": [[-180, -90, 180, 90]]},
            "temporal": {"interval": [["1982-08-22T00:00:00Z", None]]},
        },
        "summaries": {
            "platform": ["landsat-4", "landsat-5", "landsat-7", "landsat-8", "landsat-9"],
            "instruments": ["tm", "etm+", "oli", "tirs"],
            "view:off_nadir": [0],
        },
        "item_assets": item_assets,
        "links": [
            {"rel": "license", "href": "https://www.usgs.gov/core-science-systems/hdds/data-policy"}
        ],
        "stac_extensions": [
            "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/classification/v1.0.0/schema.json",
        ],
    }


# -- Sentinel-2 L2A (the Copernicus Data Space Ecosystem's STAC, sentinel-2-l2a) -----------------

CDSE_PRODUCT_UUID = "3c2b7e0a-5d41-4f7e-9a0c-2f1e6b8d9a47"
CDSE_TILE = "33UXP"
CDSE_OIDC = (
    "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/.well-known/openid-configuration"
)
CDSE_BANDS = {
    "B04_10m": ("B04", "red", "Red (band 4)", 0.665, 0.038, 10),
    "B08_10m": ("B08", "nir", "NIR 1 (band 8)", 0.842, 0.145, 10),
}


def cdse_identifier(s2_item: dict[str, Any]) -> str:
    """The product's name without ``.SAFE``: CDSE's item id for the same product."""
    return str(s2_item["properties"]["s2:product_uri"]).removesuffix(".SAFE")


def cdse_sensed(identifier: str) -> str:
    return identifier.split("_")[2]


def cdse_key(identifier: str, asset: str) -> str:
    """Where eodata keeps a granule's file: ``Sentinel-2/MSI/L2A/2026/07/14/<name>.SAFE/
    GRANULE/L2A_T33UXP_A048301_<sensed>/IMG_DATA/R10m/T33UXP_<sensed>_B04_10m.jp2``."""
    sensed = cdse_sensed(identifier)
    resolution = asset.split("_")[1]
    return (
        f"Sentinel-2/MSI/L2A/{sensed[:4]}/{sensed[4:6]}/{sensed[6:8]}/{identifier}.SAFE/GRANULE/"
        f"L2A_T{CDSE_TILE}_A048301_{sensed}/IMG_DATA/R{resolution}/T{CDSE_TILE}_{sensed}_{asset}.jp2"
    )


def cdse_odata_path(identifier: str, asset: str) -> str:
    """The same file through CDSE's OData download service: ``odata/v1/Products(<uuid>)/
    Nodes(<name>.SAFE)/Nodes(GRANULE)/.../Nodes(<file>)/$value``."""
    parts = cdse_key(identifier, asset).split("/")[6:]  # from <name>.SAFE on
    nodes = "/".join(f"Nodes({part})" for part in parts)
    return f"odata/v1/Products({CDSE_PRODUCT_UUID})/{nodes}/$value"


def multihash_md5(file: Path) -> str:
    """As CDSE gives it: an md5 multihash in hex (0xd5 0x01, 16 bytes, digest)."""
    return "d50110" + hashlib.md5(file.read_bytes(), usedforsecurity=False).hexdigest()


def _cdse_asset(key: str, href: str, https: str, file: Path) -> dict[str, Any]:
    resolution = int(key.split("_")[1].removesuffix("m"))
    size = scenes.S2_SIZE * 10 // resolution
    asset: dict[str, Any] = {
        "href": href,
        "type": "image/jp2",
        "roles": ["data", "reflectance", f"gsd:{resolution}m"],
        "gsd": resolution,
        "nodata": 0,
        "data_type": "uint16" if key in CDSE_BANDS else "uint8",
        "proj:code": scenes.CRS,
        "proj:shape": [size, size],
        "proj:transform": [resolution, 0, scenes.S2_ORIGIN[0], 0, -resolution, scenes.S2_ORIGIN[1]],
        "file:size": file.stat().st_size,
        "file:checksum": multihash_md5(file),
        "auth:refs": ["s3"],
        "storage:refs": ["cdse-s3"],
        "alternate:name": "S3",
        "alternate": {
            "https": {
                "href": https,
                "alternate:name": "HTTPS",
                "auth:refs": ["oidc"],
                "storage:refs": ["cdse"],
            }
        },
    }
    if key in CDSE_BANDS:
        name, common, description, wavelength, fwhm, _ = CDSE_BANDS[key]
        asset["title"] = f"{description.split(' (')[0]} - {resolution}m"
        asset["bands"] = [
            {
                "name": name,
                "description": description,
                "eo:common_name": common,
                "eo:center_wavelength": wavelength,
                "eo:full_width_half_max": fwhm,
            }
        ]
        asset["raster:scale"] = scenes.S2_SCALE
        asset["raster:offset"] = scenes.S2_OFFSET
    else:
        asset["title"] = "Scene classification map (SCL)"
        asset["roles"] = ["data", "classification", f"gsd:{resolution}m"]
    return asset


def cdse_sentinel2_item(
    s2_item: dict[str, Any], *, hrefs: dict[str, str], https: dict[str, str], files: dict[str, Path]
) -> dict[str, Any]:
    """The Earth Search item's product as CDSE's STAC (v1, STAC 1.1) answers it: the SAFE's
    JPEG 2000 granules on ``s3://eodata/...`` (S3 keys) with the OData download as their
    ``alternate.https`` (an OIDC token), ``raster:scale``/``raster:offset`` on each band."""
    identifier = cdse_identifier(s2_item)
    source = s2_item["properties"]
    stamp = datetime.strptime(source["datetime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    published = (stamp + timedelta(hours=3, minutes=7)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json",
            "https://stac-extensions.github.io/authentication/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v2.0.0/schema.json",
            "https://stac-extensions.github.io/file/v2.1.0/schema.json",
            "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
            "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
            "https://stac-extensions.github.io/product/v0.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v2.0.0/schema.json",
            "https://stac-extensions.github.io/sat/v1.1.0/schema.json",
            "https://stac-extensions.github.io/storage/v2.0.0/schema.json",
            "https://stac-extensions.github.io/timestamps/v1.1.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
        ],
        "id": identifier,
        "collection": S2_COLLECTION,
        "geometry": s2_item["geometry"],
        "bbox": s2_item["bbox"],
        "properties": {
            "datetime": source["datetime"],
            "start_datetime": source["datetime"],
            "end_datetime": source["datetime"],
            "created": published,
            "updated": published,
            "published": published,
            "platform": source["platform"],
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": source["eo:cloud_cover"],
            "eo:snow_cover": source["s2:snow_ice_percentage"],
            "grid:code": f"MGRS-{CDSE_TILE}",
            "proj:code": scenes.CRS,
            "product:type": "S2MSI2A",
            "product:timeliness": "PT24H",
            "product:timeliness_category": "NRT",
            "processing:level": "L2",
            "processing:version": source["s2:processing_baseline"],
            "processing:facility": "ESA",
            "sat:relative_orbit": 79,
            "sat:absolute_orbit": 48301,
            "sat:orbit_state": "descending",
            "view:sun_azimuth": source["view:sun_azimuth"],
            "view:sun_elevation": source["view:sun_elevation"],
            "auth:schemes": {
                "s3": {"type": "s3"},
                "oidc": {"type": "openIdConnect", "openIdConnectUrl": CDSE_OIDC},
            },
            "storage:schemes": {
                "cdse-s3": {
                    "title": "Copernicus Data Space Ecosystem S3",
                    "platform": "https://eodata.dataspace.copernicus.eu",
                    "type": "custom-s3",
                    "requester_pays": False,
                },
                "cdse": {
                    "title": "Copernicus Data Space Ecosystem",
                    "platform": "https://dataspace.copernicus.eu",
                    "type": "custom-https",
                },
            },
        },
        "links": [
            {
                "rel": "license",
                "href": "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice",
                "type": "application/pdf",
            },
        ],
        "assets": {key: _cdse_asset(key, hrefs[key], https[key], files[key]) for key in hrefs},
    }


def cdse_sentinel2_collection() -> dict[str, Any]:
    return {
        "type": "Collection",
        "id": S2_COLLECTION,
        "stac_version": "1.1.0",
        "title": "Sentinel-2 Level-2A",
        "description": (
            "The Sentinel-2 Level-2A Collection 1 product provides orthorectified Surface"
            " Reflectance (Bottom-Of-Atmosphere: BOA), with sub-pixel multispectral and"
            " multitemporal registration accuracy."
        ),
        "license": "other",
        "keywords": ["Copernicus", "Sentinel", "EU", "ESA", "Satellite", "Global", "Reflectance"],
        "providers": [
            {"name": "ESA", "roles": ["producer"], "url": "https://www.esa.int/"},
            {
                "name": "CloudFerro",
                "roles": ["host", "processor"],
                "url": "https://cloudferro.com/",
            },
        ],
        "extent": {
            "spatial": {"bbox": [[-180, -90, 180, 90]]},
            "temporal": {"interval": [["2015-07-04T10:10:06.027000Z", None]]},
        },
        "summaries": {
            "platform": ["sentinel-2a", "sentinel-2b", "sentinel-2c"],
            "constellation": ["sentinel-2"],
            "instruments": ["msi"],
            "product:type": ["S2MSI2A"],
            "processing:level": ["L2"],
        },
        "item_assets": {
            "B04_10m": {
                "type": "image/jp2",
                "title": "Red - 10m",
                "roles": ["data", "reflectance", "gsd:10m"],
                "raster:scale": scenes.S2_SCALE,
                "raster:offset": scenes.S2_OFFSET,
                "nodata": 0,
                "data_type": "uint16",
            },
            "B08_10m": {
                "type": "image/jp2",
                "title": "NIR 1 - 10m",
                "roles": ["data", "reflectance", "gsd:10m"],
                "raster:scale": scenes.S2_SCALE,
                "raster:offset": scenes.S2_OFFSET,
                "nodata": 0,
                "data_type": "uint16",
            },
            "SCL_20m": {
                "type": "image/jp2",
                "title": "Scene classification map (SCL)",
                "roles": ["data", "classification", "gsd:20m"],
                "nodata": 0,
                "data_type": "uint8",
            },
        },
        "links": [
            {
                "rel": "license",
                "href": "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice",
            }
        ],
        "stac_extensions": [
            "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v2.0.0/schema.json",
        ],
    }
