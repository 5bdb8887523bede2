import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    AwareDatetime,
    Field,
    HttpUrl,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cure.ccsi.schemas import ProductReference
from cure.kit.geo import from_db, from_wkb, parse_bbox, parse_roi, to_geojson
from cure.kit.schemas import BaseSchema, InputSchema
from cure.orders.lifecycle import OrderStatus, result_files
from cure.orders.models import Order

MAX_PERIOD_DAYS = 3660

ROI_EXAMPLE = {
    "type": "Polygon",
    "coordinates": [
        [[16.30, 48.20], [16.40, 48.20], [16.40, 48.30], [16.30, 48.30], [16.30, 48.20]]
    ],
}


class OrderCreate(InputSchema):
    roi: dict[str, Any] = Field(
        description="Region of interest: a GeoJSON Polygon or MultiPolygon in WGS84",
        examples=[ROI_EXAMPLE],
    )
    start_date: date
    end_date: date | None = Field(default=None, description="Defaults to start_date")
    params: dict[str, Any] = Field(
        default_factory=dict, description="The app's parameters (see its JSON Schema)"
    )
    notify_email: bool = Field(
        default=True,
        description="Email the customer when the order ends SUCCESS, FAILED or INVALID",
    )
    callback_url: HttpUrl | None = Field(
        default=None,
        description="Receives a signed JSON POST on each final state (http or https)",
    )

    @field_validator("roi")
    @classmethod
    def _valid_roi(cls, value: dict[str, Any]) -> dict[str, Any]:
        return to_geojson(parse_roi(value))

    @model_validator(mode="after")
    def _period(self) -> "OrderCreate":
        if self.end_date is None:
            self.end_date = self.start_date
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        if (self.end_date - self.start_date).days >= MAX_PERIOD_DAYS:
            raise ValueError(f"the period may span at most {MAX_PERIOD_DAYS} days")
        return self


class OrderEventRead(BaseSchema):
    status: OrderStatus
    at: datetime = Field(validation_alias=AliasChoices("at", "occurred_at"))
    actor: str
    message: str | None = None
    progress: int | None = None
    attempt: int


class OrderResultRead(BaseSchema):
    href: str = Field(description="GET this to be redirected to the file")
    size: int
    media_type: str
    checksum: str


class OrderAssetRead(OrderResultRead):
    role: str
    title: str | None = None
    primary: bool = False


class OrderSummary(BaseSchema):
    order_id: uuid.UUID
    customer_id: uuid.UUID
    app_id: str
    app_version: str
    status: OrderStatus
    message: str | None = Field(description="The latest step, or the reason of a final state")
    progress: int | None = Field(description="Percent done, while RUNNING")
    attempt: int
    start_date: date
    end_date: date
    created_at: datetime
    updated_at: datetime
    result: OrderResultRead | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_order(cls, data: Any) -> Any:
        return _summary_fields(data) if isinstance(data, Order) else data


class OrderRead(OrderSummary):
    roi: dict[str, Any]
    params: dict[str, Any]
    notify_email: bool
    callback_url: str | None
    history: list[OrderEventRead]
    assets: list[OrderAssetRead] = Field(
        default_factory=list, description="Every file of the result, the primary one first"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_order(cls, data: Any) -> Any:
        if not isinstance(data, Order):
            return data
        # The history was loaded explicitly by the repository.
        return _read_fields(data, roi=from_db(data.roi), history=data.events)

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]]) -> "OrderRead":
        """The answer from ``repository.read_status``'s rows: the order's columns, and on each
        row one event of its history (``event_*``)."""
        first = rows[0]
        order = SimpleNamespace(**{k: v for k, v in first.items() if not k.startswith("event_")})
        history = [
            {
                key.removeprefix("event_"): value
                for key, value in row.items()
                if key.startswith("event_")
            }
            for row in rows
            if row["event_status"] is not None
        ]
        return cls.model_validate(_read_fields(order, roi=from_wkb(first["roi"]), history=history))


def _read_fields(order: Any, *, roi: dict[str, Any], history: Sequence[Any]) -> dict[str, Any]:
    """An order's full answer: its summary, region, parameters, notifications, history, assets."""
    return {
        **_summary_fields(order),
        "roi": roi,
        "params": order.params,
        "notify_email": order.notify_email,
        "callback_url": order.callback_url,
        "history": history,
        "assets": _assets(order),
    }


def _assets(order: Any) -> list[OrderAssetRead]:
    return [
        OrderAssetRead(
            href=f"/v1/orders/{order.id}/assets/{role}",
            size=asset["size"],
            media_type=asset["media_type"],
            checksum=asset["checksum"],
            role=role,
            title=asset.get("title"),
            primary=asset.get("primary", False),
        )
        for role, asset in result_files(order.status, order.assets)
    ]


def _summary_fields(order: Any) -> dict[str, Any]:
    """An order's summary: from an ``Order``, or anything with its attributes."""
    result = None
    if order.status == OrderStatus.SUCCESS and order.result_key is not None:
        result = OrderResultRead(
            href=f"/v1/orders/{order.id}/result",
            size=order.result_size or 0,
            media_type=order.result_media_type or "application/octet-stream",
            checksum=order.result_checksum or "",
        )
    return {
        "order_id": order.id,
        "customer_id": order.customer_id,
        "app_id": order.app_id,
        "app_version": order.app_version,
        "status": order.status,
        "message": order.message,
        "progress": order.progress,
        "attempt": order.attempt,
        "start_date": order.start_date,
        "end_date": order.end_date,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "result": result,
    }


class OrderPage(BaseSchema):
    items: list[OrderSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


class OrderResultInfo(BaseSchema):
    key: str
    size: int
    media_type: str
    checksum: str


class OrderAssetInfo(OrderResultInfo):
    """One stored output of a run, as the worker reports it on SUCCESS."""

    role: str = Field(max_length=63)
    title: str | None = Field(default=None, max_length=200)
    primary: bool = False


class OrderEventMessage(BaseSchema):
    """What workers (and the relay) publish about an order; the order-event consumer applies it."""

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    order_id: uuid.UUID
    status: OrderStatus
    attempt: int = Field(default=1, ge=1, le=1000)
    actor: str
    occurred_at: AwareDatetime
    message: str | None = None
    progress: int | None = Field(default=None, ge=0, le=100)
    result: OrderResultInfo | None = None
    assets: list[OrderAssetInfo] | None = Field(default=None, max_length=50)
    derived_from: list[ProductReference] | None = Field(
        default=None, max_length=200, description="On SUCCESS: the input products the run staged"
    )
    heartbeat: bool = Field(default=False, description="Only a sign of life; not a transition")
    stored_alone: bool = Field(
        default=False,
        description="On SUCCESS of a first attempt: after storing, the run found no stored file "
        "of its order but the ones it names, so its final state needs no tidy (cure.orders.tidy)",
    )

    @field_validator("actor", "message")
    @classmethod
    def _storable_text(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Apps choose their log lines and hosts their names: keep what PostgreSQL can store.
        if value is None:
            return None
        cleaned = value.replace("\x00", "")
        return cleaned[:64] if info.field_name == "actor" else cleaned[:2000]


class OrderFilter(InputSchema):
    """Query parameters of GET /v1/orders; a bad one is a 422 that names it."""

    status: list[OrderStatus] = Field(default_factory=list, description="Repeat for several")
    app_id: list[str] = Field(default_factory=list, description="Repeat for several")
    customer_id: uuid.UUID | None = Field(default=None, description="Admins only")
    created_after: AwareDatetime | None = None
    created_before: AwareDatetime | None = None
    updated_after: AwareDatetime | None = None
    updated_before: AwareDatetime | None = None
    bbox: str | None = Field(
        default=None,
        description="min_lon,min_lat,max_lon,max_lat (WGS84): orders whose region intersects it",
        examples=["16.2,48.1,16.5,48.4"],
    )
    min_duration: int | None = Field(
        default=None,
        ge=0,
        description="Seconds from creation to the final state (or to now, if not final), at least",
    )
    max_duration: int | None = Field(default=None, ge=0, description="The same, at most")
    sort: Literal["created_at", "-created_at", "updated_at", "-updated_at"] = "-created_at"
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500)

    @field_validator("created_after", "created_before", "updated_after", "updated_before")
    @classmethod
    def _storable(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("the time is out of range") from None

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parse_bbox(value)
        except ValueError as exc:
            raise ValueError(f"bbox {exc}") from None
        return value

    def bbox_numbers(self) -> tuple[float, float, float, float] | None:
        return None if self.bbox is None else parse_bbox(self.bbox)


class DownloadLinkRead(BaseSchema):
    href: str = Field(description="An expiring link that downloads the file")
    expires_in: int
    filename: str
