import uuid
from datetime import date, datetime
from typing import Any

from pydantic import Field, field_validator, model_validator

from cure.kit.geo import parse_roi, to_geojson
from cure.kit.schemas import BaseSchema, InputSchema
from cure.orders.lifecycle import OrderStatus

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
    at: datetime
    actor: str
    message: str | None = None
    progress: int | None = None
    attempt: int


class OrderResultRead(BaseSchema):
    href: str = Field(description="GET this to be redirected to the file")
    size: int
    media_type: str
    checksum: str


class OrderRead(BaseSchema):
    order_id: uuid.UUID
    app_id: str
    app_version: str
    status: OrderStatus
    message: str | None
    progress: int | None
    roi: dict[str, Any]
    start_date: date
    end_date: date
    params: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    history: list[OrderEventRead]
    result: OrderResultRead | None = None


class OrderResultInfo(BaseSchema):
    key: str
    size: int
    media_type: str
    checksum: str


class OrderEventMessage(BaseSchema):
    """What workers (and the relay) publish about an order; the status manager applies it."""

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    order_id: uuid.UUID
    status: OrderStatus
    attempt: int = 1
    actor: str
    occurred_at: datetime
    message: str | None = None
    progress: int | None = Field(default=None, ge=0, le=100)
    result: OrderResultInfo | None = None
