import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from graphlib import CycleError, TopologicalSorter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cure.kit.schemas import BaseSchema

APP_ID = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
ROLE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
OUTPUT_PATH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # a file name in /job/outputs
FORMAT = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
ASSET_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
STEP_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
MAX_STEPS = 20
# The catalogue collection of the products an app's orders make: "cure-<app_id>".
ORDER_COLLECTION_PREFIX = "cure-"


def order_collection(app_id: str) -> str:
    """The collection that holds the products of the app's orders."""
    return f"{ORDER_COLLECTION_PREFIX}{app_id}"


def producing_app(collection: str) -> str | None:
    """The app whose orders make the products of ``collection``; None for an input collection."""
    if not collection.startswith(ORDER_COLLECTION_PREFIX):
        return None
    app_id = collection.removeprefix(ORDER_COLLECTION_PREFIX)
    return app_id if APP_ID.match(app_id) else None


class AppLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_mb: int | None = Field(default=None, gt=0)
    cpus: float | None = Field(default=None, gt=0)
    pids: int | None = Field(default=None, gt=0)
    timeout_seconds: int | None = Field(default=None, gt=0)
    max_output_mb: int | None = Field(default=None, gt=0)
    max_log_mb: int | None = Field(default=None, gt=0)  # stdout and stderr together
    parallel_steps: int | None = Field(
        default=None,
        gt=0,
        le=MAX_STEPS,
        description="A workflow's most steps running at once (default: the worker's setting)",
    )


class StepLimits(BaseModel):
    """A step's own limits; what it leaves out it takes from the app's ``limits``."""

    model_config = ConfigDict(extra="forbid")

    memory_mb: int | None = Field(default=None, gt=0)
    cpus: float | None = Field(default=None, gt=0)
    pids: int | None = Field(default=None, gt=0)
    timeout_seconds: int | None = Field(default=None, gt=0)
    max_log_mb: int | None = Field(default=None, gt=0)


class AppStep(BaseModel):
    """One container of an app's workflow. It sees the run's job folder: /job/inputs (read
    only), /job/work (shared by the run's steps, deleted at its end) and /job/outputs."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Unique within the app; names the step in logs and errors")
    title: str | None = Field(default=None, max_length=200)
    image: str | None = Field(default=None, description="Its image; default: the app's image")
    command: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Its first arguments; the order's parameters follow as --name=value",
    )
    needs: list[str] = Field(
        default_factory=list, max_length=MAX_STEPS, description="Steps that must succeed first"
    )
    limits: StepLimits = Field(default_factory=StepLimits)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not STEP_NAME.match(value):
            raise ValueError("a step name must match ^[a-z][a-z0-9_-]{0,39}$")
        return value

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str]) -> list[str]:
        if any(len(arg) > 200 or "\x00" in arg for arg in value):
            raise ValueError("each argument of a step's command is text of at most 200 characters")
        return value


class InputFormat(BaseModel):
    """One collection that can serve an input, read by the app in that collection's format."""

    model_config = ConfigDict(extra="forbid")

    format: str | None = Field(
        default=None,
        description="A name for the format, unique within the input; the value of the input's "
        "chosen_by parameter that picks it",
    )
    collection: str
    product_type: str | None = None
    assets: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="The asset keys the app reads from a product of this collection; "
        "empty: it reads whatever the product holds",
    )

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        if value is not None and not FORMAT.match(value):
            raise ValueError("format must match ^[a-z][a-z0-9_-]{0,62}$")
        return value

    @field_validator("assets")
    @classmethod
    def _assets(cls, value: list[str]) -> list[str]:
        if any(not ASSET_KEY.match(key) for key in value):
            raise ValueError("each asset key must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
        if len(set(value)) != len(value):
            raise ValueError("asset keys must differ")
        return value

    def label(self) -> str:
        kind = f" ({self.product_type})" if self.product_type else ""
        return f"{self.collection}{kind}"


class AppInput(InputFormat):
    """One input the app reads, found in the catalogue over the order's region and dates.

    Its own collection is the one it prefers; ``alternatives`` are other collections (other
    formats) that serve the same role, in order of preference: the first with data wins. When
    ``chosen_by`` names a parameter, an order whose value of it is the ``format`` of one of
    them is served by that one alone (any other value, e.g. ``auto``, keeps them all).
    """

    role: str = Field(description="Staged at /job/inputs/<role>/ and named so in params.json")
    count: int = Field(default=1, ge=1, le=10, description="How many products, newest first")
    max_age_days: int = Field(
        default=0,
        ge=0,
        le=36600,
        description="0: within the order's dates; N: the newest up to N days before its end",
    )
    alternatives: list[InputFormat] = Field(
        default_factory=list,
        max_length=10,
        description="Other collections that serve this input, in order of preference",
    )
    chosen_by: str | None = Field(
        default=None,
        description="A string parameter whose value, the format of one of the collections, "
        "restricts the input to that collection",
    )

    @model_validator(mode="after")
    def _formats(self) -> "AppInput":
        formats = self.accepted()
        pairs = [(f.collection, f.product_type) for f in formats]
        if len(set(pairs)) != len(pairs):
            raise ValueError(f"input {self.role}: a collection and product type appear twice")
        names = [f.format for f in formats if f.format is not None]
        if len(set(names)) != len(names):
            raise ValueError(f"input {self.role}: format names must differ")
        if self.chosen_by is not None and len(names) != len(formats):
            raise ValueError(f"input {self.role}: chosen_by needs a format name on each collection")
        return self

    def accepted(self, params: Mapping[str, Any] | None = None) -> list[InputFormat]:
        """The collections that may serve this input for an order with ``params``, in order of
        preference: every one, or the one its ``chosen_by`` parameter names."""
        formats = [
            InputFormat(
                format=self.format,
                collection=self.collection,
                product_type=self.product_type,
                assets=self.assets,
            ),
            *self.alternatives,
        ]
        if self.chosen_by is not None and params is not None:
            chosen = params.get(self.chosen_by)
            picked = [f for f in formats if f.format is not None and f.format == chosen]
            if picked:
                return picked
        return formats

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

    def describe(self, params: Mapping[str, Any] | None = None) -> str:
        """The role and the collections that may serve it: ``lst: a (A) or b (B)``."""
        return f"{self.role}: " + " or ".join(f.label() for f in self.accepted(params))

    def missing(
        self,
        start: datetime,
        end: datetime,
        *,
        before: datetime | None,
        after: datetime | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> str:
        """Why no product can serve this input, with the nearest dates that have data: the one
        message for the 422 at submit and the INVALID at run time."""
        period = (
            f"{start.date()}" if start.date() == end.date() else f"{start.date()} to {end.date()}"
        )
        reason = f"no {self.describe(params)} product covers the region on {period}"
        producers = [producing_app(f.collection) for f in self.accepted(params)]
        if all(producers):
            # Only CURE's own products serve it: the customer's, or published ones.
            apps = " or ".join(dict.fromkeys(str(app) for app in producers))
            reason = (
                f"no {self.describe(params)} product of yours or published covers the region"
                f" on {period}; order the app {apps} first for this region and period"
            )
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
    steps: list[AppStep] = Field(
        default_factory=list,
        max_length=MAX_STEPS,
        description="A workflow: containers run in the order of their needs; none: one container "
        "of ``image`` runs the app",
    )

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
        for wanted in self.inputs:
            if wanted.chosen_by is not None:
                self._check_choice(wanted)
            if any(f.collection == order_collection(self.id) for f in wanted.accepted()):
                raise ValueError(f"input {wanted.role}: an app cannot take its own products")
        if self.steps:
            self.step_order()  # raises on a cycle or an unknown step
        return self

    def step_order(self) -> list[str]:
        """The steps in an order that runs each after the steps it needs (ValueError if none)."""
        names = [step.name for step in self.steps]
        if len(set(names)) != len(names):
            raise ValueError("step names must differ")
        for step in self.steps:
            unknown = [need for need in step.needs if need not in names]
            if unknown:
                raise ValueError(f"step {step.name} needs unknown step(s): {', '.join(unknown)}")
            if step.name in step.needs or len(set(step.needs)) != len(step.needs):
                raise ValueError(f"step {step.name}: needs must differ and not name the step")
        sorter = TopologicalSorter({step.name: step.needs for step in self.steps})
        try:
            return list(sorter.static_order())
        except CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise ValueError(f"the steps' needs form a cycle: {cycle}") from exc

    def _check_choice(self, wanted: AppInput) -> None:
        """chosen_by names a string parameter whose enum holds every format of the input."""
        properties = self.parameters.get("properties") or {}
        prop = properties.get(wanted.chosen_by) if isinstance(properties, dict) else None
        if not isinstance(prop, dict) or prop.get("type") != "string":
            raise ValueError(
                f"input {wanted.role}: chosen_by {wanted.chosen_by!r} is not a string parameter"
            )
        names = {f.format for f in wanted.accepted()}
        if not names <= set(prop.get("enum") or []):
            raise ValueError(
                f"input {wanted.role}: the enum of {wanted.chosen_by!r} must hold every format"
                f" ({', '.join(sorted(str(n) for n in names))})"
            )

    @property
    def primary_output(self) -> AppOutput:
        return next(o for o in self.outputs if o.primary)


class InputFormatRead(BaseSchema):
    format: str | None
    collection: str
    product_type: str | None
    assets: list[str]


class AppInputRead(BaseSchema):
    role: str
    collection: str
    product_type: str | None
    format: str | None = None
    assets: list[str] = Field(default_factory=list)
    count: int
    max_age_days: int
    alternatives: list[InputFormatRead] = Field(
        default_factory=list, description="Other collections that serve it, in order of preference"
    )
    chosen_by: str | None = Field(
        default=None, description="The parameter whose value picks one of its formats"
    )


class AppOutputRead(BaseSchema):
    role: str
    path: str
    media_type: str
    primary: bool
    title: str | None


class AppStepRead(BaseSchema):
    name: str
    title: str | None
    needs: list[str] = Field(description="The steps that run before it")


class AppRead(BaseSchema):
    id: str
    title: str
    description: str
    version: str
    inputs: list[AppInputRead]
    outputs: list[AppOutputRead]
    steps: list[AppStepRead] = Field(
        default_factory=list, description="Its workflow's steps; empty: one container runs it"
    )
    input_collections: list[str] = Field(description="The catalogue collections it reads")
    parameters: dict[str, Any] = Field(description="JSON Schema of the order's params")

    @model_validator(mode="before")
    @classmethod
    def _from_manifest(cls, data: Any) -> Any:
        if isinstance(data, AppManifest):
            return {
                **data.model_dump(),
                "input_collections": sorted(
                    {f.collection for i in data.inputs for f in i.accepted()}
                ),
            }
        return data
