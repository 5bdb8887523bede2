"""OGC API - Processes (Part 1: Core) at /ogc: HTTP only; every error is an OGC exception."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Query, Response, status

from cure.auth.dependencies import require_scope
from cure.auth.principals import Principal
from cure.auth.scopes import ORDERS_READ, ORDERS_WRITE
from cure.ccsi.dependencies import FederationDep
from cure.kit.dependencies import SessionDep, SettingsDep
from cure.ogc import service as ogc_service
from cure.ogc.exceptions import PROBLEM_TYPE, NothingHere, OgcRoute
from cure.ogc.schemas import (
    ConfClasses,
    Execute,
    JobList,
    JobQuery,
    LandingPage,
    ProcessDescription,
    ProcessList,
    ResultLink,
    StatusInfo,
)
from cure.orders.dependencies import ReadSessionmakerDep, RelayDep
from cure.storage.dependencies import StorageDep

router = APIRouter(prefix=ogc_service.PREFIX, tags=["OGC API - Processes"], route_class=OgcRoute)

Reader = Annotated[Principal, Depends(require_scope(ORDERS_READ))]
Writer = Annotated[Principal, Depends(require_scope(ORDERS_WRITE))]


def _problems(*codes: int) -> dict[int | str, dict[str, object]]:
    return {
        code: {"description": "An OGC exception", "content": {PROBLEM_TYPE: {}}} for code in codes
    }


@router.get("", response_model=LandingPage)
async def landing_page(settings: SettingsDep) -> LandingPage:
    """The landing page: links to the API definition, conformance, processes and jobs."""
    return ogc_service.landing_page(settings)


router.add_api_route(
    "/", landing_page, methods=["GET"], response_model=LandingPage, include_in_schema=False
)


@router.get("/conformance", response_model=ConfClasses)
async def conformance() -> ConfClasses:
    """The conformance classes this API implements."""
    return ogc_service.conformance()


@router.get("/processes", response_model=ProcessList)
async def processes(settings: SettingsDep) -> ProcessList:
    """Every app, as a process."""
    return ogc_service.processes(settings)


@router.get("/processes/{process_id}", response_model=ProcessDescription, responses=_problems(404))
async def process(process_id: str, settings: SettingsDep) -> ProcessDescription:
    """An app as a process: its inputs (roi, start_date, end_date and its parameters) and
    outputs."""
    return ogc_service.process(settings, process_id)


@router.post(
    "/processes/{process_id}/execution",
    status_code=status.HTTP_201_CREATED,
    response_model=StatusInfo,
    responses=_problems(400, 401, 403, 404, 422, 429, 503),
)
async def execute(
    process_id: str,
    data: Execute,
    relay: RelayDep,
    response: Response,
    background: BackgroundTasks,
    session: SessionDep,
    reads: ReadSessionmakerDep,
    settings: SettingsDep,
    principal: Writer,
    sources: FederationDep,
    prefer: Annotated[
        str | None, Header(description="respond-async; synchronous execution is refused")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(min_length=1, max_length=255, description="Repeat an execution safely"),
    ] = None,
) -> StatusInfo:
    """Execute a process asynchronously: an order of the app; follow the job at Location."""
    asynchronous = ogc_service.check_asynchronous(data, prefer)
    info, created = await ogc_service.execute(
        session,
        settings,
        principal,
        process_id=process_id,
        request=data,
        reads=reads,
        idempotency_key=idempotency_key,
        sources=sources,
    )
    response.headers["Location"] = f"{ogc_service.base_url(settings)}/jobs/{info.jobID}"
    if asynchronous:
        response.headers["Preference-Applied"] = "respond-async"
    if created and relay is not None:
        background.add_task(relay.wake_soon)  # after the commit; the relay also polls
    return info


@router.get("/jobs", response_model=JobList, responses=_problems(400, 401, 403))
async def jobs(
    session: SessionDep,
    settings: SettingsDep,
    principal: Reader,
    query: Annotated[JobQuery, Query()],
) -> JobList:
    """Your jobs (admins: everyone's), newest first, filtered by type, processID, status,
    datetime (created) and duration; follow the next link for more."""
    return await ogc_service.jobs(session, settings, principal, query)


@router.get("/jobs/{job_id}", response_model=StatusInfo, responses=_problems(401, 403, 404))
async def job(
    job_id: str, session: SessionDep, settings: SettingsDep, principal: Reader
) -> StatusInfo:
    """A job's status: accepted, running, successful, failed or dismissed, with its progress."""
    return await ogc_service.job(session, settings, principal, job_id)


@router.get(
    "/jobs/{job_id}/results",
    response_model=dict[str, ResultLink],
    responses=_problems(401, 403, 404, 422, 500),
)
async def results(
    job_id: str,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    principal: Reader,
) -> dict[str, ResultLink]:
    """The outputs of a successful job, each an expiring link."""
    return await ogc_service.results(session, settings, storage, principal, job_id)


@router.delete("/jobs/{job_id}", response_model=StatusInfo, responses=_problems(401, 403, 404, 409))
async def dismiss(
    job_id: str, session: SessionDep, settings: SettingsDep, principal: Writer
) -> StatusInfo:
    """Dismiss a job: its order is cancelled (a running app is stopped)."""
    return await ogc_service.dismiss(session, settings, principal, job_id)


@router.get("/{rest:path}", include_in_schema=False)
async def nothing_here(rest: str) -> Response:
    """Any other path under /ogc: an OGC exception too."""
    raise NothingHere(f"nothing at {ogc_service.PREFIX}/{rest[:100]}")
