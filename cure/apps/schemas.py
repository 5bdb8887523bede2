import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cure.kit.schemas import BaseSchema

APP_ID = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
ROLE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
OUTPUT_PATH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # a file name in /job/outputs


class AppLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_mb: int | None = Field(default=None, gt=0)
    cpus: float | None = Field(default=None, gt=0)
    pids: int | None = Field(default=None, gt=0)
    timeout_seconds: int | None = Field(default=None, gt=0)
    max_output_mb: int | None = Field(default=None, gt=0)
    max_log_mb: int | None = Field(default=None, gt=0)  # stdout and stderr together


class AppInput(BaseModel):
    """One input the app reads, found in the catalogue over the order's region and dates."""

    model_config = ConfigDict(extra="forbid")

    role: str = Field(description="Staged at /job/inputs/<role>/ and named so in params.json")
    collection: str
    product_type: str | None = None
    count: int = Field(default=1, ge=1, le=10, description="How many products, newest first")
    max_age_days: int = Field(
        default=0,
        ge=0,
        le=36600,
        description="0: within the order's dates; N: the newest up to N days before its end",
    )

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        if not ROLE.match(value):
            raise ValueError("role must match ^[a-z][a-z0-9_]{0,62}$")
        return value

    def window(self, start: date, end: date) -> tuple[datetime, datetime]:
        """The acquisition period a product must overlap for an order from ``start`` to ``end``:
        the order's own days, or the ``max_age_days`` up to its end."""
        first = start
        if self.max_age_days:
            try:
                first = end - timedelta(days=self.max_age_days)
            except OverflowError:  # an end in the calendar's first years
                first = date.min
        return datetime.combine(first, time.min, UTC), datetime.combine(end, time.max, UTC)

    def describe(self) -> str:
        kind = f" ({self.product_type})" if self.product_type else ""
        return f"{self.role}: {self.collection}{kind}"

    def missing(
        self,
        start: datetime,
        end: datetime,
        *,
        before: datetime | None,
        after: datetime | None = None,
    ) -> str:
        """Why no product can serve this input, with the nearest dates that have data: the one
        message for the 422 at submit and the INVALID at run time."""
        period = (
            f"{start.date()}" if start.date() == end.date() else f"{start.date()} to {end.date()}"
        )
        reason = f"no {self.describe()} product covers the region on {period}"
        nearest = [
            f"{label} {moment.date()}"
            for label, moment in (("before:", before), ("after:", after))
            if moment is not None
        ]
        if nearest:
            return f"{reason}; nearest dates with data {', '.join(nearest)}"
        return reason


class AppOutput(BaseModel):
    """One file the app writes to /job/outputs/; the primary one is the order's result."""

    model_config = ConfigDict(extra="forbid")

    role: str = "data"
    path: str
    media_type: str = Field(
        default="application/octet-stream",
        max_length=255,
        pattern=r"^[A-Za-z0-9][\w.+\-]*/[A-Za-z0-9][\w.+\-]*(\s*;.*)?$",
    )
    primary: bool = False
    title: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not OUTPUT_PATH.match(value) or value in {".", ".."}:
            raise ValueError("path must be a plain file name under /job/outputs")
        return value


class AppManifest(BaseModel):
    """What an operator writes in ``cure/apps/<app_id>/manifest.json``."""

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    description: str
    version: str
    image: str
    public: bool = True
    inputs: list[AppInput] = Field(default_factory=list)
    outputs: list[AppOutput] = Field(min_length=1)
    limits: AppLimits = Field(default_factory=AppLimits)
    invalid_exit_code: int = Field(
        default=3, description="Exit code meaning: no usable input for this region and date"
    )
    parameters: dict[str, Any]

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not APP_ID.match(value):
            raise ValueError("app id must match ^[a-z][a-z0-9_]{1,62}$")
        return value

    @model_validator(mode="after")
    def _one_primary(self) -> "AppManifest":
        primaries = [o for o in self.outputs if o.primary]
        if len(primaries) > 1:
            raise ValueError("at most one output may be primary")
        if not primaries:
            self.outputs[0].primary = True  # the first output is the result
        if len({o.path for o in self.outputs}) != len(self.outputs):
            raise ValueError("output paths must differ")
        if len({i.role for i in self.inputs}) != len(self.inputs):
            raise ValueError("input roles must differ")
        if len({o.role for o in self.outputs}) != len(self.outputs):
            raise ValueError("output roles must differ (they name the order's assets)")
        return self

    @property
    def primary_output(self) -> AppOutput:
        return next(o for o in self.outputs if o.primary)


class AppInputRead(BaseSchema):
    role: str
    collection: str
    product_type: str | None
    count: int
    max_age_days: int


class AppOutputRead(BaseSchema):
    role: str
    path: str
    media_type: str
    primary: bool
    title: str | None


class AppRead(BaseSchema):
    id: str
    title: str
    description: str
    version: str
    inputs: list[AppInputRead]
    outputs: list[AppOutputRead]
    input_collections: list[str] = Field(description="The catalogue collections it reads")
    parameters: dict[str, Any] = Field(description="JSON Schema of the order's params")

    @model_validator(mode="before")
    @classmethod
    def _from_manifest(cls, data: Any) -> Any:
        if isinstance(data, AppManifest):
            return {
                **data.model_dump(),
                "input_collections": sorted({i.collection for i in data.inputs}),
            }
        return data
