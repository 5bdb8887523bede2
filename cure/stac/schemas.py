"""The STAC API's search: GET parameters and POST body, checked into one ``ItemSearch``."""

import json
from datetime import datetime
from typing import Any

from pydantic import Field
from shapely.errors import ShapelyError
from shapely.geometry import shape

from cure.ccsi.schemas import MAX_WKT_LENGTH, check_collection, check_search_geometry, parse_bbox
from cure.kit.intervals import parse_interval
from cure.kit.schemas import BaseSchema, InputSchema
from cure.stac.exceptions import InvalidSearch

DEFAULT_LIMIT = 10
MAX_LIMIT = 500
MAX_OFFSET = 1_000_000
MAX_IDS = 500


class SearchBody(InputSchema):
    """POST /stac/search: the STAC API's item search members CURE implements (others are refused,
    so a client never takes an ignored filter for an applied one)."""

    bbox: list[float] | None = Field(default=None, min_length=4, max_length=6)
    intersects: dict[str, Any] | None = None
    datetime: str | None = Field(default=None, max_length=100)
    collections: list[str] | None = Field(default=None, max_length=100)
    ids: list[str] | None = Field(default=None, max_length=MAX_IDS)
    limit: int | None = Field(default=None, ge=1)
    token: str | None = Field(default=None, max_length=20, description="From a next link")


class ItemSearch(BaseSchema):
    """A checked search: what the catalogue filters on, and the page."""

    collections: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    geometry: str | None = None
    time_start: datetime | None = None
    time_end: datetime | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    given: dict[str, Any] = Field(default_factory=dict, description="As the client wrote it")

    @classmethod
    def of_body(cls, body: SearchBody) -> "ItemSearch":
        return cls.check(body.model_dump(exclude_none=True))

    @classmethod
    def of_query(
        cls, params: list[tuple[str, str]], *, collection: str | None = None
    ) -> "ItemSearch":
        """GET parameters: lists are comma-separated, intersects is GeoJSON text."""
        given: dict[str, Any] = {}
        for name, value in params:
            if name in given:
                raise InvalidSearch(name, "is given more than once")
            given[name] = value
        values: dict[str, Any] = {}
        for name, value in given.items():
            if name in ("collections", "ids"):
                values[name] = [part for part in value.split(",") if part]
            elif name == "bbox":
                values[name] = value
            elif name == "intersects":
                try:
                    values[name] = json.loads(value) if len(value) <= MAX_WKT_LENGTH else None
                except ValueError:
                    raise InvalidSearch("intersects", "is not GeoJSON") from None
            elif name == "limit":
                values[name] = _integer("limit", value)
            elif name in ("datetime", "token"):
                values[name] = value
            else:
                raise InvalidSearch(name, "is not a parameter this search knows")
        if collection is None:
            return cls.check(values)
        if "collections" in values or "ids" in values or "intersects" in values:
            name = next(n for n in ("collections", "ids", "intersects") if n in values)
            raise InvalidSearch(name, "is a parameter of /search, not of a collection's items")
        checked = cls.check(values)
        return checked.model_copy(update={"collections": (check_collection(collection),)})

    @classmethod
    def check(cls, values: dict[str, Any]) -> "ItemSearch":
        checked: dict[str, Any] = {"given": values}
        if values.get("bbox") is not None:
            checked["bbox"] = _bbox(values["bbox"])
        if values.get("intersects") is not None:
            if "bbox" in checked:
                raise InvalidSearch("intersects", "give bbox or intersects, not both")
            checked["geometry"] = _intersects(values["intersects"])
        if values.get("datetime"):
            try:
                checked["time_start"], checked["time_end"] = parse_interval(values["datetime"])
            except ValueError as exc:
                raise InvalidSearch("datetime", str(exc)) from None
        if values.get("collections"):
            checked["collections"] = tuple(
                check_collection(c, location="query") for c in values["collections"]
            )
        if values.get("ids"):
            if len(values["ids"]) > MAX_IDS or any(len(i) > 255 for i in values["ids"]):
                raise InvalidSearch("ids", f"at most {MAX_IDS} ids of at most 255 characters")
            checked["ids"] = tuple(values["ids"])
        limit = values.get("limit")
        if limit is not None:
            if limit < 1:
                raise InvalidSearch("limit", "must be at least 1")
            checked["limit"] = min(limit, MAX_LIMIT)  # larger asks get the largest page
        if values.get("token"):
            checked["offset"] = _integer("token", values["token"], maximum=MAX_OFFSET)
        return cls(**checked)

    def page(self, offset: int) -> dict[str, Any]:
        """The same search from ``offset`` on (a next link's parameters or body)."""
        values = {k: v for k, v in self.given.items() if k != "token"}
        values["limit"] = self.limit
        values["token"] = str(offset)
        return values


def _integer(name: str, value: str, maximum: int = 10**9) -> int:
    if not value.strip().isdigit() or int(value) > maximum:
        raise InvalidSearch(name, f"must be a whole number from 0 to {maximum}")
    return int(value)


def _bbox(value: Any) -> tuple[float, float, float, float]:
    if isinstance(value, str):
        return parse_bbox(value)
    if len(value) == 6:  # 3D: drop the heights
        value = [value[0], value[1], value[3], value[4]]
    return parse_bbox(",".join(repr(float(v)) for v in value))


def _intersects(value: Any) -> str:
    if not isinstance(value, dict) or "type" not in value or "coordinates" not in value:
        raise InvalidSearch("intersects", "must be a GeoJSON geometry")
    try:
        geometry = shape(value)
    except (ShapelyError, ValueError, TypeError, AttributeError, KeyError, IndexError):
        raise InvalidSearch("intersects", "is not a valid GeoJSON geometry") from None
    return check_search_geometry(geometry, parameter="intersects")
