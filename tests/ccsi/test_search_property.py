"""Searches return exactly the products a brute-force filter in Python (shapely) picks, in the same
order, page after page, for random areas, times, types, callers and page sizes."""

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import wkt
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, shape
from shapely.geometry import box as shapely_box
from shapely.geometry.base import BaseGeometry

from cure.kit.db import make_sessionmaker
from cure.kit.geo import to_geojson
from cure.kit.state import state_of
from tests.ccsi.factories import add_product
from tests.factories import customer_with_token

ORIGIN = datetime(2024, 3, 1, tzinfo=UTC)
TYPES = ("L1C", "L2A", "GRD")
# Coordinates on a 0.5 degree grid: footprints and queries touch exactly, on purpose.
LONS = [x / 2 for x in range(0, 21)]  # 0 .. 10
LATS = [40 + y / 2 for y in range(0, 21)]  # 40 .. 50


@dataclass(frozen=True)
class Stored:
    id: uuid.UUID
    footprint: BaseGeometry
    start: datetime
    end: datetime
    product_type: str
    owner: str | None  # "a", "b" or None
    published: bool


def _random_footprint(rng: random.Random) -> dict:
    def a_box() -> Polygon:
        x0, x1 = sorted(rng.sample(LONS, 2))
        y0, y1 = sorted(rng.sample(LATS, 2))
        return shapely_box(x0, y0, x1, y1)

    kind = rng.choice(["box", "triangle", "multi"])
    if kind == "box":
        geometry: BaseGeometry = a_box()
    elif kind == "triangle":
        while True:
            points = [(rng.choice(LONS), rng.choice(LATS)) for _ in range(3)]
            geometry = Polygon(points)
            if geometry.is_valid and geometry.area > 0:
                break
    else:
        while True:
            first, second = a_box(), a_box()
            if not first.intersects(second):
                geometry = MultiPolygon([first, second])
                break
    return to_geojson(geometry)


@pytest.fixture(scope="module")
async def catalogue(app):  # type: ignore[no-untyped-def]
    """Forty random products in a collection of the module's own, and three callers."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
        customer_a, headers_a = await customer_with_token(http)
        customer_b, headers_b = await customer_with_token(http)
        owners = {
            "a": uuid.UUID(customer_a["customer_id"]),
            "b": uuid.UUID(customer_b["customer_id"]),
        }
        collection = f"prop-{uuid.uuid4().hex[:12]}"
        rng = random.Random(20261129)
        starts = [ORIGIN + timedelta(hours=rng.randrange(0, 24 * 60)) for _ in range(25)]
        stored = []
        async with make_sessionmaker(state_of(app).db.engine)() as session:
            for number in range(40):
                start = rng.choice(starts)  # shared starts: ties are ordered by id
                end = start + timedelta(hours=rng.choice([0, 0, 3, 30, 100]))
                owner = rng.choice([None, None, None, "a", "b"])
                published = owner is not None and rng.random() < 0.3
                footprint = _random_footprint(rng)
                product = await add_product(
                    session,
                    collection,
                    identifier=f"R{number:03d}",
                    product_type=rng.choice(TYPES),
                    footprint=footprint,
                    start=start.isoformat(),
                    end=end.isoformat(),
                    owner_id=owners[owner] if owner else None,
                    published=published,
                )
                stored.append(
                    Stored(
                        id=product.id,
                        footprint=shape(footprint),
                        start=start,
                        end=end,
                        product_type=product.product_type,
                        owner=owner,
                        published=published,
                    )
                )
            await session.commit()
        yield {
            "http": http,
            "collection": collection,
            "products": stored,
            "headers": {None: {}, "a": headers_a, "b": headers_b},
        }


def _grid_time(index: int) -> datetime:
    return ORIGIN + timedelta(hours=index * 7)


@st.composite
def queries(draw: st.DrawFn) -> dict:
    query: dict = {}
    if draw(st.booleans()):
        x0, x1 = sorted(draw(st.lists(st.sampled_from(LONS), min_size=2, max_size=2)))
        y0, y1 = sorted(draw(st.lists(st.sampled_from(LATS), min_size=2, max_size=2)))
        query["bbox"] = (x0, y0, x1, y1)
    kind = draw(st.sampled_from([None, None, "point", "line", "polygon"]))
    if kind is not None:
        points = [(draw(st.sampled_from(LONS)), draw(st.sampled_from(LATS))) for _ in range(3)]
        if kind == "point":
            query["geometry"] = Point(points[0])
        elif kind == "line" and points[0] != points[1]:
            query["geometry"] = wkt.loads(
                f"LINESTRING ({points[0][0]} {points[0][1]}, {points[1][0]} {points[1][1]})"
            )
        else:
            xs, ys = sorted({points[0][0], points[1][0]}), sorted({points[0][1], points[1][1]})
            if len(xs) == 2 and len(ys) == 2:
                query["geometry"] = shapely_box(xs[0], ys[0], xs[1], ys[1])
    for bound in ("start", "end"):
        form = draw(st.sampled_from([None, "datetime", "date", "naive"]))
        if form is not None:
            moment = _grid_time(draw(st.integers(0, 230)))
            query[bound] = (form, moment)
    if "start" in query and "end" in query and query["end"][1] < query["start"][1]:
        query["start"], query["end"] = query["end"], query["start"]
    query["type"] = draw(st.sampled_from([None, *TYPES]))
    query["who"] = draw(st.sampled_from([None, "a", "b"]))
    query["page"] = draw(st.integers(3, 9))
    query["first"] = draw(st.integers(1, 12))
    return query


def _time_text(form: str, moment: datetime) -> str:
    if form == "date":
        return moment.date().isoformat()
    if form == "naive":
        return moment.replace(tzinfo=None).isoformat()
    return moment.isoformat().replace("+00:00", "Z")


def _bound(form: str, moment: datetime, *, end: bool) -> datetime:
    """What the catalogue means by the parameter: a date alone as the end is the whole day."""
    if form != "date":
        return moment
    day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return day + timedelta(days=1, microseconds=-1) if end else day


def _bbox_shape(x0: float, y0: float, x1: float, y1: float) -> BaseGeometry:
    if x0 < x1 and y0 < y1:
        return shapely_box(x0, y0, x1, y1)
    return Point(x0, y0) if (x0, y0) == (x1, y1) else LineString([(x0, y0), (x1, y1)])


def _expected(products: list[Stored], query: dict) -> list[str]:
    def matches(p: Stored) -> bool:
        visible = p.owner is None or p.published or p.owner == query["who"]
        if not visible:
            return False
        if "bbox" in query and not p.footprint.intersects(_bbox_shape(*query["bbox"])):
            return False
        if "geometry" in query and not p.footprint.intersects(query["geometry"]):
            return False
        if "start" in query and p.end < _bound(*query["start"], end=False):
            return False
        if "end" in query and p.start > _bound(*query["end"], end=True):
            return False
        return query["type"] is None or p.product_type == query["type"]

    chosen = sorted(filter(matches, products), key=lambda p: (-p.start.timestamp(), p.id))
    return [str(p.id) for p in chosen]


def _params(query: dict) -> dict[str, str]:
    params = {"maxRecords": str(query["page"])}
    if "bbox" in query:
        params["bbox"] = ",".join(str(n) for n in query["bbox"])
    if "geometry" in query:
        params["geometry"] = query["geometry"].wkt
    if "start" in query:
        params["timeStart"] = _time_text(*query["start"])
    if "end" in query:
        params["timeEnd"] = _time_text(*query["end"])
    if query["type"] is not None:
        params["productType"] = query["type"]
    return params


@settings(
    max_examples=25,
    database=None,  # write no example database into the checkout
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=queries())
async def test_search_matches_brute_force_across_pages(catalogue, query) -> None:  # type: ignore[no-untyped-def]
    http, collection = catalogue["http"], catalogue["collection"]
    expected = _expected(catalogue["products"], query)
    headers = catalogue["headers"][query["who"]]
    got: list[str] = []
    index = query["first"]
    while True:
        params = {**_params(query), "startIndex": str(index)}
        response = await http.get(f"/v1/ccsi/{collection}/search", params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["totalResults"] == len(expected)
        assert page["startIndex"] == index and page["itemsPerPage"] == query["page"]
        rels = {link["rel"] for link in page["links"]}
        assert ("previous" in rels) == (index > 1)
        has_more = index - 1 + query["page"] < len(expected)
        assert ("next" in rels) == has_more
        got += [feature["id"] for feature in page["features"]]
        if not has_more:
            break
        index += query["page"]
    assert got == expected[query["first"] - 1 :]
