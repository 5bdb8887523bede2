"""`cure demo seed` registers the demo products in the catalogue's layout, once, and replaces demo
Sentinel-2 products of an earlier layout so no order picks one of those."""

from datetime import UTC, date, datetime

from cure.ccsi import repository as ccsi_repository
from cure.ccsi import service as ccsi_service
from cure.ccsi.schemas import AssetCreate, ProductCreate, ProductCriteria
from cure.demo.rasters import city_by_name
from cure.demo.seed import seed
from cure.kit.resources import Resources
from cure.kit.state import state_of

COPENHAGEN = city_by_name("Copenhagen")
DAY = date(2024, 8, 12)
GEOTIFF = "image/tiff; application=geotiff"
OLD = "S2A_MSIL2A_20240812T101500_CURE_DEMO_COPENHAGEN"  # the earlier layout's name


async def test_seed_replaces_sentinel2_products_of_the_earlier_layout(
    app, sessionmaker, settings
) -> None:
    west, south, east, north = COPENHAGEN["bbox"]
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    async with sessionmaker() as session, session.begin():
        await ccsi_service.register(
            session,
            collection="sentinel2-l2a",
            data=ProductCreate(
                identifier=OLD,
                product_type="S2MSI2A",
                footprint={"type": "Polygon", "coordinates": [ring]},
                start=datetime(2024, 8, 12, 10, 15, tzinfo=UTC),
                properties={"city": "Copenhagen", "demo": True},
                assets={
                    key: AssetCreate(
                        href=f"inputs/sentinel2-l2a/{OLD}/{band}_20m.tif", type=GEOTIFF
                    )
                    for key, band in (("red", "B04"), ("nir", "B8A"))
                },
            ),
        )
    resources = Resources(settings, state_of(app).db.engine, sessionmaker)

    first = await seed(resources, cities=[COPENHAGEN], dates=[DAY])
    again = await seed(resources, cities=[COPENHAGEN], dates=[DAY])

    # imperviousness, elevation, population, and the day's temperature, reflectance and air quality
    assert (first.added, first.present) == (6, 0)
    assert (again.added, again.present) == (0, 6)
    async with sessionmaker() as session:
        assert await ccsi_repository.get_by_identifier(session, "sentinel2-l2a", OLD) is None
        (now,) = await ccsi_service.find_products(
            session,
            None,
            ProductCriteria(
                collections=("sentinel2-l2a",),
                bbox=COPENHAGEN["bbox"],
                time_start=datetime(2024, 8, 12, tzinfo=UTC),
                time_end=datetime(2024, 8, 12, 23, 59, tzinfo=UTC),
            ),
            limit=10,
        )
    assert set(now.assets) == {"red", "nir", "scl"}
    assert now.properties["s2:processing_baseline"] == "05.10"
    assert now.properties["demo_layout"] == 2
    async with sessionmaker() as session:
        (air,) = await ccsi_service.find_products(
            session,
            None,
            ProductCriteria(collections=("cams-europe-air-quality",), bbox=COPENHAGEN["bbox"]),
            limit=10,
        )
    netcdf = air.assets["concentrations"]
    assert netcdf["type"] == "application/x-netcdf" and netcdf["href"].endswith(".nc")
    assert 0 < netcdf["size"] < 150_000 and air.product_type == "ENSEMBLE_ANALYSIS"
