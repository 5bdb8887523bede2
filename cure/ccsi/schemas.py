"""Catalogue schemas: product registration and reading, collections, and the OpenSearch query."""

import json
import math
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy
import shapely
from pydantic import Field, field_validator, model_validator
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from cure.ccsi.exceptions import InvalidParameter
from cure.kit import geo
from cure.kit.geo import parse_roi, to_geojson
from cure.kit.schemas import BaseSchema, InputSchema

COLLECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:+\-]{0,254}$"
ASSET_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
CHECKSUM_PATTERN = r"^sha256:[0-9a-f]{64}$"
MEDIA_TYPE_PATTERN = r"^[A-Za-z0-9][\w.+\-]*/[A-Za-z0-9][\w.+\-]*(\s*;.*)?$"
MAX_PROPERTIES_BYTES = 64 * 1024
MAX_ASSETS = 50

DEFAULT_RECORDS = 20
MAX_RECORDS = 500
MAX_START_INDEX = 1_000_000
MAX_WKT_LENGTH = 20_000
MAX_TIME_LENGTH = 64

FOOTPRINT_EXAMPLE = {
    "type": "Polygon",
    "coordinates": [
        [[16.30, 48.20], [16.40, 48.20], [16.40, 48.30], [16.30, 48.30], [16.30, 48.20]]
    ],
}


def is_url(href: str) -> bool:
    """Whether an asset href is an absolute http(s) URL (passed through), not a storage key."""
    return urlsplit(href).scheme.lower() in ("http", "https")


def check_href(href: str) -> str:
    parts = urlsplit(href)
    if parts.scheme:
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("href must be a storage key or an absolute http(s) URL")
        return href
    if href.startswith("/") or "\\" in href or ".." in href.split("/"):
        raise ValueError("a storage key must be relative, without '..' segments or backslashes")
    if any(ord(c) < 32 or ord(c) == 127 for c in href):
        raise ValueError("href must not contain control characters")
    return href


def to_utc(value: datetime) -> datetime:
    """Naive times are UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range") from None


def parse_footprint(value: Any) -> BaseGeometry:
    """A valid WGS84 Polygon or MultiPolygon (the checks of a region of interest)."""
    try:
        return parse_roi(value)
    except ValueError as exc:
        raise ValueError(re.sub(r"\broi\b", "footprint", str(exc))) from None


class AssetCreate(InputSchema):
    href: str = Field(
        min_length=1,
        max_length=2048,
        description="A key in the platform's object storage, or an absolute http(s) URL",
    )
    type: str = Field(
        max_length=255,
        pattern=MEDIA_TYPE_PATTERN,
        description="Media type",
        examples=["image/tiff; application=geotiff"],
    )
    size: int | None = Field(default=None, ge=0, description="Bytes")
    checksum: str | None = Field(
        default=None, pattern=CHECKSUM_PATTERN, description="sha256:<64 hex digits>"
    )
    roles: list[str] = Field(default_factory=lambda: ["data"], max_length=10)
    title: str | None = Field(default=None, max_length=200)

    @field_validator("href")
    @classmethod
    def _href(cls, value: str) -> str:
        return check_href(value)

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        if any(not role or len(role) > 64 for role in value):
            raise ValueError("each role must be 1 to 64 characters")
        return value


class ProductCreate(InputSchema):
    """A product an admin registers in a collection (the collection comes from the path)."""

    identifier: str = Field(
        pattern=IDENTIFIER_PATTERN,
        description="Unique within the collection; letters, digits and _ . : + -",
    )
    product_type: str = Field(min_length=1, max_length=100, examples=["S2MSI2A"])
    footprint: dict[str, Any] = Field(
        description="A GeoJSON Polygon or MultiPolygon in WGS84", examples=[FOOTPRINT_EXAMPLE]
    )
    start: datetime = Field(description="Acquisition start (naive times are UTC)")
    end: datetime | None = Field(default=None, description="Acquisition end; defaults to start")
    properties: dict[str, Any] = Field(default_factory=dict)
    assets: dict[str, AssetCreate] = Field(default_factory=dict)

    @field_validator("footprint")
    @classmethod
    def _footprint(cls, value: dict[str, Any]) -> dict[str, Any]:
        return to_geojson(parse_footprint(value))

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else to_utc(value)

    @field_validator("properties")
    @classmethod
    def _properties(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(value, allow_nan=False))
        except ValueError:
            raise ValueError("properties must hold finite numbers only") from None
        if size > MAX_PROPERTIES_BYTES:
            raise ValueError(f"properties may take at most {MAX_PROPERTIES_BYTES} bytes as JSON")
        return value

    @field_validator("assets")
    @classmethod
    def _assets(cls, value: dict[str, AssetCreate]) -> dict[str, AssetCreate]:
        if len(value) > MAX_ASSETS:
            raise ValueError(f"at most {MAX_ASSETS} assets")
        for key in value:
            if not re.fullmatch(ASSET_KEY_PATTERN, key):
                raise ValueError(f"asset key {key[:70]!r} must match {ASSET_KEY_PATTERN}")
        return value

    @model_validator(mode="after")
    def _period(self) -> "ProductCreate":
        if self.end is None:
            self.end = self.start
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class AssetRead(BaseSchema):
    href: str = Field(description="An expiring download link, or the product's own URL")
    type: str
    size: int | None = None
    checksum: str | None = None
    roles: list[str] = Field(default_factory=list)
    title: str | None = None
    # A remote source's raster values (STAC raster:bands): physical value = stored * scale + offset.
    scale: float | None = None
    offset: float | None = None
    nodata: float | None = None


class ProductReference(BaseSchema):
    """One product another was made from (lineage), as an order staged it: by collection and
    identifier, with the local product's id; ``source`` names the catalogue that holds it."""

    collection: str = Field(max_length=100)
    identifier: str | None = Field(
        default=None,
        max_length=255,
        description="Null when the product is another customer's, not yours to see",
    )
    id: uuid.UUID | None = Field(default=None, description="A local product's id")
    source: str = Field(default="local", max_length=100)


class ProductRead(BaseSchema):
    id: uuid.UUID
    collection: str
    identifier: str
    product_type: str
    footprint: dict[str, Any]
    start: datetime
    end: datetime
    properties: dict[str, Any]
    assets: dict[str, AssetRead]
    owner_id: uuid.UUID | None = Field(
        description="The customer whose order made it, shown to that customer and to admins "
        "only; null for anyone else and for an input product"
    )
    order_id: uuid.UUID | None = Field(description="The order that generated it, if any")
    published: bool
    created_at: datetime
    source: str = Field(
        default="local", description="The catalogue that holds it: local, or a source's name"
    )
    cloud_cover: float | None = Field(
        default=None, description="Cloud cover in percent, when the catalogue gives it"
    )
    derived_from: list[ProductReference] = Field(
        default_factory=list,
        description="Lineage: the products it was made from (an order's staged inputs); "
        "another customer's product is named by its collection alone",
    )


class CollectionRead(BaseSchema):
    id: str = Field(description="The collection's name, as used in /v1/ccsi/{collection}/search")
    product_count: int
    bbox: list[float] | None = Field(description="min_lon, min_lat, max_lon, max_lat")
    start: datetime | None
    end: datetime | None
    product_types: list[str]


class CollectionList(BaseSchema):
    collections: list[CollectionRead]


# The OpenSearch parameters of a search, by name; unknown parameters are ignored.
PARAMETERS = (
    "collection",
    "bbox",
    "geometry",
    "timeStart",
    "timeEnd",
    "productType",
    "cloudCover",
    "maxRecords",
    "startIndex",
    "format",
)

SearchFormat = Literal["json", "atom"]


class SearchQuery(BaseSchema):
    """The checked parameters of a catalogue search (see ``SearchQuery.parse``)."""

    collection: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    geometry: str | None = Field(default=None, description="2D WKT in WGS84, already checked")
    time_start: datetime | None = None
    time_end: datetime | None = None
    product_type: str | None = None
    cloud_cover: tuple[float, float] | None = Field(
        default=None, description="Cloud cover in percent, an inclusive (min, max) range"
    )
    max_records: int = Field(default=DEFAULT_RECORDS, ge=1, le=MAX_RECORDS)
    start_index: int = Field(default=1, ge=1, le=MAX_START_INDEX)
    format: SearchFormat | None = None
    given: dict[str, str] = Field(
        default_factory=dict, description="The parameters as the client wrote them (for links)"
    )

    @classmethod
    def parse(
        cls, items: Iterable[tuple[str, str]], *, collection: str | None = None
    ) -> "SearchQuery":
        """Check query parameters (name, value pairs); a bad one raises InvalidParameter."""
        given: dict[str, str] = {}
        for name, value in items:
            if name not in PARAMETERS:
                continue
            if name in given:
                raise InvalidParameter(name, "is given more than once")
            given[name] = value
        values: dict[str, Any] = {"given": given}
        if collection is not None:
            values["collection"] = check_collection(collection)
            if "collection" in given and given["collection"] != collection:
                raise InvalidParameter("collection", "differs from the collection in the path")
        elif given.get("collection"):
            values["collection"] = check_collection(given["collection"], location="query")
        if given.get("bbox"):
            values["bbox"] = parse_bbox(given["bbox"])
        if given.get("geometry"):
            values["geometry"] = _geometry(given["geometry"])
        if given.get("timeStart"):
            values["time_start"] = _time("timeStart", given["timeStart"], end=False)
        if given.get("timeEnd"):
            values["time_end"] = _time("timeEnd", given["timeEnd"], end=True)
            start = values.get("time_start")
            if start is not None and values["time_end"] < start:
                raise InvalidParameter("timeEnd", "must not be before timeStart")
        if given.get("productType"):
            if len(given["productType"]) > 100:
                raise InvalidParameter("productType", "may be at most 100 characters")
            values["product_type"] = given["productType"]
        if given.get("cloudCover"):
            values["cloud_cover"] = parse_cloud_cover(given["cloudCover"])
        if given.get("maxRecords"):
            values["max_records"] = _integer("maxRecords", given["maxRecords"], 1, MAX_RECORDS)
        if given.get("startIndex"):
            values["start_index"] = _integer("startIndex", given["startIndex"], 1, MAX_START_INDEX)
        if given.get("format"):
            chosen = given["format"].lower()
            if chosen not in ("json", "atom"):
                raise InvalidParameter("format", "must be json or atom")
            values["format"] = chosen
        return cls(**values)

    def link_params(self, start_index: int) -> dict[str, str]:
        """The same query at another start index (for self, next and previous links)."""
        params = {k: v for k, v in self.given.items() if v and k != "startIndex"}
        if start_index != 1:
            params["startIndex"] = str(start_index)
        return params


def check_collection(value: str, *, location: str = "path") -> str:
    """A collection name as the catalogue accepts it, or InvalidParameter (a 400)."""
    if not re.fullmatch(COLLECTION_PATTERN, value):
        raise InvalidParameter(
            "collection",
            "must be 1 to 100 letters, digits and _ . - (starting with a letter or digit)",
            location=location,
        )
    return value


_PERCENT = r"\s*([0-9]{1,3}(?:\.[0-9]{1,6})?)\s*"
_CLOUD_RANGE = re.compile(rf"\[{_PERCENT},{_PERCENT}\]|{_PERCENT}", re.ASCII)


def parse_cloud_cover(value: str) -> tuple[float, float]:
    """``N`` (at most N percent) or ``[min,max]`` (the EO extension's interval), or
    InvalidParameter naming cloudCover."""
    found = _CLOUD_RANGE.fullmatch(value)
    low, high = (0.0, float(found[3])) if found and found[3] else (0.0, -1.0)
    if found and found[1]:
        low, high = float(found[1]), float(found[2])
    if not 0 <= low <= high <= 100:
        raise InvalidParameter(
            "cloudCover",
            "must be a percentage N (at most N) or an interval [min,max], from 0 to 100",
        )
    return low, high


def parse_bbox(value: str) -> tuple[float, float, float, float]:
    """minlon,minlat,maxlon,maxlat in WGS84, or InvalidParameter naming bbox."""
    try:
        return geo.parse_bbox(value)
    except ValueError as exc:
        raise InvalidParameter("bbox", str(exc)) from None


def _geometry(value: str) -> str:
    if len(value) > MAX_WKT_LENGTH:
        raise InvalidParameter("geometry", f"may be at most {MAX_WKT_LENGTH} characters of WKT")
    try:
        with numpy.errstate(all="ignore"):  # overflowing numbers are refused below
            geometry = shapely.from_wkt(value)
    except (shapely.errors.ShapelyError, ValueError, TypeError):
        raise InvalidParameter("geometry", "is not well-formed WKT") from None
    return check_search_geometry(geometry)


def check_search_geometry(geometry: BaseGeometry | None, *, parameter: str = "geometry") -> str:
    """A geometry to search by, checked (not empty, finite, within WGS84, valid), as 2D WKT;
    InvalidParameter naming ``parameter`` when it is not."""
    if geometry is None or geometry.is_empty:
        raise InvalidParameter(parameter, "must not be empty")
    bounds = geometry.bounds
    if not all(math.isfinite(b) for b in bounds):
        raise InvalidParameter(parameter, "holds coordinates that are not finite numbers")
    min_lon, min_lat, max_lon, max_lat = bounds
    if min_lon < -180 or max_lon > 180 or min_lat < -90 or max_lat > 90:
        raise InvalidParameter(
            parameter, "must lie within WGS84 bounds (longitude -180..180, latitude -90..90)"
        )
    geometry = shapely.force_2d(geometry)
    if not geometry.is_valid:
        raise InvalidParameter(parameter, f"is not valid: {explain_validity(geometry)}")
    return str(shapely.to_wkt(geometry, rounding_precision=-1, output_dimension=2))


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _time(name: str, value: str, *, end: bool) -> datetime:
    """ISO 8601 date or date-time; a naive time is UTC; a date alone as ``timeEnd`` means the end
    of that day (so timeStart=timeEnd=that date finds the day's products)."""
    hint = "must be an ISO 8601 date or date-time, e.g. 2024-07-01 or 2024-07-01T10:00:00Z"
    if len(value) > MAX_TIME_LENGTH:
        raise InvalidParameter(name, hint)
    try:
        if _DATE_ONLY.match(value):
            day = date.fromisoformat(value)
            return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        if " " in value and "+" not in value:
            hint += " (percent-encode '+' in a time zone offset as %2B)"
        raise InvalidParameter(name, hint) from None
    try:
        return to_utc(parsed)
    except ValueError:
        raise InvalidParameter(name, "is out of range") from None


def _integer(name: str, value: str, minimum: int, maximum: int) -> int:
    if not re.fullmatch(r"\d{1,9}", value.strip()):
        raise InvalidParameter(name, f"must be a whole number from {minimum} to {maximum}")
    number = int(value)
    if not minimum <= number <= maximum:
        raise InvalidParameter(name, f"must be a whole number from {minimum} to {maximum}")
    return number


@dataclass(frozen=True)
class ProductCriteria:
    """What matching products must be: in one of the collections, with one of the identifiers,
    of the type, meeting the box or the (checked, WKT) geometry, overlapping [start, end]."""

    collections: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()
    product_type: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    geometry: str | None = None
    time_start: datetime | None = None
    time_end: datetime | None = None
    cloud_cover: tuple[float, float] | None = None  # percent, inclusive; unknown cover fails

    @classmethod
    def of_search(cls, search: SearchQuery) -> "ProductCriteria":
        return cls(
            collections=(search.collection,) if search.collection is not None else (),
            product_type=search.product_type,
            bbox=search.bbox,
            geometry=search.geometry,
            time_start=search.time_start,
            time_end=search.time_end,
            cloud_cover=search.cloud_cover,
        )
