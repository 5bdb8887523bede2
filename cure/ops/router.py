import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncEngine

from cure.kit.dependencies import SessionmakerDep
from cure.kit.metrics import exposition
from cure.kit.schemas import BaseSchema
from cure.kit.state import state_of
from cure.ops.scrapes import Scrapes, get_scrapes

router = APIRouter(tags=["health"])
ScrapesDep = Annotated[Scrapes, Depends(get_scrapes)]


class DependencyRead(BaseSchema):
    ok: bool
    detail: str
    seconds: float


class ReadinessRead(BaseSchema):
    status: Literal["ready", "unavailable"]
    checks: dict[str, DependencyRead | None] = Field(
        description="database, broker, storage, docker; null when not checked here"
    )


async def _engine(request: Request) -> AsyncEngine:
    return state_of(request.app).db.engine


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process runs and answers (checks no dependency)."""
    return {"status": "live"}


@router.get(
    "/health/ready",
    response_model=ReadinessRead,
    responses={503: {"model": ReadinessRead, "description": "a dependency is down"}},
)
async def ready(
    scrapes: ScrapesDep, engine: Annotated[AsyncEngine, Depends(_engine)]
) -> JSONResponse:
    """Whether the database, the broker, storage and the Docker engine can be reached now (as
    of the last round of checks, at most CURE_HEALTH_CACHE_SECONDS old); 503 while any of them
    cannot."""
    results = await scrapes.ready(engine)
    up = all(r.ok for r in results.values() if r is not None)
    body = ReadinessRead(
        status="ready" if up else "unavailable",
        checks={
            name: DependencyRead(ok=r.ok, detail=r.detail, seconds=round(r.seconds, 4))
            if r is not None
            else None
            for name, r in results.items()
        },
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=200 if up else 503,
        headers=None if up else {"Retry-After": "5"},
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(
    scrapes: ScrapesDep,
    sessionmaker: SessionmakerDep,
    engine: Annotated[AsyncEngine, Depends(_engine)],
) -> Response:
    """Prometheus metrics of this API process (workers serve their own); the gauges of orders,
    queues and the outbox are read at most every CURE_METRICS_CACHE_SECONDS, those of the
    dependencies come from the readiness checks (at most CURE_HEALTH_CACHE_SECONDS old)."""
    await asyncio.gather(scrapes.refresh_gauges(sessionmaker), scrapes.ready(engine))
    body, content_type = exposition()
    return Response(body, media_type=content_type)
