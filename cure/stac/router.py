"""STAC API at /stac: HTTP only. Reads are public; a bearer token adds the caller's own products."""

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from cure.auth.dependencies import OptionalPrincipal
from cure.ccsi.dependencies import FederationDep, LocalSessionsDep
from cure.ccsi.federation import MISSING_HEADER
from cure.ccsi.reads import limit_anonymous_reads
from cure.kit.dependencies import SessionDep, SettingsDep
from cure.stac import service as stac_service
from cure.stac.exceptions import StacRoute
from cure.stac.schemas import ItemSearch, SearchBody
from cure.storage.dependencies import StorageDep

# Anonymous readers are limited per address (cure.ccsi.reads): every route may answer 429.
router = APIRouter(
    prefix=stac_service.PREFIX,
    tags=["STAC API"],
    route_class=StacRoute,
    dependencies=[Depends(limit_anonymous_reads)],
    responses={
        429: {"description": "Too many anonymous reads from this address: {code, description}"}
    },
)

GEOJSON = stac_service.GEOJSON
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A parameter the search cannot use: {code, description}"},
    401: {"description": "A token was sent and is not valid"},
}
_SEARCH_DOC: dict[str, Any] = {
    "parameters": [
        {"name": name, "in": "query", "required": False, "description": text, "schema": {}}
        for name, text in (
            ("bbox", "min_lon,min_lat,max_lon,max_lat (WGS84)"),
            ("intersects", "A GeoJSON geometry (as text) the items must intersect"),
            ("datetime", "An RFC 3339 instant or interval (a/b, ../b, a/..)"),
            ("collections", "Comma-separated collection ids"),
            ("ids", "Comma-separated item ids"),
            ("limit", f"Items per page (default 10, at most {500})"),
            ("token", "From a next link"),
        )
    ]
}


def _geojson(body: dict[str, Any], missing: tuple[str, ...] = ()) -> JSONResponse:
    headers = {"Vary": "Authorization"}
    if missing:
        headers[MISSING_HEADER] = ", ".join(missing)
    return JSONResponse(body, media_type=GEOJSON, headers=headers)


@router.get("")
async def landing_page(
    session: SessionDep, settings: SettingsDep, principal: OptionalPrincipal, sources: FederationDep
) -> dict[str, Any]:
    """The STAC API landing page: conformance, links to collections and search."""
    return await stac_service.landing_page(session, settings, principal, sources)


router.add_api_route("/", landing_page, methods=["GET"], include_in_schema=False)


@router.get("/conformance")
async def conformance() -> dict[str, Any]:
    """The conformance classes this API implements."""
    return stac_service.conformance()


@router.get("/collections", responses=_ERRORS)
async def collections(
    session: SessionDep, settings: SettingsDep, principal: OptionalPrincipal, sources: FederationDep
) -> dict[str, Any]:
    """The collections of the products the caller may see, and those the sources hold."""
    return await stac_service.collections(session, settings, principal, sources)


@router.get("/collections/{collection_id}", responses=_ERRORS)
async def collection(
    collection_id: str,
    session: SessionDep,
    settings: SettingsDep,
    principal: OptionalPrincipal,
    sources: FederationDep,
) -> dict[str, Any]:
    """One collection, with its extent (a collection only sources hold: theirs, not known)."""
    return await stac_service.collection(session, settings, principal, collection_id, sources)


@router.get(
    "/collections/{collection_id}/items",
    response_class=JSONResponse,
    responses=_ERRORS,
    openapi_extra={
        "parameters": [
            p
            for p in _SEARCH_DOC["parameters"]
            if p["name"] in ("bbox", "datetime", "limit", "token")
        ]
    },
)
async def items(
    collection_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    principal: OptionalPrincipal,
    sources: FederationDep,
    local_sessions: LocalSessionsDep,
) -> JSONResponse:
    """The collection's items the caller may see (and the enabled sources'), filtered by bbox and
    datetime, paged."""
    async with local_sessions() as short:  # no connection held while sources are asked
        await stac_service.check_collection_visible(short, principal, collection_id, sources)
    query = ItemSearch.of_query(request.query_params.multi_items(), collection=collection_id)
    url = f"{stac_service.base_url(settings)}/collections/{collection_id}/items"
    page, missing = await stac_service.search(
        session,
        settings,
        storage,
        principal,
        query,
        url=url,
        method="GET",
        sources=sources,
        sessions=local_sessions,
    )
    return _geojson(page, missing)


@router.get("/collections/{collection_id}/items/{item_id}", responses=_ERRORS)
async def item(
    collection_id: str,
    item_id: str,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    principal: OptionalPrincipal,
    sources: FederationDep,
    local_sessions: LocalSessionsDep,
) -> JSONResponse:
    """One item, with expiring links to its assets: a local one, or an enabled source's."""
    found = await stac_service.get_item(
        session,
        settings,
        storage,
        principal,
        collection_id=collection_id,
        item_id=item_id,
        sources=sources,
        sessions=local_sessions,
    )
    return _geojson(found)


@router.get("/search", response_class=JSONResponse, responses=_ERRORS, openapi_extra=_SEARCH_DOC)
async def search_get(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    principal: OptionalPrincipal,
    sources: FederationDep,
    local_sessions: LocalSessionsDep,
) -> JSONResponse:
    """Search items across collections by bbox or intersects, datetime, collections and ids, in
    the local catalogue and every enabled source (those that did not answer are named in the
    CURE-Sources-Missing header and cure:sources_missing)."""
    query = ItemSearch.of_query(request.query_params.multi_items())
    url = f"{stac_service.base_url(settings)}/search"
    page, missing = await stac_service.search(
        session,
        settings,
        storage,
        principal,
        query,
        url=url,
        method="GET",
        sources=sources,
        sessions=local_sessions,
    )
    return _geojson(page, missing)


@router.post("/search", response_class=JSONResponse, responses=_ERRORS)
async def search_post(
    body: SearchBody,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    principal: OptionalPrincipal,
    sources: FederationDep,
    local_sessions: LocalSessionsDep,
) -> JSONResponse:
    """The same search with a JSON body; the next link carries the body to post."""
    query = ItemSearch.of_body(body)
    url = f"{stac_service.base_url(settings)}/search"
    page, missing = await stac_service.search(
        session,
        settings,
        storage,
        principal,
        query,
        url=url,
        method="POST",
        sources=sources,
        sessions=local_sessions,
    )
    return _geojson(page, missing)
