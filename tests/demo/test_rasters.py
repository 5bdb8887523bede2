"""The demo data generator writes georeferenced, tagged, plausible products that agree with each
other: a warm, sealed, grey city core and a cooler, greener edge."""

import re
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds

from cure.demo.rasters import AQ_COLLECTION, GeneratedProduct, city_by_name, generate

DATES = [date(2024, 7, 15), date(2024, 8, 12)]
CITIES = [city_by_name("Vienna"), city_by_name("Madrid")]


@pytest.fixture(scope="module")
def products(tmp_path_factory) -> list[GeneratedProduct]:
    return generate(tmp_path_factory.mktemp("demo"), CITIES, DATES)


def of(products: list[GeneratedProduct], collection: str, city: str) -> list[GeneratedProduct]:
    return [p for p in products if p.collection == collection and p.city == city]


def core_and_edge(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The central fifth of a raster over a city's bbox, and its outer tenth all round."""
    height, width = values.shape
    core = values[2 * height // 5 : 3 * height // 5, 2 * width // 5 : 3 * width // 5]
    edge_mask = np.ones(values.shape, dtype=bool)
    edge_mask[height // 10 : -height // 10, width // 10 : -width // 10] = False
    return core, values[edge_mask]


def test_one_imperviousness_per_city_and_lst_and_reflectance_per_date(products) -> None:
    # with one DEM and one population grid per city, and an air quality product per date
    assert len(products) == len(CITIES) * (3 + 3 * len(DATES))
    assert len({p.identifier for p in products}) == len(products)
    for city in CITIES:
        (imd,) = of(products, "hrl-imperviousness", city["name"])
        assert (imd.product_type, set(imd.assets)) == ("IMD", {"imd"})
        assert imd.start == imd.end == datetime(2018, 1, 1, tzinfo=UTC)
        lst = of(products, "sentinel3-slstr-lst", city["name"])
        s2 = of(products, "sentinel2-l2a", city["name"])
        assert [p.start.date() for p in lst] == [p.start.date() for p in s2] == DATES
        for product in lst:
            assert (product.product_type, set(product.assets)) == ("SL_2_LST", {"lst"})
            assert product.start < product.end and product.start.tzinfo is not None
        for product in s2:
            assert (product.product_type, set(product.assets)) == (
                "S2MSI2A",
                {"red", "nir", "scl"},
            )
            assert product.properties["s2:processing_baseline"] == "05.10"
            assert "_N0510_" in product.identifier
            assert 0 < product.properties["eo:cloud_cover"] < 20
        for product in [imd, *lst, *s2]:
            assert product.bbox == city["bbox"]
            assert product.footprint()["coordinates"][0][0] == list(city["bbox"][:2])
            for path in product.assets.values():
                # 10 m bands over a whole city are the largest
                assert path.is_file() and path.stat().st_size < 4_500_000


def test_files_carry_their_acquisition_tags(products) -> None:
    for product in products:
        if product.collection == AQ_COLLECTION:
            continue  # netCDF: its times are its time axis (test_air_quality_products_...)
        for path in product.assets.values():
            with rasterio.open(path) as src:
                tags = src.tags()
            assert tags["ACQUISITION_START"] == product.start.strftime("%Y-%m-%dT%H:%M:%SZ")
            assert tags["ACQUISITION_END"] == product.end.strftime("%Y-%m-%dT%H:%M:%SZ")
            assert tags["PRODUCT_TYPE"] == product.product_type
            assert tags["COLLECTION"] == product.collection
            assert re.fullmatch(r"\d{4}:\d\d:\d\d \d\d:\d\d:\d\d", tags["TIFFTAG_DATETIME"])
            assert tags["TIFFTAG_DATETIME"][:10] == product.start.strftime("%Y:%m:%d")


@pytest.mark.parametrize(
    ("collection", "crs", "resolution"),
    [
        ("sentinel3-slstr-lst", {"Vienna": 3035, "Madrid": 3035}, {"lst": 100.0}),
        ("hrl-imperviousness", {"Vienna": 4326, "Madrid": 4326}, {"imd": 0.0002}),
        ("copernicus-dem-glo-30", {"Vienna": 4326, "Madrid": 4326}, {"dem": 1 / 3600}),
        ("ghs-pop", {"Vienna": "ESRI:54009", "Madrid": "ESRI:54009"}, {"pop": 100.0}),
        (
            "sentinel2-l2a",
            {"Vienna": 32633, "Madrid": 32630},
            {"red": 10.0, "nir": 10.0, "scl": 20.0},
        ),
    ],
)
def test_georeferencing_covers_the_city(products, collection, crs, resolution) -> None:
    for product in (p for p in products if p.collection == collection):
        for key, path in product.assets.items():
            with rasterio.open(path) as src:
                wanted = crs[product.city]
                assert (src.crs.to_epsg() if isinstance(wanted, int) else src.crs) == wanted
                assert src.res == pytest.approx((resolution[key], resolution[key]))
                assert src.transform.b == src.transform.d == 0
                west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
            bbox = product.bbox
            assert west <= bbox[0] and south <= bbox[1] and east >= bbox[2] and north >= bbox[3]
            assert east - west < 0.3 and north - south < 0.25  # cut to the city, not a whole tile


def test_values_are_plausible_and_the_core_is_warm_sealed_and_grey(products) -> None:
    for city in CITIES:
        name = city["name"]
        (imd,) = of(products, "hrl-imperviousness", name)
        with rasterio.open(imd.assets["imd"]) as src:
            assert (src.dtypes[0], src.nodata) == ("uint8", 255)
            sealed = src.read(1)
        assert sealed.min() >= 0 and sealed.max() == 100
        core, edge = core_and_edge(sealed.astype(float))
        assert core.mean() > 60 and edge.mean() < 20

        for product in of(products, "sentinel3-slstr-lst", name):
            with rasterio.open(product.assets["lst"]) as src:
                assert (src.dtypes[0], src.nodata, src.units) == ("float32", -32768.0, ("K",))
                kelvin = src.read(1, masked=True)
            assert 280 < kelvin.min() and kelvin.max() < 340
            core, edge = core_and_edge(kelvin.filled(np.nan))
            assert np.nanmean(core) > np.nanmean(edge) + 3, (name, product.start)

        for product in of(products, "sentinel2-l2a", name):
            bands = {}
            for key in ("red", "nir"):
                with rasterio.open(product.assets[key]) as src:
                    # Processing baseline 04.00 and later: reflectance = DN * 1e-4 - 0.1
                    assert (src.dtypes[0], src.nodata) == ("uint16", 0)
                    assert (src.scales, src.offsets) == ((1e-4,), (-0.1,))
                    bands[key] = src.read(1).astype(float) * 1e-4 - 0.1
                    transform = src.transform
                assert 0 < bands[key].min() and bands[key].max() <= 1
            with rasterio.open(product.assets["scl"]) as src:
                assert (src.dtypes[0], src.nodata) == ("uint8", 0)
                # The 20 m grid starts where the 10 m one does, as in a Sentinel-2 tile.
                assert (src.transform.c, src.transform.f) == (transform.c, transform.f)
                classes = src.read(1)
            # Mostly vegetation and bare ground, some water, a little cloud, shadow and cirrus.
            found = set(np.unique(classes).tolist())
            assert {4, 5, 6} <= found <= {3, 4, 5, 6, 8, 9, 10}
            cloudy = np.isin(classes, [3, 8, 9, 10]).mean()
            assert 0 < cloudy < 0.2
            assert product.properties["eo:cloud_cover"] == pytest.approx(100 * cloudy, abs=0.01)
            # Where the SCL says cloud, the bands are bright; elsewhere the city is grey at its
            # core and green at its edge.
            cloud = np.repeat(np.repeat(np.isin(classes, [8, 9]), 2, 0), 2, 1)
            cloud = cloud[: bands["red"].shape[0], : bands["red"].shape[1]]
            assert bands["red"][cloud].mean() > 0.2 > bands["red"][~cloud].mean()
            ndvi = (bands["nir"] - bands["red"]) / (bands["nir"] + bands["red"])
            core, edge = core_and_edge(np.where(cloud, np.nan, ndvi))
            assert np.nanmean(core) < np.nanmean(edge) - 0.1, (name, product.start)


def test_the_same_inputs_give_the_same_rasters_and_dates_differ(products, tmp_path) -> None:
    again = generate(tmp_path, [CITIES[0]], DATES[:1])
    for product in again:
        (first,) = [p for p in products if p.identifier == product.identifier]
        for key, path in product.assets.items():
            if path.suffix == ".nc":  # no history or creation time in it: the very same bytes
                assert path.read_bytes() == first.assets[key].read_bytes()
                continue
            with rasterio.open(path) as a, rasterio.open(first.assets[key]) as b:
                assert np.array_equal(a.read(), b.read())
    july, august = of(products, "sentinel3-slstr-lst", "Vienna")
    with rasterio.open(july.assets["lst"]) as a, rasterio.open(august.assets["lst"]) as b:
        assert not np.array_equal(a.read(), b.read())


def test_one_dem_per_city_in_the_copernicus_dems_layout(products) -> None:
    """Float32 metres at one arc-second in EPSG:4326, named by its 1-degree tile as GLO-30's
    files are, with a river valley lower than the land around it and a few closed hollows."""
    from cure.apps._shared.terrain import fill_depressions

    for city in CITIES:
        (dem,) = of(products, "copernicus-dem-glo-30", city["name"])
        assert (dem.product_type, set(dem.assets)) == ("DEM", {"dem"})
        assert re.fullmatch(
            r"Copernicus_DSM_COG_10_[NS]\d\d_00_[EW]\d{3}_00_DEM_CURE_DEMO_[A-Z_]+", dem.identifier
        )
        assert dem.start < dem.end <= datetime(2015, 1, 1, tzinfo=UTC)
        with rasterio.open(dem.assets["dem"]) as src:
            assert (src.dtypes[0], src.units[0]) == ("float32", "m")
            heights = src.read(1).astype(float)
        assert -50 < heights.min() < heights.max() < 1000
        assert 10 < heights.max() - heights.min() < 200  # a city's relief, not a mountain range
        depth = fill_depressions(heights) - heights
        assert 0.5 < depth.max() < 5  # hollows to pond in, none of them lakes


def test_the_dems_east_west_spacing_widens_north_of_50_degrees(tmp_path) -> None:
    """As GLO-30's tiles: one arc-second north-south everywhere, 1.5 east-west from 50 to 60
    degrees (Berlin), one below (Vienna)."""
    products = generate(tmp_path, [city_by_name("Berlin"), city_by_name("Vienna")], [])
    for city, width in (("Berlin", 1.5), ("Vienna", 1.0)):
        (dem,) = of(products, "copernicus-dem-glo-30", city)
        with rasterio.open(dem.assets["dem"]) as src:
            assert src.res == pytest.approx((width / 3600, 1 / 3600))


def test_the_population_grid_has_the_ghs_pop_layout_and_people_live_in_the_sealed_core(
    products,
) -> None:
    """GHS-POP R2023A: float32 persons per 100 m cell of World Mollweide, nodata -200, on the
    global grid's 100 m lattice, named by its 1000 km tile; more people in the core."""
    for city in CITIES:
        (population,) = of(products, "ghs-pop", city["name"])
        assert population.product_type == "GHS_POP" and set(population.assets) == {"pop"}
        assert population.start == population.end == datetime(2020, 1, 1, tzinfo=UTC)
        assert population.identifier.startswith("GHS_POP_E2020_GLOBE_R2023A_54009_100_V1_0_R")
        with rasterio.open(population.assets["pop"]) as src:
            assert (src.dtypes[0], src.nodata, src.units) == ("float32", -200.0, ("persons",))
            assert src.transform.c % 100 == 0 and src.transform.f % 100 == 0
            persons = src.read(1)
        assert persons.min() >= 0 and 500_000 < persons.sum() < 2_000_000
        core, edge = core_and_edge(persons)
        assert core.mean() > 5 * edge.mean()
    (vienna,) = of(products, "ghs-pop", "Vienna")
    assert "_R4_C20_" in vienna.identifier  # x 1.25e6, y 5.71e6 m: the 4th row, 20th column


def test_air_quality_products_in_the_cams_ensemble_analysis_layout(products) -> None:
    """Per city and date, three days of hourly NO2, PM2.5, PM10 and O3 (µg/m3) on CAMS's
    0.1-degree grid (cell centres at x.x5) over the city's box in whole cells, as netCDF whose
    time axis counts hours from the first day's midnight; NO2 is highest in the sealed core and
    ozone lowest there (traffic's NO takes it up)."""
    for city in CITIES:
        found = of(products, AQ_COLLECTION, city["name"])
        assert [p.start.date() for p in found] == [d - timedelta(days=1) for d in DATES]
        for product in found:
            assert product.product_type == "ENSEMBLE_ANALYSIS"
            assert product.end - product.start == timedelta(days=2, hours=23)
            (path,) = product.assets.values()
            assert path.suffix == ".nc" and path.stat().st_size < 40_000
            with rasterio.open(path) as src:
                assert sorted(name.rsplit(":", 1)[1] for name in src.subdatasets) == [
                    "no2_conc", "o3_conc", "pm10_conc", "pm2p5_conc"
                ]  # fmt: skip
                assert src.tags()["NC_GLOBAL#source"] == "Data from ENSEMBLE model"
            daily = {}
            for variable in ("no2_conc", "o3_conc", "pm2p5_conc", "pm10_conc"):
                with rasterio.open(f"NETCDF:{path}:{variable}") as src:
                    tags = src.tags()
                    assert tags[f"{variable}#units"] == "µg/m3"
                    assert tags["time#long_name"] == f"ANALYSIS time from {product.start:%Y%m%d}"
                    assert tags["time#units"] == "hours"
                    hours = [float(src.tags(b)["NETCDF_DIM_time"]) for b in range(1, src.count + 1)]
                    assert hours == list(range(72))
                    assert src.res == pytest.approx((0.1, 0.1), abs=2e-5)  # float32 coordinates
                    west, north = src.transform.c, src.transform.f
                    # cell edges at whole tenths of a degree (float32 coordinates: nearly)
                    assert west * 10 == pytest.approx(round(west * 10), abs=1e-4)
                    assert north * 10 == pytest.approx(round(north * 10), abs=1e-4)
                    bbox = product.bbox
                    # the city's box in whole cells: at most a cell more on each side
                    assert city["bbox"][0] - 0.1 < west <= city["bbox"][0]
                    assert city["bbox"][3] <= north < city["bbox"][3] + 0.1
                    assert (west, north) == pytest.approx((bbox[0], bbox[3]), abs=1e-4)
                    values = src.read()
                assert 0 < values.min() and values.max() < 300
                daily[variable] = values[24:48].mean(axis=0)  # the demo date's daily mean
            core = np.unravel_index(np.argmax(daily["no2_conc"]), daily["no2_conc"].shape)
            assert daily["no2_conc"][core] > 2 * daily["no2_conc"].min()
            assert daily["o3_conc"][core] < daily["o3_conc"].max() - 5
            assert (daily["pm10_conc"] > daily["pm2p5_conc"]).all()
