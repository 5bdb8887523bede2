"""``/v1/ccsi/sources``: the remote catalogues the CCSI searches beside its own (admins only).

Answers show each source's document with its stored secrets as ``"**********"``, never their
values. ``POST /v1/ccsi/sources/{name}/check`` runs ``cure.ccsi.sources.check``.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from cure.auth.dependencies import AdminPrincipal
from cure.ccsi.sources import check as source_check
from cure.ccsi.sources import service as source_service
from cure.ccsi.sources.dependencies import RegistryRefreshDep
from cure.ccsi.sources.schemas import SOURCE_NAME_PATTERN, SourceDocument, SourceList, SourceRead
from cure.kit.dependencies import SessionDep, SessionmakerDep, SettingsDep
from cure.kit.schemas import error_responses

router = APIRouter(prefix="/v1/ccsi/sources", tags=["catalogue sources"])

SourceName = Annotated[
    str, Path(max_length=63, pattern=SOURCE_NAME_PATTERN, description="The source's name")
]


@router.get("", response_model=SourceList, responses=error_responses(401, 403))
async def list_sources(session: SessionDep, _admin: AdminPrincipal) -> SourceList:
    """Every catalogue source, enabled or not, by name (admins; secrets never shown)."""
    return SourceList(sources=await source_service.list_sources(session))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SourceRead,
    responses=error_responses(401, 403, 409, 422),
)
async def add_source(
    document: SourceDocument,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    refresh: RegistryRefreshDep,
    _admin: AdminPrincipal,
) -> SourceRead:
    """Add a remote STAC or OpenSearch catalogue as a source (admins). Inline secrets are
    stored encrypted; a source of that name already there is a 409 (replace it with PUT)."""
    added = await source_service.add(session, settings, document, after_commit=refresh)
    response.headers["Location"] = f"{router.prefix}/{added.name}"
    return added


@router.get("/{name}", response_model=SourceRead, responses=error_responses(401, 403, 404, 422))
async def get_source(name: SourceName, session: SessionDep, _admin: AdminPrincipal) -> SourceRead:
    """One catalogue source (admins; secrets never shown)."""
    return await source_service.get(session, name)


@router.put(
    "/{name}",
    response_model=SourceRead,
    responses={201: {"model": SourceRead}, **error_responses(401, 403, 409, 422)},
)
async def put_source(
    name: SourceName,
    document: SourceDocument,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    refresh: RegistryRefreshDep,
    _admin: AdminPrincipal,
) -> SourceRead:
    """Replace a catalogue source, or add it (201) (admins). A secret sent as "**********" keeps
    the one stored; every process uses the new version from its next search on."""
    found, added = await source_service.put(session, settings, name, document, after_commit=refresh)
    if added:
        response.status_code = status.HTTP_201_CREATED
    return found


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 403, 404, 422),
)
async def remove_source(
    name: SourceName, session: SessionDep, refresh: RegistryRefreshDep, _admin: AdminPrincipal
) -> Response:
    """Remove a catalogue source and its stored secrets (admins)."""
    await source_service.remove(session, name, after_commit=refresh)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{name}/enable", response_model=SourceRead, responses=error_responses(401, 403, 404, 422)
)
async def enable_source(
    name: SourceName, session: SessionDep, refresh: RegistryRefreshDep, _admin: AdminPrincipal
) -> SourceRead:
    """Search this source again (admins)."""
    return await source_service.set_enabled(session, name, enabled=True, after_commit=refresh)


@router.post(
    "/{name}/disable", response_model=SourceRead, responses=error_responses(401, 403, 404, 422)
)
async def disable_source(
    name: SourceName, session: SessionDep, refresh: RegistryRefreshDep, _admin: AdminPrincipal
) -> SourceRead:
    """Stop searching and staging from this source, keeping its document (admins)."""
    return await source_service.set_enabled(session, name, enabled=False, after_commit=refresh)


@router.post(
    "/{name}/check",
    response_model=source_check.SourceCheck,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def check_source(
    name: SourceName,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    _admin: AdminPrincipal,
    request: source_check.CheckRequest | None = None,
) -> source_check.SourceCheck:
    """Check a source, enabled or not (admins): reachability, conformance, and the items of each
    mapped collection over the body's bbox and period (the newest read as CURE reads it). A
    source that fails the check is still a 200 whose problems say why."""
    async with sessionmaker() as session:  # no connection held while the source is called
        (source,), _ = await source_check.load(session, settings, name)
    (result,) = await source_check.check_all([source], request or source_check.CheckRequest())
    return result
