import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncEngine

from cure.kit.dependencies import SessionmakerDep, SettingsDep
from cure.kit.metrics import exposition
from cure.kit.schemas import BaseSchema
from cure.ops import health, state

router = APIRouter(tags=["health"])


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
    engine: AsyncEngine = request.app.state.engine
    return engine


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
    settings: SettingsDep, engine: Annotated[AsyncEngine, Depends(_engine)]
) -> JSONResponse:
    """Whether the database, the broker, storage and the Docker engine can be reached now;
    503 while any of them cannot."""
    results = await health.readiness(settings, engine)
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
    settings: SettingsDep,
    sessionmaker: SessionmakerDep,
    engine: Annotated[AsyncEngine, Depends(_engine)],
) -> Response:
    """Prometheus metrics of this API process (workers serve their own); the gauges of orders,
    queues, the outbox and the dependencies are read at each scrape."""
    await asyncio.gather(state.refresh(settings, sessionmaker), health.readiness(settings, engine))
    body, content_type = exposition()
    return Response(body, media_type=content_type)
