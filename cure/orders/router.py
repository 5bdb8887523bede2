import uuid
from typing import Annotated

from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    Header,
    Path,
    Query,
    Request,
    Response,
    status,
)
from fastapi.responses import RedirectResponse

from cure.auth.dependencies import require_scope
from cure.auth.principals import Principal
from cure.auth.scopes import ORDERS_READ, ORDERS_WRITE
from cure.ccsi.dependencies import FederationDep
from cure.kit.dependencies import (
    ReadConnectionsDep,
    ReadSessionDep,
    SessionDep,
    SessionmakerDep,
    SettingsDep,
)
from cure.kit.routes import deprecated_alias
from cure.kit.schemas import error_responses
from cure.orders import service as order_service
from cure.orders.dependencies import ReadSessionmakerDep, RelayDep, ResolverDep
from cure.orders.models import Order, OrderEvent
from cure.orders.schemas import (
    DownloadLinkRead,
    OrderCreate,
    OrderEventRead,
    OrderFilter,
    OrderPage,
    OrderRead,
)
from cure.quicklooks import service as quicklook_service
from cure.quicklooks.dependencies import RendersDep
from cure.quicklooks.responses import png_response
from cure.quicklooks.schemas import PNG_RESPONSE, QuicklookRead
from cure.storage.dependencies import StorageDep

router = APIRouter(tags=["orders"])

Reader = Annotated[Principal, Depends(require_scope(ORDERS_READ))]
Writer = Annotated[Principal, Depends(require_scope(ORDERS_WRITE))]
Role = Annotated[str, Path(max_length=63)]


@router.post(
    "/v1/apps/{app_id}/orders",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OrderRead,
    responses=error_responses(401, 403, 404, 422, 429, 503),
)
async def submit_order(
    app_id: str,
    data: OrderCreate,
    relay: RelayDep,
    response: Response,
    background: BackgroundTasks,
    session: SessionDep,
    reads: ReadSessionmakerDep,
    settings: SettingsDep,
    principal: Writer,
    resolver: ResolverDep,
    sources: FederationDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            description="Repeat a submit safely: the same key and body return the same order",
        ),
    ] = None,
) -> Order:
    """Order an app for a region of interest and a period; follow it at the Location given."""
    # ``session`` connects at its first statement: submit uses it only after the slow checks.
    order, created = await order_service.submit(
        session,
        settings,
        principal,
        app_id=app_id,
        data=data,
        reads=reads,
        idempotency_key=idempotency_key,
        resolver=resolver,
        sources=sources,
    )
    response.headers["Location"] = f"/v1/orders/{order.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    if created and relay is not None:
        background.add_task(relay.wake_soon)  # runs after the commit; the relay also polls
    return order


@router.get("/v1/orders", response_model=OrderPage, responses=error_responses(401, 403, 422))
async def list_orders(
    session: ReadSessionDep, principal: Reader, filters: Annotated[OrderFilter, Query()]
) -> OrderPage:
    """The caller's orders (admins: everyone's), filtered, sorted and paginated by cursor."""
    return await order_service.list_orders(session, principal, filters)


@router.get(
    "/v1/orders/{order_id}", response_model=OrderRead, responses=error_responses(401, 403, 404)
)
async def get_order(
    order_id: uuid.UUID, connect: ReadConnectionsDep, principal: Reader
) -> OrderRead:
    """An order's status, history and, once it succeeded, its result."""
    return await order_service.status(connect, principal, order_id)


# The original CURE platform's name for an order's status: kept for old scripts, deprecated.
router.add_api_route(
    "/v1/services/order_status/{order_id}",
    get_order,
    methods=["GET"],
    response_model=OrderRead,
    include_in_schema=False,
    route_class_override=deprecated_alias("/v1/orders/{order_id}"),
)


@router.get(
    "/v1/orders/{order_id}/events",
    response_model=list[OrderEventRead],
    responses=error_responses(401, 403, 404),
)
async def get_order_events(
    order_id: uuid.UUID, session: ReadSessionDep, principal: Reader
) -> list[OrderEvent]:
    """Every transition and progress report of the order, oldest first."""
    return (await order_service.get(session, principal, order_id)).events


@router.post(
    "/v1/orders/{order_id}/cancel",
    response_model=OrderRead,
    responses=error_responses(401, 403, 404, 409),
)
async def cancel_order(order_id: uuid.UUID, session: SessionDep, principal: Writer) -> Order:
    """Cancel an order: a queued one never starts, a running one's container is stopped."""
    return await order_service.cancel(session, principal, order_id)


@router.get(
    "/v1/orders/{order_id}/result",
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    response_class=RedirectResponse,
    responses=error_responses(401, 403, 404, 409),
)
async def get_order_result(
    order_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    principal: Reader,
) -> RedirectResponse:
    """Redirect to an expiring link to the order's result file."""
    url = await order_service.result_link(session, settings, storage, principal, order_id)
    return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get(
    "/v1/orders/{order_id}/assets/{role}",
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    response_class=RedirectResponse,
    responses=error_responses(401, 403, 404, 409),
)
async def get_order_asset(
    order_id: uuid.UUID,
    role: Role,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    principal: Reader,
) -> RedirectResponse:
    """Redirect to an expiring link to one file of the order's result (see its ``assets``)."""
    url = await order_service.asset_link(session, settings, storage, principal, order_id, role)
    return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get(
    "/v1/orders/{order_id}/assets/{role}/download",
    response_model=DownloadLinkRead,
    responses=error_responses(401, 403, 404, 409),
)
async def order_download(
    order_id: uuid.UUID,
    role: Role,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    principal: Reader,
) -> DownloadLinkRead:
    """An expiring link that a browser saves as a file (for pages that hold the token in memory
    and cannot follow the asset's redirect with it)."""
    return await order_service.asset_download(session, settings, storage, principal, order_id, role)


@router.get(
    "/v1/orders/{order_id}/assets/{role}/quicklook",
    response_model=QuicklookRead,
    responses=error_responses(401, 403, 404, 409),
)
async def order_quicklook(
    order_id: uuid.UUID,
    role: Role,
    request: Request,
    sessionmaker: SessionmakerDep,
    storage: StorageDep,
    renders: RendersDep,
    principal: Reader,
) -> QuicklookRead:
    """How to draw a raster output on a web map: its PNG's link and WGS84 bounds, the colormap,
    a histogram and statistics. Rendered once, then kept in storage next to the asset."""
    raster = await order_service.asset_raster(sessionmaker, principal, order_id, role)
    return await quicklook_service.describe(storage, renders, raster, png=f"{request.url.path}.png")


@router.get(
    "/v1/orders/{order_id}/assets/{role}/quicklook.png",
    response_class=Response,
    responses={**PNG_RESPONSE, **error_responses(401, 403, 404, 409)},
)
async def order_quicklook_png(
    order_id: uuid.UUID,
    role: Role,
    sessionmaker: SessionmakerDep,
    storage: StorageDep,
    renders: RendersDep,
    principal: Reader,
) -> Response:
    """The quicklook image of a raster output (RGBA PNG in Web Mercator over its bounds)."""
    raster = await order_service.asset_raster(sessionmaker, principal, order_id, role)
    return png_response(await quicklook_service.quicklook_png(storage, renders, raster))
