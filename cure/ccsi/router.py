from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from cure.auth.dependencies import AdminPrincipal, OptionalPrincipal
from cure.ccsi import federation, opensearch
from cure.ccsi import service as ccsi_service
from cure.ccsi.dependencies import FederationDep, LocalSessionsDep, SearchQueryDep
from cure.ccsi.opensearch import ATOM_TYPE, DESCRIPTION_TYPE, GEOJSON_TYPE, SEARCH_PARAMETERS
from cure.ccsi.reads import limit_anonymous_reads
from cure.ccsi.schemas import CollectionList, ProductCreate, ProductRead, SearchQuery
from cure.config import Settings
from cure.kit.db import utcnow
from cure.kit.dependencies import SessionDep, SessionmakerDep, SettingsDep
from cure.kit.schemas import error_responses
from cure.quicklooks import service as quicklook_service
from cure.quicklooks.dependencies import RendersDep
from cure.quicklooks.responses import png_response
from cure.quicklooks.schemas import PNG_RESPONSE, QuicklookRead
from cure.storage.dependencies import StorageDep

# Anonymous readers are limited per address (cure.ccsi.reads): every route may answer 429.
router = APIRouter(
    prefix="/v1/ccsi",
    tags=["catalogue"],
    dependencies=[Depends(limit_anonymous_reads)],
    responses=error_responses(429),
)
AssetKey = Annotated[str, PathParam(max_length=63)]


def _search_doc(*, in_path: bool) -> dict[str, Any]:
    """The OpenSearch parameters for the OpenAPI document (they are parsed by hand, see
    ``search_query``, so FastAPI does not list them itself)."""
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "query", "required": False, "description": title, "schema": {}}
        for name, _, title in SEARCH_PARAMETERS
        if not (in_path and name == "collection")
    ]
    parameters.append(
        {
            "name": "format",
            "in": "query",
            "required": False,
            "description": "json or atom; without it, the Accept header decides (default json)",
            "schema": {"type": "string", "enum": ["json", "atom"]},
        }
    )
    if in_path:
        parameters.insert(
            0,
            {
                "name": "collection",
                "in": "path",
                "required": True,
                "description": "The collection to search",
                "schema": {"type": "string"},
            },
        )
    return {"parameters": parameters}


_SEARCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One page of results",
        "content": {GEOJSON_TYPE: {}, ATOM_TYPE: {}},
    },
    **error_responses(400, 401),
}


def _catalogue_url(settings: Settings) -> str:
    return f"{settings.public_url.rstrip('/')}{router.prefix}"


def _preference(accept: str, media_type: str) -> tuple[float, int]:
    """How much an Accept header wants a media type: (q, how specific the matching range is)."""
    best = (0.0, -1)
    kind = media_type.split("/")[0]
    for item in accept.split(","):
        media_range, *params = (part.strip() for part in item.split(";"))
        specificity = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(media_range.lower())
        if specificity is None:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if specificity > best[1]:
            best = (q, specificity)
    return best


def _wants_atom(query: SearchQuery, accept: str | None) -> bool:
    if query.format is not None:
        return query.format == "atom"
    if not accept:
        return False
    atom = _preference(accept, ATOM_TYPE)
    geojson = max(_preference(accept, GEOJSON_TYPE), _preference(accept, "application/json"))
    return atom[0] > 0 and atom > geojson


@router.get(
    "/description.xml",
    response_class=Response,
    responses={200: {"content": {DESCRIPTION_TYPE: {}}, "description": "OpenSearch 1.1"}},
)
async def description(
    session: SessionDep,
    settings: SettingsDep,
    principal: OptionalPrincipal,
    sources: FederationDep,
) -> Response:
    """The OpenSearch description document: parameters, URL templates, collections (local, and
    those the enabled sources map)."""
    collections = await federation.collection_names(sources, session, principal)
    body = opensearch.description_document(
        base_url=_catalogue_url(settings), collections=collections
    )
    return Response(body, media_type=DESCRIPTION_TYPE)


async def _search(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    principal: OptionalPrincipal,
    query: SearchQueryDep,
    sources: FederationDep,
    local_sessions: LocalSessionsDep,
) -> Response:
    found = await federation.search(
        sources, session, settings, storage, principal, query, sessions=local_sessions
    )
    base = _catalogue_url(settings)
    path = f"/{query.collection}/search" if "collection" in request.path_params else "/search"
    urls = {"search_url": f"{base}{path}", "description_url": f"{base}/description.xml"}
    headers = {"Vary": "Accept, Authorization"}
    if found.missing:
        headers[federation.MISSING_HEADER] = ", ".join(found.missing)
    if _wants_atom(query, request.headers.get("accept")):
        feed = opensearch.atom_feed(
            found.items,
            total=found.total,
            more=found.more,
            query=query,
            updated=utcnow(),
            missing=found.missing,
            **urls,
        )
        return Response(feed, media_type=ATOM_TYPE, headers=headers)
    page = opensearch.geojson_page(
        found.items, total=found.total, more=found.more, query=query, missing=found.missing, **urls
    )
    return JSONResponse(page, media_type=GEOJSON_TYPE, headers=headers)


router.add_api_route(
    "/search",
    _search,
    methods=["GET"],
    response_class=Response,
    responses=_SEARCH_RESPONSES,
    openapi_extra=_search_doc(in_path=False),
    name="search",
    summary="Search all collections",
    description="Products by area, time, type and cloud cover (OpenSearch; GeoJSON or Atom), "
    "from the local catalogue and every enabled remote source. Anonymous callers see public "
    "products and the sources' products; a customer also sees its own. Sources that did not "
    f"answer are named in the {federation.MISSING_HEADER} header (and sourcesMissing).",
)
router.add_api_route(
    "/{collection}/search",
    _search,
    methods=["GET"],
    response_class=Response,
    responses=_SEARCH_RESPONSES,
    openapi_extra=_search_doc(in_path=True),
    name="search_collection",
    summary="Search one collection",
    description="The same search as /v1/ccsi/search, limited to one collection.",
)


@router.get("/collections", response_model=CollectionList, responses=error_responses(401))
async def list_collections(session: SessionDep, principal: OptionalPrincipal) -> CollectionList:
    """The collections of the products the caller may see, with their extents."""
    return await ccsi_service.collections(session, principal)


@router.get(
    "/{collection}/products/{identifier}",
    response_model=ProductRead,
    responses=error_responses(400, 401, 404),
)
async def get_product(
    collection: str,
    identifier: str,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    principal: OptionalPrincipal,
) -> ProductRead:
    """A product the caller may see, with expiring links to its assets."""
    return await ccsi_service.get(
        session, settings, storage, principal, collection=collection, identifier=identifier
    )


@router.post(
    "/{collection}/products",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductRead,
    responses=error_responses(400, 401, 403, 409, 422),
)
async def register_product(
    collection: str,
    data: ProductCreate,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    _: AdminPrincipal,
) -> ProductRead:
    """Register an input product in a collection (admins)."""
    product = await ccsi_service.register(session, collection=collection, data=data)
    response.headers["Location"] = f"{router.prefix}/{collection}/products/{data.identifier}"
    return await ccsi_service.to_read(product, settings=settings, storage=storage)


@router.delete(
    "/{collection}/products/{identifier}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(400, 401, 403, 404),
)
async def remove_product(
    collection: str, identifier: str, session: SessionDep, _: AdminPrincipal
) -> Response:
    """Remove a product from the catalogue (admins); its files are left where they are."""
    await ccsi_service.remove(session, collection=collection, identifier=identifier)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{collection}/products/{identifier}/publish",
    response_model=ProductRead,
    responses=error_responses(400, 401, 403, 404),
)
async def publish_product(
    collection: str,
    identifier: str,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    admin: AdminPrincipal,
) -> ProductRead:
    """Make a product CURE generated visible to everyone (admins)."""
    product = await ccsi_service.publish(session, collection=collection, identifier=identifier)
    viewer = ccsi_service.viewer_of(admin)
    return await ccsi_service.to_read(product, settings=settings, storage=storage, viewer=viewer)


@router.get(
    "/{collection}/products/{identifier}/assets/{asset}/quicklook",
    response_model=QuicklookRead,
    responses=error_responses(400, 401, 404),
)
async def product_quicklook(
    collection: str,
    identifier: str,
    asset: AssetKey,
    request: Request,
    sessionmaker: SessionmakerDep,
    storage: StorageDep,
    renders: RendersDep,
    principal: OptionalPrincipal,
) -> QuicklookRead:
    """How to draw a raster asset of a product you may see on a web map (see the order's)."""
    raster = await ccsi_service.asset_raster(
        sessionmaker, principal, collection=collection, identifier=identifier, asset=asset
    )
    return await quicklook_service.describe(storage, renders, raster, png=f"{request.url.path}.png")


@router.get(
    "/{collection}/products/{identifier}/assets/{asset}/quicklook.png",
    response_class=Response,
    responses={**PNG_RESPONSE, **error_responses(400, 401, 404)},
)
async def product_quicklook_png(
    collection: str,
    identifier: str,
    asset: AssetKey,
    sessionmaker: SessionmakerDep,
    storage: StorageDep,
    renders: RendersDep,
    principal: OptionalPrincipal,
) -> Response:
    """The quicklook image of a product's raster asset."""
    raster = await ccsi_service.asset_raster(
        sessionmaker, principal, collection=collection, identifier=identifier, asset=asset
    )
    return png_response(await quicklook_service.quicklook_png(storage, renders, raster))
