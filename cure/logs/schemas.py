"""Log records on the wire (handler and endpoint to saver), in requests and in answers."""

import json
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, Field, field_validator

from cure.kit.schemas import BaseSchema, InputSchema

MAX_MESSAGE = 32 * 1024
MAX_EXTRA_BYTES = 16 * 1024
SERVICE_PATTERN = r"^[A-Za-z0-9_.:@/-]{1,64}$"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"

    @property
    def number(self) -> int:
        return LEVEL_NUMBERS[self]

    @classmethod
    def of(cls, number: int) -> "LogLevel":
        """The named level at or below a numeric one (logging's 25 is INFO)."""
        named = [level for level, value in LEVEL_NUMBERS.items() if value <= number]
        return named[-1] if named else cls.DEBUG


LEVEL_NUMBERS = {
    LogLevel.DEBUG: 10,
    LogLevel.INFO: 20,
    LogLevel.WARNING: 30,
    LogLevel.ERROR: 40,
    LogLevel.CRITICAL: 50,
}


def _extra_fits(value: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(value, default=str)) > MAX_EXTRA_BYTES:
        raise ValueError(f"extra must serialise to at most {MAX_EXTRA_BYTES} bytes")
    return value


class LogRecordMessage(BaseSchema):
    """One record as the handler and the endpoint publish it and the saver reads it."""

    id: uuid.UUID
    time: AwareDatetime
    service: Annotated[str, Field(max_length=64)]
    host: Annotated[str, Field(max_length=255)]
    level: LogLevel
    logger: Annotated[str, Field(max_length=255)]
    message: str
    order_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class LogRecordCreate(InputSchema):
    """A record sent over HTTP by a service that cannot publish to the queue itself."""

    id: uuid.UUID | None = Field(
        default=None, description="the record's id; sending a record again with it stores it once"
    )
    time: AwareDatetime | None = Field(default=None, description="when it happened (default: now)")
    service: Annotated[str, Field(pattern=SERVICE_PATTERN)]
    host: Annotated[str | None, Field(max_length=255)] = None
    level: LogLevel = LogLevel.INFO
    logger: Annotated[str | None, Field(max_length=255)] = None
    message: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE)]
    order_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = Field(
        default=None, description="admins only; anyone else's records carry their own id"
    )
    extra: dict[str, Any] = Field(default_factory=dict)

    _fits = field_validator("extra")(_extra_fits)


class LogBatchCreate(InputSchema):
    records: Annotated[list[LogRecordCreate], Field(min_length=1)]


class LogsAccepted(BaseSchema):
    accepted: int


class LogRecordRead(BaseSchema):
    id: uuid.UUID
    seq: int
    time: datetime
    service: str
    host: str
    level: LogLevel
    logger: str
    message: str
    order_id: uuid.UUID | None
    customer_id: uuid.UUID | None
    extra: dict[str, Any]

    @field_validator("level", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        return LogLevel.of(value) if isinstance(value, int) else value


class LogFilter(InputSchema):
    service: Annotated[str | None, Field(max_length=64)] = None
    min_level: LogLevel | None = None
    order_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    q: Annotated[str | None, Field(min_length=1, max_length=200)] = Field(
        default=None, description="text the message contains (case-insensitive)"
    )
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    cursor: Annotated[str | None, Field(max_length=500)] = None


class LogPage(BaseSchema):
    records: list[LogRecordRead]
    next_cursor: str | None


class OrderLogPage(BaseSchema):
    records: list[LogRecordRead]
    next_after: int = Field(description="pass as ?after= to get only what follows")
    order_status: str
    finished: bool = Field(description="the order is final and its log is complete")
