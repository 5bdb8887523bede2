"""OGC API - Processes over CURE: processes are apps, jobs are orders.

Executing a process submits an order through ``cure.orders.service.submit`` (the same validation,
idempotency, limits and check of the inputs); dismissing a job cancels its order. Ownership is
the orders' own: a job of another customer is no job at all.
"""

import uuid
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.apps import registry as app_registry
from cure.apps.exceptions import AppNotFound
from cure.auth.principals import Principal
from cure.ccsi.federation import Federation
from cure.config import Settings
from cure.kit.intervals import parse_interval
from cure.ogc.exceptions import (
    InvalidParameterValue,
    JobFailed,
    JobResultNotReady,
    MissingParameterValue,
    NoSuchJob,
    NoSuchProcess,
    OptionNotSupported,
)
from cure.ogc.schemas import (
    ConfClasses,
    Execute,
    InputDescription,
    JobList,
    JobQuery,
    JobStatus,
    LandingPage,
    Link,
    OutputDescription,
    ProcessDescription,
    ProcessList,
    ProcessSummary,
    ResultLink,
    StatusInfo,
)
from cure.orders import service as order_service
from cure.orders.exceptions import OrderFinished, OrderNotFound
from cure.orders.lifecycle import FINAL_STATES, OrderStatus
from cure.orders.models import Order
from cure.orders.schemas import OrderCreate, OrderFilter, OrderSummary
from cure.storage.service import Storage

JSON = "application/json"
PREFIX = "/ogc"
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
_CONF = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/"
# Exactly what is implemented and tested (tests/ogc): no HTML, no OpenAPI 3.0 document (FastAPI
# writes 3.1), no callbacks, no synchronous execution.
CONFORMANCE = [
    _CONF + "core",
    _CONF + "ogc-process-description",
    _CONF + "json",
    _CONF + "job-list",
    _CONF + "dismiss",
]
JOB_CONTROL = ["async-execute", "dismiss"]
MAX_JOBS_PAGE = 100

# CURE's order states as OGC job states, and back (for the job list's status filter).
TO_OGC: dict[OrderStatus, JobStatus] = {
    OrderStatus.RECEIVED: "accepted",
    OrderStatus.QUEUED: "accepted",
    OrderStatus.RUNNING: "running",
    OrderStatus.SUCCESS: "successful",
    OrderStatus.FAILED: "failed",
    OrderStatus.INVALID: "failed",
    OrderStatus.CANCELLED: "dismissed",
}
FROM_OGC: dict[str, list[OrderStatus]] = {}
for _cure, _ogc in TO_OGC.items():
    FROM_OGC.setdefault(_ogc, []).append(_cure)


def base_url(settings: Settings) -> str:
    return f"{settings.public_url.rstrip('/')}{PREFIX}"


def _link(href: str, rel: str, title: str | None = None, media_type: str = JSON) -> Link:
    return Link(href=href, rel=rel, type=media_type, title=title)


# -- landing page, conformance, processes --------------------------------------------------------


def landing_page(settings: Settings) -> LandingPage:
    base, root = base_url(settings), settings.public_url.rstrip("/")
    return LandingPage(
        title="CURE: OGC API - Processes",
        description="CURE's apps as processes and its orders as jobs. Every job runs "
        "asynchronously; authenticate with an OAuth2 bearer token from /v1/auth/token.",
        links=[
            _link(base, "self", "This document"),
            _link(
                f"{root}/openapi.json",
                "service-desc",
                "The API definition (OpenAPI 3.1)",
                "application/vnd.oai.openapi+json;version=3.1",
            ),
            _link(f"{root}/docs", "service-doc", "The API documentation", "text/html"),
            _link(f"{base}/conformance", REL + "conformance", "Conformance classes"),
            _link(f"{base}/processes", REL + "processes", "The processes"),
            _link(f"{base}/jobs", REL + "job-list", "Your jobs"),
        ],
    )


def conformance() -> ConfClasses:
    return ConfClasses(conformsTo=CONFORMANCE)


def _app(settings: Settings, process_id: str) -> app_registry.App:
    try:
        app = app_registry.get_registry(settings).get(process_id)
    except AppNotFound:
        raise NoSuchProcess(f"no process with id '{process_id[:64]}'") from None
    if not app.manifest.public:
        raise NoSuchProcess(f"no process with id '{process_id}'")
    return app


def _summary(settings: Settings, app: app_registry.App) -> ProcessSummary:
    href = f"{base_url(settings)}/processes/{app.id}"
    return ProcessSummary(
        id=app.id,
        title=app.manifest.title,
        description=app.manifest.description,
        version=app.manifest.version,
        jobControlOptions=JOB_CONTROL,
        outputTransmission=["reference"],
        links=[
            _link(href, "self", "The process description"),
            _link(f"{href}/execution", REL + "execute", "Execute the process"),
        ],
    )


def processes(settings: Settings) -> ProcessList:
    apps = app_registry.get_registry(settings).public()
    base = base_url(settings)
    return ProcessList(
        processes=[_summary(settings, app) for app in apps],
        links=[_link(f"{base}/processes", "self", "The processes")],
    )


ROI_SCHEMA: dict[str, Any] = {
    "type": "object",
    "format": "geojson-geometry",
    "description": "A GeoJSON Polygon or MultiPolygon in WGS84 (a Feature holding one, or an "
    "OGC bbox object {'bbox': [min_lon, min_lat, max_lon, max_lat]}, is accepted too)",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"type": "string", "enum": ["Polygon", "MultiPolygon"]},
        "coordinates": {"type": "array"},
    },
}


def _inputs(app: app_registry.App) -> dict[str, InputDescription]:
    inputs = {
        "roi": InputDescription(
            title="Region of interest",
            description="The region to process",
            schema=ROI_SCHEMA,
        ),
        "start_date": InputDescription(
            title="Start date",
            description="The first day of the period (ISO 8601 date)",
            schema={"type": "string", "format": "date"},
        ),
        "end_date": InputDescription(
            title="End date",
            description="The last day of the period; defaults to start_date",
            schema={"type": "string", "format": "date"},
            minOccurs=0,
        ),
    }
    parameters = app.manifest.parameters
    required = set(parameters.get("required", []))
    for name, schema in parameters.get("properties", {}).items():
        if name in inputs or not isinstance(schema, dict):
            continue
        inputs[name] = InputDescription(
            title=str(schema.get("title", name)),
            description=str(schema.get("description", "")),
            schema=schema,
            minOccurs=1 if name in required else 0,
        )
    return inputs


def _outputs(app: app_registry.App) -> dict[str, OutputDescription]:
    return {
        output.role: OutputDescription(
            title=output.title or output.role,
            description=f"{output.path}" + (" (the primary result)" if output.primary else ""),
            schema={
                "type": "string",
                "contentMediaType": output.media_type,
                "contentEncoding": "binary",
            },
        )
        for output in app.manifest.outputs
    }


def process(settings: Settings, process_id: str) -> ProcessDescription:
    app = _app(settings, process_id)
    return ProcessDescription(
        **_summary(settings, app).model_dump(),
        inputs=_inputs(app),
        outputs=_outputs(app),
    )


# -- execution -----------------------------------------------------------------------------------


def preferences(prefer: str | None) -> set[str]:
    """The preference names of a Prefer header (RFC 7240), lower-cased."""
    if not prefer:
        return set()
    names = set()
    for item in prefer.split(","):
        name = item.split(";")[0].split("=")[0].strip().lower()
        if name:
            names.add(name)
    return names


def check_asynchronous(request: Execute, prefer: str | None) -> bool:
    """Whether the client asked for asynchronous execution; a request for synchronous execution
    is refused (every CURE process is async-execute only). Without a preference the Standard's
    default for such a process applies: asynchronous."""
    wanted = preferences(prefer)
    if "respond-sync" in wanted or request.mode == "sync":
        raise OptionNotSupported(
            "synchronous execution is not supported: every process runs asynchronously "
            "(send Prefer: respond-async, then follow the job at its Location)"
        )
    return "respond-async" in wanted


def _plain(name: str, value: Any) -> Any:
    """An input's value: a qualified value ({"value": ...}) is unwrapped; references are refused."""
    if isinstance(value, dict):
        if "href" in value:
            raise InvalidParameterValue(f"{name}: inputs by reference are not supported")
        if "value" in value and set(value) <= {"value", "mediaType", "encoding", "schema"}:
            return value["value"]
    return value


def _roi(value: Any) -> Any:
    value = _plain("roi", value)
    if isinstance(value, dict) and value.get("type") == "Feature":
        return value.get("geometry")
    if isinstance(value, dict) and "bbox" in value and "type" not in value:
        crs = value.get("crs")
        if crs not in (None, "http://www.opengis.net/def/crs/OGC/1.3/CRS84"):
            raise InvalidParameterValue("roi: a bbox must be in CRS84 (longitude, latitude)")
        value = value["bbox"]
    if isinstance(value, list):
        return _box(value)
    return value


def _box(numbers: list[Any]) -> dict[str, Any]:
    if len(numbers) != 4 or not all(
        isinstance(n, int | float) and not isinstance(n, bool) for n in numbers
    ):
        raise InvalidParameterValue(
            "roi: a bbox is four numbers: min_lon, min_lat, max_lon, max_lat"
        )
    x0, y0, x1, y1 = (float(n) for n in numbers)
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [ring]}


def order_request(app: app_registry.App, request: Execute) -> OrderCreate:
    """The order an execute request stands for; inputs that are missing, unknown or invalid are
    OGC exceptions that name them."""
    inputs = dict(request.inputs)
    for required in ("roi", "start_date"):
        if inputs.get(required) is None:
            raise MissingParameterValue(f"the input '{required}' is required")
    known = set(app.manifest.parameters.get("properties", {}))
    unknown = sorted(set(inputs) - known - {"roi", "start_date", "end_date"})
    if unknown:
        raise InvalidParameterValue(
            f"process '{app.id}' has no input {', '.join(repr(u) for u in unknown)}"
        )
    if request.outputs:
        outputs = {o.role for o in app.manifest.outputs}
        extra = sorted(set(request.outputs) - outputs)
        if extra:
            raise InvalidParameterValue(f"process '{app.id}' has no output {', '.join(extra)}")
    body: dict[str, Any] = {
        "roi": _roi(inputs.pop("roi")),
        "start_date": _plain("start_date", inputs.pop("start_date")),
        "params": {
            name: _plain(name, value) for name, value in inputs.items() if name != "end_date"
        },
    }
    if inputs.get("end_date") is not None:
        body["end_date"] = _plain("end_date", inputs["end_date"])
    try:
        return OrderCreate.model_validate(body)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            problems.append(f"{where}: {error['msg']}" if where else error["msg"])
        raise InvalidParameterValue("; ".join(problems)) from None


async def execute(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    *,
    process_id: str,
    request: Execute,
    reads: async_sessionmaker[AsyncSession],
    idempotency_key: str | None,
    sources: Federation | None = None,
) -> tuple[StatusInfo, bool]:
    """Submit the order the request stands for; its job's status, and whether it is new."""
    app = _app(settings, process_id)
    data = order_request(app, request)
    order, created = await order_service.submit(
        session,
        settings,
        principal,
        app_id=app.id,
        data=data,
        reads=reads,
        idempotency_key=idempotency_key,
        sources=sources,
    )
    return status_info(settings, OrderSummary.model_validate(order), order=order), created


# -- jobs ----------------------------------------------------------------------------------------


def _started(order: Order) -> Any:
    running = [e.occurred_at for e in order.events if e.status == OrderStatus.RUNNING.value]
    return min(running) if running else None


def status_info(
    settings: Settings, summary: OrderSummary, *, order: Order | None = None
) -> StatusInfo:
    """An order as an OGC job; ``order`` (with its history) adds when it started."""
    status = OrderStatus(summary.status)
    href = f"{base_url(settings)}/jobs/{summary.order_id}"
    links = [
        _link(href, "self", "The job's status"),
        _link(f"{base_url(settings)}/processes/{summary.app_id}", "up", "The process"),
    ]
    if status == OrderStatus.SUCCESS:
        links.append(_link(f"{href}/results", REL + "results", "The job's results"))
    message = summary.message
    if status == OrderStatus.INVALID:
        message = f"INVALID: {message}" if message else "INVALID: the inputs are missing"
    progress = summary.progress
    if status == OrderStatus.SUCCESS:
        progress = 100
    elif status in (OrderStatus.RECEIVED, OrderStatus.QUEUED):
        progress = progress or 0
    return StatusInfo(
        processID=summary.app_id,
        jobID=str(summary.order_id),
        status=TO_OGC[status],
        message=message,
        created=summary.created_at,
        started=_started(order) if order is not None else None,
        finished=summary.updated_at if status in FINAL_STATES else None,
        updated=summary.updated_at,
        progress=progress,
        links=links,
        cure_status=status.value,
    )


def _job_id(job_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(job_id)
    except ValueError:
        raise NoSuchJob(f"no job with id {job_id[:64]}") from None


async def _order(session: AsyncSession, principal: Principal, job_id: str) -> Order:
    try:
        return await order_service.get(session, principal, _job_id(job_id))
    except OrderNotFound:
        raise NoSuchJob(f"no job with id {job_id}") from None


async def job(
    session: AsyncSession, settings: Settings, principal: Principal, job_id: str
) -> StatusInfo:
    order = await _order(session, principal, job_id)
    return status_info(settings, OrderSummary.model_validate(order), order=order)


def _filter(query: JobQuery) -> OrderFilter:
    try:
        start, end = parse_interval(query.datetime) if query.datetime else (None, None)
    except ValueError as exc:
        raise InvalidParameterValue(f"datetime: {exc}") from None
    statuses = [s for ogc in query.status for s in FROM_OGC[ogc]]
    return OrderFilter(
        status=statuses,
        app_id=query.processID,
        created_after=start,
        created_before=end,
        min_duration=query.minDuration,
        max_duration=query.maxDuration,
        limit=min(query.limit, MAX_JOBS_PAGE),
        cursor=query.cursor,
    )


def _query_string(query: JobQuery, cursor: str) -> str:
    pairs: list[tuple[str, str]] = []
    for name in ("type", "processID", "status"):
        pairs += [(name, value) for value in getattr(query, name)]
    for name in ("datetime", "minDuration", "maxDuration"):
        if getattr(query, name) is not None:
            pairs.append((name, str(getattr(query, name))))
    pairs += [("limit", str(query.limit)), ("cursor", cursor)]
    return urlencode(pairs)


async def jobs(
    session: AsyncSession, settings: Settings, principal: Principal, query: JobQuery
) -> JobList:
    """The caller's jobs (an admin's: everyone's), newest first, a page at a time."""
    href = f"{base_url(settings)}/jobs"
    links = [_link(href, "self", "Your jobs")]
    if query.type and "process" not in query.type:
        return JobList(jobs=[], links=links)
    page = await order_service.list_orders(session, principal, _filter(query))
    if page.next_cursor is not None:
        links.append(_link(f"{href}?{_query_string(query, page.next_cursor)}", "next", "More"))
    return JobList(jobs=[status_info(settings, item) for item in page.items], links=links)


async def results(
    session: AsyncSession,
    settings: Settings,
    storage: Storage,
    principal: Principal,
    job_id: str,
) -> dict[str, ResultLink]:
    """Each output of a successful job as a link that expires; a failed job's reason as the
    exception that matches it."""
    order = await _order(session, principal, job_id)
    status = OrderStatus(order.status)
    if status == OrderStatus.INVALID:
        raise InvalidParameterValue(order.message or "the inputs are missing", status_code=422)
    if status == OrderStatus.FAILED:
        raise JobFailed(order.message or "the job failed")
    if status == OrderStatus.CANCELLED:
        raise JobResultNotReady("the job was dismissed; it has no results")
    if status != OrderStatus.SUCCESS:
        raise JobResultNotReady(f"the job is {TO_OGC[status]}; results exist once it succeeded")
    links = {}
    for role, asset in order_service.result_assets(order):
        url = await storage.presigned_url(asset["key"], expires_in=settings.result_link_ttl_seconds)
        links[role] = ResultLink(href=url, type=asset["media_type"], title=asset.get("title"))
    return links


async def dismiss(
    session: AsyncSession, settings: Settings, principal: Principal, job_id: str
) -> StatusInfo:
    """Cancel the job's order; dismissing a dismissed job again answers its status."""
    order_id = _job_id(job_id)
    try:
        order = await order_service.cancel(session, principal, order_id)
    except OrderFinished:
        order = await _order(session, principal, job_id)
        if order.status != OrderStatus.CANCELLED:
            raise
    return status_info(settings, OrderSummary.model_validate(order), order=order)
