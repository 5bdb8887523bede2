"""The STAC API's search: GET parameters and POST body, checked into one ``ItemSearch``."""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field
from shapely.errors import ShapelyError
from shapely.geometry import shape

from cure.ccsi.repository import MAX_OFFSET, Keyset
from cure.ccsi.schemas import MAX_WKT_LENGTH, check_collection, check_search_geometry, parse_bbox
from cure.kit.geo import json_text_nesting
from cure.kit.intervals import parse_interval
from cure.kit.schemas import MAX_NESTING, BaseSchema, InputSchema
from cure.stac.exceptions import InvalidSearch

DEFAULT_LIMIT = 10
MAX_LIMIT = 500
MAX_IDS = 500
MAX_TOKEN_LENGTH = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A next link's token: where its page ended (acquisition start in microseconds since 1970, in
# hexadecimal, and the product's id). Plain digits are an offset (links made before keysets).
_KEYSET_TOKEN = re.compile(r"(-?[0-9a-f]{1,15})\.([0-9a-f]{32})")
_OFFSET_TOKEN = re.compile(r"[0-9]{1,10}")


def keyset_token(keyset: Keyset) -> str:
    """The token of a next link that resumes after ``keyset``."""
    micros = (keyset.start_at - _EPOCH) // timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    return f"{sign}{abs(micros):x}.{keyset.id.hex}"


def _token(value: str) -> dict[str, Any]:
    """A token as where to resume: {"after": Keyset} or {"offset": int}; else InvalidSearch."""
    if keyset := _KEYSET_TOKEN.fullmatch(value):
        try:
            start = _EPOCH + timedelta(microseconds=int(keyset[1], 16))
        except OverflowError:
            raise InvalidSearch("token", "is not a token of this API's next links") from None
        return {"after": Keyset(start, uuid.UUID(hex=keyset[2]))}
    if _OFFSET_TOKEN.fullmatch(value) and int(value) <= MAX_OFFSET:
        return {"offset": int(value)}
    if _OFFSET_TOKEN.fullmatch(value):
        raise InvalidSearch(
            "token",
            f"an offset past {MAX_OFFSET} is not served: follow the next links, whose tokens "
            "resume where their page ended",
        )
    raise InvalidSearch("token", "is not a token of this API's next links")


class SearchBody(InputSchema):
    """POST /stac/search: the STAC API's item search members CURE implements (others are refused,
    so a client never takes an ignored filter for an applied one)."""

    bbox: list[float] | None = Field(default=None, min_length=4, max_length=6)
    intersects: dict[str, Any] | None = None
    datetime: str | None = Field(default=None, max_length=100)
    collections: list[str] | None = Field(default=None, max_length=100)
    ids: list[str] | None = Field(default=None, max_length=MAX_IDS)
    limit: int | None = Field(default=None, ge=1)
    token: str | None = Field(
        default=None, max_length=MAX_TOKEN_LENGTH, description="From a next link"
    )


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
    after: Keyset | None = Field(default=None, description="Resume after this (a next link's)")
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
                values[name] = _geojson_text(value)
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
            if any(_CONTROL.search(i) for i in values["ids"]):
                raise InvalidSearch("ids", "must not contain control characters")
            checked["ids"] = tuple(values["ids"])
        limit = values.get("limit")
        if limit is not None:
            if limit < 1:
                raise InvalidSearch("limit", "must be at least 1")
            checked["limit"] = min(limit, MAX_LIMIT)  # larger asks get the largest page
        if values.get("token"):
            checked.update(_token(values["token"]))
        return cls(**checked)

    def page(self, token: str) -> dict[str, Any]:
        """The same search resumed at ``token`` (a next link's parameters or body)."""
        values = {k: v for k, v in self.given.items() if k != "token"}
        values["limit"] = self.limit
        values["token"] = token
        return values


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _integer(name: str, value: str, maximum: int = 10**9) -> int:
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if not re.fullmatch(r"[0-9]{1,10}", value.strip()) or int(value) > maximum:
        raise InvalidSearch(name, f"must be a whole number from 0 to {maximum}")
    return int(value)


def _geojson_text(value: str) -> Any:
    """GeoJSON given as text, its nesting bounded before any parser walks it."""
    if len(value) > MAX_WKT_LENGTH:
        raise InvalidSearch("intersects", f"may be at most {MAX_WKT_LENGTH} characters")
    if json_text_nesting(value, limit=MAX_NESTING) > MAX_NESTING:
        raise InvalidSearch("intersects", f"must not be nested more than {MAX_NESTING} levels deep")
    try:
        return json.loads(value)
    except ValueError:
        raise InvalidSearch("intersects", "is not GeoJSON") from None


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
