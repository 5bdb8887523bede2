import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from cure.auth.dependencies import AdminPrincipal, require_scope
from cure.auth.principals import Principal
from cure.auth.scopes import LOGS_WRITE, ORDERS_READ
from cure.kit.dependencies import SessionDep, SessionmakerDep, SettingsDep
from cure.kit.errors import BadRequest
from cure.kit.schemas import error_responses
from cure.logs import service as log_service
from cure.logs.dependencies import PublisherDep, WaitersDep
from cure.logs.schemas import (
    LogBatchCreate,
    LogFilter,
    LogPage,
    LogRecordCreate,
    LogsAccepted,
    OrderLogPage,
)
from cure.logs.waiters import WaitSlot

router = APIRouter(tags=["logs"])

Writer = Annotated[Principal, Depends(require_scope(LOGS_WRITE))]
OrderReader = Annotated[Principal, Depends(require_scope(ORDERS_READ))]


@router.post(
    "/v1/logs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=LogsAccepted,
    responses=error_responses(401, 403, 404, 413, 422, 503),
)
async def write_logs(
    data: Annotated[LogRecordCreate | LogBatchCreate, Body()],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    publisher: PublisherDep,
    principal: Writer,
) -> LogsAccepted:
    """Queue one log record, or a batch as {"records": [...]}, for the log saver."""
    records = data.records if isinstance(data, LogBatchCreate) else [data]
    accepted = await log_service.ingest(
        session,
        settings,
        publisher,
        principal,
        records,
        client_host=request.client.host if request.client else None,
    )
    return LogsAccepted(accepted=accepted)


@router.get("/v1/logs", response_model=LogPage, responses=error_responses(401, 403, 422))
async def search_logs(
    session: SessionDep, _: AdminPrincipal, filters: Annotated[LogFilter, Query()]
) -> LogPage:
    """Every service's records, newest first (admins): by service, minimum level, order,
    customer, time range and text, paginated by cursor."""
    return await log_service.search(session, filters)


_SSE = "text/event-stream"
MAX_SEQ = 2**63 - 1  # a bigint


def _seq_of(last_event_id: str) -> int:
    """The seq a Last-Event-ID names (ASCII digits: str.isdigit() also admits '²', which int()
    refuses), or BadRequest."""
    if not (last_event_id.isascii() and last_event_id.isdigit()) or int(last_event_id) > MAX_SEQ:
        raise BadRequest("Last-Event-ID must be the id of an event sent: a record's seq")
    return int(last_event_id)


@router.get(
    "/v1/orders/{order_id}/logs",
    response_model=OrderLogPage,
    tags=["orders"],
    responses={
        **error_responses(400, 401, 403, 404, 422, 429),
        200: {
            "content": {_SSE: {"schema": {"type": "string"}}},
            "description": "The order's log; with Accept: text/event-stream, followed live",
        },
    },
)
async def get_order_logs(
    order_id: uuid.UUID,
    request: Request,
    sessionmaker: SessionmakerDep,
    waiters: WaitersDep,
    principal: OrderReader,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="only records after this seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    wait: Annotated[
        float, Query(ge=0, le=30, description="long polling: wait this long for new records")
    ] = 0,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> OrderLogPage | StreamingResponse:
    """The order's log: its pipeline's steps and its app's output, line by line. Follow it
    with ?after=<next_after>&wait=<seconds>, or as Server-Sent Events (Accept: text/event-stream).
    Long polls and event streams open at once are capped per customer (429 past the cap)."""
    if _SSE in request.headers.get("accept", ""):
        start = after if last_event_id is None else _seq_of(last_event_id)
        stream = await log_service.follow_order_log(
            sessionmaker, waiters, principal, order_id, after=start
        )
        return _EventStream(
            _events(stream.pages, request),
            stream.slot,
            media_type=_SSE,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return await log_service.order_log(
        sessionmaker, waiters, principal, order_id, after=after, limit=limit, wait=wait
    )


class _EventStream(StreamingResponse):
    """An event stream that gives its wait slot back however it ends, even unstarted."""

    def __init__(self, content: AsyncIterator[str], slot: WaitSlot, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()


async def _events(pages: AsyncIterator[OrderLogPage], request: Request) -> AsyncIterator[str]:
    async for page in pages:
        if await request.is_disconnected():
            return
        for record in page.records:
            yield f"id: {record.seq}\nevent: record\ndata: {record.model_dump_json()}\n\n"
        if not page.records:
            yield ": still running\n\n"
        if page.finished:
            end = json.dumps({"order_status": page.order_status, "next_after": page.next_after})
            yield f"event: end\ndata: {end}\n\n"
