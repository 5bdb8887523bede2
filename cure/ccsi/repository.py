"""Every query of the catalogue."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from geoalchemy2 import functions as geo
from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select, true
from sqlalchemy import delete as sql_delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cure.ccsi.models import Product
from cure.ccsi.schemas import ProductCriteria, SearchQuery


@dataclass(frozen=True)
class Viewer:
    """Whose products a query may return: everyone's public ones, plus the customer's own, or all."""

    customer_id: uuid.UUID | None = None
    sees_all: bool = False


PUBLIC = Viewer()


@dataclass(frozen=True)
class CollectionSummary:
    name: str
    product_count: int
    bbox: tuple[float, float, float, float] | None
    start: datetime | None
    end: datetime | None
    product_types: list[str]


def _visible(viewer: Viewer) -> ColumnElement[bool]:
    if viewer.sees_all:
        return true()
    public = or_(Product.owner_id.is_(None), Product.published.is_(True))
    if viewer.customer_id is None:
        return public
    return or_(public, Product.owner_id == viewer.customer_id)


def _box(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> Any:
    """The bbox as a geometry: an envelope, or the point or line a degenerate one really is
    (a zero-width envelope is an invalid polygon, whose intersections are undefined)."""
    if min_lon < max_lon and min_lat < max_lat:
        return geo.ST_MakeEnvelope(min_lon, min_lat, max_lon, max_lat, 4326)
    low, high = geo.ST_MakePoint(min_lon, min_lat), geo.ST_MakePoint(max_lon, max_lat)
    if (min_lon, min_lat) == (max_lon, max_lat):
        return geo.ST_SetSRID(low, 4326)
    return geo.ST_SetSRID(geo.ST_MakeLine(low, high), 4326)


# The properties a product's cloud cover (percent) is read from, first found wins.
CLOUD_COVER_PROPERTIES = ("eo:cloud_cover", "cloudCover")


def cloud_cover() -> ColumnElement[float]:
    """A product's cloud cover, NULL when its properties hold no number for it (a CASE, so a
    value that is not a number is never cast)."""
    values = [Product.properties[name] for name in CLOUD_COVER_PROPERTIES]
    return func.coalesce(
        *(case((func.jsonb_typeof(v) == "number", v.as_float()), else_=None) for v in values)
    )


def _filtered(query: Select[Any], criteria: ProductCriteria, viewer: Viewer) -> Select[Any]:
    query = query.where(_visible(viewer))
    if criteria.collections:
        query = query.where(Product.collection.in_(criteria.collections))
    if criteria.identifiers:
        query = query.where(Product.identifier.in_(criteria.identifiers))
    if criteria.product_type is not None:
        query = query.where(Product.product_type == criteria.product_type)
    if criteria.bbox is not None:
        query = query.where(geo.ST_Intersects(Product.footprint, _box(*criteria.bbox)))
    if criteria.geometry is not None:
        shape = geo.ST_GeomFromText(criteria.geometry, 4326)
        query = query.where(geo.ST_Intersects(Product.footprint, shape))
    if criteria.cloud_cover is not None:
        low, high = criteria.cloud_cover
        query = query.where(cloud_cover().between(low, high))
    in_area = criteria.bbox is not None or criteria.geometry is not None
    return query.where(*_overlapping(criteria.time_start, criteria.time_end, in_area=in_area))


def _overlapping(
    start: datetime | None, end: datetime | None, *, in_area: bool
) -> list[ColumnElement[bool]]:
    """[start_at, end_at] overlaps [start, end]; either bound may be open (None).

    Within an area, said as a range overlap, which the GiST index on (footprint, period) tests
    together with the area (the area alone matches a place's products of every year). Otherwise
    as two comparisons, which the b-tree indexes on the times serve. A window that ends before it
    starts is not a range: the comparisons keep their meaning for it (a product spanning the gap).
    """
    if start is None and end is None:
        return []
    if not in_area or (start is not None and end is not None and end < start):
        return [
            *([Product.start_at <= end] if end is not None else []),
            *([Product.end_at >= start] if start is not None else []),
        ]
    # The expression ix_products_footprint_period indexes, as written there.
    period = func.tstzrange(Product.start_at, Product.end_at, "[]")
    return [period.op("&&")(func.tstzrange(start, end, "[]"))]


# A search counts its matches up to here (past it, "more than"), and pages start at most here:
# deeper OFFSETs read and drop every row before them.
COUNT_LIMIT = 10_000
MAX_OFFSET = 10_000
LAST_START_INDEX = MAX_OFFSET + 1  # OpenSearch's startIndex counts from 1


@dataclass(frozen=True)
class Keyset:
    """Where a page ended in the search's order (newest acquisition first, then id): the next
    page starts after it, at the cost of an index scan from there, however deep."""

    start_at: datetime
    id: uuid.UUID

    @classmethod
    def of(cls, product: Product) -> "Keyset":
        return cls(product.start_at, product.id)


def _after(keyset: Keyset) -> ColumnElement[bool]:
    earlier = Product.start_at < keyset.start_at
    tie = and_(Product.start_at == keyset.start_at, Product.id > keyset.id)
    return and_(Product.start_at <= keyset.start_at, or_(earlier, tie))


async def search(
    session: AsyncSession, query: SearchQuery, *, visible_to: Viewer
) -> tuple[list[Product], int, bool]:
    """One page of the matching products, newest acquisition first; how many match, counted up
    to COUNT_LIMIT + 1; and whether more follow the page."""
    criteria = ProductCriteria.of_search(query)
    products, more = await find(
        session,
        criteria,
        visible_to=visible_to,
        offset=query.start_index - 1,
        limit=query.max_records,
    )
    total = known_total(len(products), more, offset=query.start_index - 1)
    if total is None:
        total = await count(session, criteria, visible_to=visible_to)
    return products, total, more


def known_total(
    found: int, more: bool, *, offset: int = 0, after: Keyset | None = None
) -> int | None:
    """How many match, when a page of ``find`` already tells (its last page, paged by offset,
    that found something or started at the first match); None when only ``count`` can."""
    if more or after is not None or (found == 0 and offset > 0):
        return None
    return offset + found


async def find(
    session: AsyncSession,
    criteria: ProductCriteria,
    *,
    visible_to: Viewer,
    limit: int,
    offset: int = 0,
    after: Keyset | None = None,
    by_identifier: bool = False,
) -> tuple[list[Product], bool]:
    """``limit`` matching products, newest acquisition first (then by id, so pages never
    overlap; or by identifier and collection, the order of the federated search), from
    ``offset`` on or after ``after``; and whether more follow them."""
    if offset > MAX_OFFSET:
        raise ValueError(f"an offset of at most {MAX_OFFSET}")  # callers refuse it first
    page = _filtered(select(Product), criteria, visible_to)
    if after is not None:
        page = page.where(_after(after))
    ties = (Product.identifier, Product.collection) if by_identifier else (Product.id,)
    page = page.order_by(Product.start_at.desc(), *ties).offset(offset).limit(limit + 1)
    items = list((await session.execute(page)).scalars())
    return items[:limit], len(items) > limit


async def count(
    session: AsyncSession,
    criteria: ProductCriteria,
    *,
    visible_to: Viewer,
    up_to: int = COUNT_LIMIT,
) -> int:
    """How many products match, counted up to ``up_to + 1``: an answer past ``up_to`` means
    "more than up_to", and no count reads more rows than that."""
    matching = _filtered(select(Product.id), criteria, visible_to).limit(up_to + 1).subquery()
    total = (await session.execute(select(func.count()).select_from(matching))).scalar_one()
    return int(total)


async def collections_summary(session: AsyncSession, visible_to: Viewer) -> list[CollectionSummary]:
    """Per collection of visible products: count, spatial and temporal extent, product types."""
    extent = geo.ST_Extent(Product.footprint)
    query = (
        select(
            Product.collection,
            func.count(),
            geo.ST_XMin(extent),
            geo.ST_YMin(extent),
            geo.ST_XMax(extent),
            geo.ST_YMax(extent),
            func.min(Product.start_at),
            func.max(Product.end_at),
            func.array_agg(Product.product_type.distinct()),
        )
        .where(_visible(visible_to))
        .group_by(Product.collection)
        .order_by(Product.collection)
    )
    summaries = []
    for name, count, x0, y0, x1, y1, start, end, types in await session.execute(query):
        bbox = None if x0 is None else (float(x0), float(y0), float(x1), float(y1))
        summaries.append(
            CollectionSummary(
                name=name,
                product_count=int(count),
                bbox=bbox,
                start=start,
                end=end,
                product_types=sorted(types),
            )
        )
    return summaries


async def collection_exists(session: AsyncSession, name: str, visible_to: Viewer) -> bool:
    """Whether the collection holds a product the viewer may see (one index probe, no count)."""
    query = select(Product.id).where(Product.collection == name, _visible(visible_to)).limit(1)
    return (await session.execute(query)).first() is not None


async def collection_names(session: AsyncSession, visible_to: Viewer) -> list[str]:
    query = (
        select(Product.collection)
        .where(_visible(visible_to))
        .group_by(Product.collection)
        .order_by(Product.collection)
    )
    return list((await session.execute(query)).scalars())


async def add(session: AsyncSession, product: Product) -> Product:
    session.add(product)
    await session.flush()
    return product


async def add_if_absent(session: AsyncSession, values: dict[str, Any]) -> uuid.UUID | None:
    """Insert a product unless its collection already holds its identifier; its id, or None."""
    inserted = await session.execute(
        insert(Product)
        .values(id=uuid.uuid4(), **values)
        .on_conflict_do_nothing(constraint="uq_products_collection_identifier")
        .returning(Product.id)
    )
    return inserted.scalar_one_or_none()


async def get(session: AsyncSession, product_id: uuid.UUID) -> Product | None:
    return await session.get(Product, product_id)


async def get_by_identifier(
    session: AsyncSession, collection: str, identifier: str, *, for_update: bool = False
) -> Product | None:
    query = select(Product).where(
        Product.collection == collection, Product.identifier == identifier
    )
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_visible(
    session: AsyncSession, collection: str, identifier: str, *, visible_to: Viewer
) -> Product | None:
    query = select(Product).where(
        Product.collection == collection,
        Product.identifier == identifier,
        _visible(visible_to),
    )
    return (await session.execute(query)).scalar_one_or_none()


async def delete(session: AsyncSession, collection: str, identifier: str) -> bool:
    """Remove the product; False when there was none."""
    deleted = await session.execute(
        sql_delete(Product)
        .where(Product.collection == collection, Product.identifier == identifier)
        .returning(Product.id)
    )
    return deleted.first() is not None


def _covering(
    collection: str,
    product_type: str | None,
    area: Any,
    max_cloud_cover: float | None = None,
    visible_to: Viewer = PUBLIC,
) -> list[ColumnElement[bool]]:
    """Products ``visible_to`` sees (by default the public ones) of the collection (and type)
    that meet ``area``; with ``max_cloud_cover``, only those at most that cloudy or whose cover
    is not known."""
    conditions = [
        _visible(visible_to),
        Product.collection == collection,
        func.ST_Intersects(Product.footprint, area),
    ]
    if product_type is not None:
        conditions.append(Product.product_type == product_type)
    if max_cloud_cover is not None:
        cover = cloud_cover()
        conditions.append(or_(cover.is_(None), cover <= max_cloud_cover))
    return conditions


async def any_covering(
    session: AsyncSession,
    *,
    collection: str,
    product_type: str | None,
    area: Any,
    start: datetime,
    end: datetime,
    max_cloud_cover: float | None = None,
    visible_to: Viewer = PUBLIC,
) -> bool:
    """Whether a product of the collection (and type) that ``visible_to`` sees (by default a
    public one) meets ``area`` within [start, end] (and is at most ``max_cloud_cover`` cloudy,
    or of unknown cover)."""
    query = select(Product.id).where(
        *_covering(collection, product_type, area, max_cloud_cover, visible_to),
        Product.start_at <= end,
        Product.end_at >= start,
    )
    return (await session.execute(query.limit(1))).first() is not None


async def nearest_dates(
    session: AsyncSession,
    *,
    collection: str,
    product_type: str | None,
    area: Any,
    start: datetime,
    end: datetime,
    max_cloud_cover: float | None = None,
    visible_to: Viewer = PUBLIC,
) -> tuple[datetime | None, datetime | None]:
    """The latest product end before ``start`` and the earliest product start after ``end``,
    among the products ``visible_to`` sees (public ones by default) of the collection (and
    type) that meet ``area`` (and are clear enough, with ``max_cloud_cover``)."""
    conditions = _covering(collection, product_type, area, max_cloud_cover, visible_to)
    before = select(func.max(Product.end_at)).where(*conditions, Product.end_at < start)
    after = select(func.min(Product.start_at)).where(*conditions, Product.start_at > end)
    return (await session.execute(before)).scalar(), (await session.execute(after)).scalar()


async def least_cloud_cover(
    session: AsyncSession,
    *,
    collection: str,
    product_type: str | None,
    area: Any,
    start: datetime,
    end: datetime,
    visible_to: Viewer = PUBLIC,
) -> float | None:
    """The least cloud cover among the products ``visible_to`` sees (public ones by default) of
    the collection (and type) that meet ``area`` within [start, end]; None when none says its
    cover."""
    query = select(func.min(cloud_cover())).where(
        *_covering(collection, product_type, area, visible_to=visible_to),
        Product.start_at <= end,
        Product.end_at >= start,
    )
    found = (await session.execute(query)).scalar()
    return None if found is None else float(found)


async def covering_most(
    session: AsyncSession,
    *,
    collection: str,
    product_type: str | None,
    area: Any,
    start: datetime | None,
    end: datetime,
    visible_to: Viewer,
    limit: int,
    newest_first: bool = False,
) -> list[Product]:
    """Up to ``limit`` products ``visible_to`` sees of the collection (and type) that meet
    ``area`` within [start, end] (from any time before ``end`` when ``start`` is None): those
    that cover most of the area first, then the newest (``newest_first``: the newest first)."""
    overlap = func.ST_Area(func.ST_Intersection(Product.footprint, area))
    query = select(Product).where(
        *_covering(collection, product_type, area, visible_to=visible_to), Product.start_at <= end
    )
    if start is not None:
        query = query.where(Product.end_at >= start)
    order = (
        (Product.start_at.desc(),) if newest_first else (overlap.desc(), Product.start_at.desc())
    )
    query = query.order_by(*order, Product.id).limit(limit)
    return list((await session.execute(query)).scalars())


@dataclass(frozen=True)
class Named:
    """How a stored product is named, and whose it is (None: an input product)."""

    collection: str
    identifier: str
    owner_id: uuid.UUID | None


async def named(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, Named]:
    """The collection, identifier and owner of each product of ``ids`` that exists."""
    rows = await session.execute(
        select(Product.id, Product.collection, Product.identifier, Product.owner_id).where(
            Product.id.in_(ids)
        )
    )
    return {row.id: Named(row.collection, row.identifier, row.owner_id) for row in rows}


async def acquisition_days(
    session: AsyncSession,
    *,
    collection: str,
    product_type: str | None,
    bbox: tuple[float, float, float, float] | None,
    start: datetime,
    end: datetime,
) -> list[datetime]:
    """The distinct UTC days on which public products of the collection (and type) that meet the
    box were acquired, between ``start`` and ``end``."""
    day = func.date_trunc("day", func.timezone("UTC", Product.start_at))
    query = (
        select(day)
        .where(
            _visible(PUBLIC),
            Product.collection == collection,
            Product.start_at >= start,
            Product.start_at <= end,
        )
        .group_by(day)
        .order_by(day)
    )
    if product_type is not None:
        query = query.where(Product.product_type == product_type)
    if bbox is not None:
        query = query.where(geo.ST_Intersects(Product.footprint, _box(*bbox)))
    return list((await session.execute(query)).scalars())


@dataclass(frozen=True)
class Place:
    name: str
    bbox: tuple[float, float, float, float]


async def places(session: AsyncSession) -> list[Place]:
    """The places public products name in their ``city`` property, each with the extent of its
    products' footprints."""
    city = Product.properties["city"].astext
    extent = geo.ST_Extent(Product.footprint)
    query = (
        select(
            city, geo.ST_XMin(extent), geo.ST_YMin(extent), geo.ST_XMax(extent), geo.ST_YMax(extent)
        )
        .where(_visible(PUBLIC), city.is_not(None))
        .group_by(city)
        .order_by(city)
    )
    return [
        Place(name=name, bbox=(float(x0), float(y0), float(x1), float(y1)))
        for name, x0, y0, x1, y1 in await session.execute(query)
    ]
