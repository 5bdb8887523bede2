"""OGC API - Processes documents (Part 1: Core, JSON encoding) and the execute request."""

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from cure.kit.schemas import BaseSchema, InputSchema

JobStatus = Literal["accepted", "running", "successful", "failed", "dismissed"]


class Link(BaseSchema):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class LandingPage(BaseSchema):
    title: str
    description: str
    links: list[Link]


class ConfClasses(BaseSchema):
    conformsTo: list[str]  # noqa: N815 (the Standard's name)


class ProcessSummary(BaseSchema):
    id: str
    title: str
    description: str
    version: str
    jobControlOptions: list[str]  # noqa: N815
    outputTransmission: list[str]  # noqa: N815
    links: list[Link]


class ProcessList(BaseSchema):
    processes: list[ProcessSummary]
    links: list[Link]


class InputDescription(BaseSchema):
    title: str
    description: str
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
    minOccurs: int = 1  # noqa: N815
    maxOccurs: int = 1  # noqa: N815

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class OutputDescription(BaseSchema):
    title: str
    description: str
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class ProcessDescription(ProcessSummary):
    inputs: dict[str, InputDescription]
    outputs: dict[str, OutputDescription]


class Execute(InputSchema):
    """An execute request: the process's inputs by name (plain or qualified values), and the
    optional members of the Standard (CURE runs every job asynchronously, results by reference)."""

    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="roi (a GeoJSON Polygon or MultiPolygon, a Feature, or a bbox), start_date, "
        "end_date and the app's parameters",
    )
    outputs: dict[str, Any] | None = Field(
        default=None, description="The outputs wanted; every output is always produced"
    )
    response: Literal["document", "raw"] | None = None
    mode: Literal["async", "sync", "auto"] | None = Field(
        default=None, description="From drafts of the Standard; only async (or auto) is accepted"
    )
    subscriber: dict[str, Any] | None = Field(
        default=None, description="Not supported (the callback class is not claimed)"
    )


class StatusInfo(BaseSchema):
    processID: str  # noqa: N815
    type: Literal["process"] = "process"
    jobID: str  # noqa: N815
    status: JobStatus
    message: str | None = None
    created: datetime
    started: datetime | None = None
    finished: datetime | None = None
    updated: datetime
    progress: int | None = Field(default=None, ge=0, le=100)
    links: list[Link]
    cure_status: str = Field(
        serialization_alias="cure:status",
        description="CURE's own state (INVALID and FAILED are both failed)",
    )

    model_config = ConfigDict(serialize_by_alias=True)


class JobList(BaseSchema):
    jobs: list[StatusInfo]
    links: list[Link]


class JobQuery(InputSchema):
    """The job list's query parameters (the job-list conformance class), plus a cursor."""

    type: list[str] = Field(default_factory=list, description="Only 'process' jobs exist")
    processID: list[str] = Field(default_factory=list)  # noqa: N815
    status: list[JobStatus] = Field(default_factory=list)
    datetime: str | None = Field(
        default=None,
        max_length=100,
        description="When the job was created: an instant or an interval (a/b, ../b, a/..)",
    )
    minDuration: int | None = Field(default=None, ge=0, description="Seconds")  # noqa: N815
    maxDuration: int | None = Field(default=None, ge=0, description="Seconds")  # noqa: N815
    limit: int = Field(default=10, ge=1, le=10000, description="At most 100 are returned")
    cursor: str | None = Field(default=None, max_length=500, description="From a next link")


class ResultLink(BaseSchema):
    href: str = Field(description="An expiring link to the output")
    type: str
    title: str | None = None
    rel: str = "related"
