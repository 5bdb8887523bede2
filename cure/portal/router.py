"""The portal over HTTP: the built single-page app at /portal (with a strict content security
policy), its cookie sessions, storylines and what the order form needs. (Quicklooks and download
links are routes of the orders and the catalogue.)"""

import asyncio
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from cure.auth.dependencies import ThrottleDep, bearer_token
from cure.auth.exceptions import OAuthError
from cure.ccsi.reads import limit_anonymous_reads
from cure.config import Settings
from cure.kit.dependencies import SessionDep, SessionmakerDep, SettingsDep
from cure.kit.errors import InvalidInput, NotFound, error_body
from cure.kit.geo import parse_bbox
from cure.kit.schemas import error_responses
from cure.portal import basemap
from cure.portal import service as portal_service
from cure.portal.exceptions import CsrfRejected, PortalNotBuilt
from cure.portal.schemas import (
    AvailableDatesRead,
    PlaceRead,
    PortalConfigRead,
    SessionCreate,
    SessionRead,
    StorylineRead,
    StorylineSummary,
)
from cure.portal.service import CSRF_COOKIE, CSRF_HEADER, REFRESH_COOKIE, SESSION_PATH
from cure.storage.dependencies import StorageDep

router = APIRouter()
PORTAL = "/v1/portal"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


# -- the single-page app -------------------------------------------------------------------------


def _tile_origin(tile_url: str | None) -> str:
    """The origin of the base map's tiles for the CSP, a {s} subdomain as a wildcard."""
    if not tile_url:
        return ""
    parts = urlsplit(tile_url)
    return f" {parts.scheme}://{parts.netloc.replace('{s}', '*')}"


def content_security_policy(settings: Settings) -> str:
    """Scripts, styles and everything else only from CURE itself: no inline script or style, no
    CDN. Images may also be blob: (quicklooks fetched with the access token) and data: (the map
    library's icons), and tiles of the configured base map."""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' blob: data:{_tile_origin(settings.portal_tile_url)}",
            "connect-src 'self'",
            "font-src 'self'",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )


def _page_headers(settings: Settings, *, cache: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": cache,
    }


@router.get("/portal", include_in_schema=False)
async def portal_root() -> RedirectResponse:
    return RedirectResponse("/portal/", status_code=status.HTTP_308_PERMANENT_REDIRECT)


@router.get("/portal/{path:path}", include_in_schema=False)
async def portal_file(path: str, settings: SettingsDep) -> FileResponse:
    """The built portal (portal/dist); index.html for the page itself."""
    root = settings.portal_dir.resolve()
    index = root / "index.html"
    if not index.is_file():
        raise PortalNotBuilt(
            "the portal is not built: run scripts/run, or npm ci && npm run build in portal/"
        )
    target = (root / path).resolve() if path else index
    if not target.is_relative_to(root) or not target.is_file():
        raise NotFound(f"no file {path!r} in the portal")
    # Vite names built assets by their content: they never change, so they may be kept for good.
    immutable = target.parent.name == "assets" and target.parent.parent == root
    cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
    return FileResponse(target, headers=_page_headers(settings, cache=cache))


# -- sessions ------------------------------------------------------------------------------------


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _check_same_origin(request: Request, settings: Settings) -> None:
    """Browsers say where a request comes from: only CURE's own pages may use the session."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        raise CsrfRejected("session requests must come from the portal's own pages")
    origin = request.headers.get("origin")
    if origin is not None and origin.lower() not in {
        _origin(settings.public_url),
        _origin(str(request.base_url)),
    }:
        raise CsrfRejected("session requests must come from the portal's own origin")


def _set_cookies(response: Response, settings: Settings, session: portal_service.Session) -> None:
    age = settings.refresh_token_ttl_seconds
    # Secure: browsers keep it on https, and on http://127.0.0.1 and localhost, which they trust.
    response.set_cookie(
        REFRESH_COOKIE,
        session.refresh_token,
        max_age=age,
        path=SESSION_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )
    response.set_cookie(
        CSRF_COOKIE, session.csrf_token, max_age=age, path="/", secure=True, samesite="strict"
    )


def _clear_cookies(response: Response) -> None:
    response.delete_cookie(
        REFRESH_COOKIE, path=SESSION_PATH, secure=True, httponly=True, samesite="strict"
    )
    response.delete_cookie(CSRF_COOKIE, path="/", secure=True, samesite="strict")


def _session_response(settings: Settings, session: portal_service.Session) -> JSONResponse:
    response = JSONResponse(session.access.model_dump(), headers=NO_STORE)
    _set_cookies(response, settings, session)
    return response


def _session_ended(message: str) -> JSONResponse:
    response = JSONResponse(
        error_body("SessionMissing", message),
        status_code=status.HTTP_401_UNAUTHORIZED,
        headers=NO_STORE,
    )
    _clear_cookies(response)
    return response


@router.post(
    PORTAL + "/session",
    tags=["portal"],
    response_model=SessionRead,
    responses=error_responses(400, 403, 422, 429),
)
async def log_in(
    data: SessionCreate,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    throttle: ThrottleDep,
) -> JSONResponse:
    """Log in to the portal: the access token in the answer (keep it in memory), the refresh
    token in an HttpOnly, Secure, SameSite=Strict cookie for the session path only, and its CSRF
    token in a cookie the page reads."""
    _check_same_origin(request, settings)
    try:
        login = await portal_service.log_in(
            session, settings, throttle, email=data.email, password=data.password
        )
    except OAuthError as exc:
        if exc.status_code != 400:
            raise
        return JSONResponse(
            error_body("LoginFailed", exc.message), status_code=400, headers=NO_STORE
        )
    return _session_response(settings, login)


@router.post(
    PORTAL + "/session/refresh",
    tags=["portal"],
    response_model=SessionRead,
    responses=error_responses(401, 403, 429),
)
async def refresh_session(
    request: Request, session: SessionDep, settings: SettingsDep, throttle: ThrottleDep
) -> JSONResponse:
    """A new access token from the refresh cookie, which rotates. Send the CSRF cookie's value
    in the X-CSRF-Token header; a refresh token used twice ends the whole login."""
    _check_same_origin(request, settings)
    refresh_token = request.cookies.get(REFRESH_COOKIE)
    if not refresh_token:
        return _session_ended("no portal session; log in")
    if not portal_service.csrf_matches(settings, refresh_token, request.headers.get(CSRF_HEADER)):
        raise CsrfRejected(f"the {CSRF_HEADER} header does not match the session")
    try:
        renewed = await portal_service.refresh(
            session, settings, throttle, refresh_token=refresh_token
        )
    except OAuthError as exc:
        if exc.status_code != 400:
            raise
        return _session_ended("the session has ended; log in again")
    return _session_response(settings, renewed)


@router.delete(
    PORTAL + "/session",
    tags=["portal"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(403, 429),
)
async def log_out(
    request: Request, session: SessionDep, settings: SettingsDep, throttle: ThrottleDep
) -> Response:
    """Log out: the login's refresh tokens (and the access tokens issued with them) and the
    bearer token sent are revoked, and the cookies cleared."""
    _check_same_origin(request, settings)
    refresh_token = request.cookies.get(REFRESH_COOKIE)
    if refresh_token and not portal_service.csrf_matches(
        settings, refresh_token, request.headers.get(CSRF_HEADER)
    ):
        raise CsrfRejected(f"the {CSRF_HEADER} header does not match the session")
    await portal_service.log_out(
        session,
        settings,
        throttle,
        refresh_token=refresh_token,
        access_token=bearer_token(request.headers.get("Authorization")),
    )
    response = Response(status_code=status.HTTP_204_NO_CONTENT, headers=NO_STORE)
    _clear_cookies(response)
    return response


# -- what the page reads -------------------------------------------------------------------------


@router.get(PORTAL + "/config", tags=["portal"], response_model=PortalConfigRead)
async def portal_config(settings: SettingsDep) -> PortalConfigRead:
    """The maps' tiles (if on) and CURE's own basemap, and the client the portal logs in with."""
    tiles = settings.portal_tile_url is not None
    return PortalConfigRead(
        tile_url=settings.portal_tile_url,
        tile_attribution=settings.portal_tile_attribution if tiles else None,
        tile_attribution_url=settings.portal_tile_attribution_url if tiles else None,
        basemap_url=PORTAL + "/basemap",
        basemap_attribution=basemap.ATTRIBUTION,
        basemap_attribution_url=basemap.ATTRIBUTION_URL,
        client_id=settings.first_party_client_id,
    )


BASEMAP_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A GeoJSON FeatureCollection: features whose `kind` is sea, land, lake, "
        "river or border, in drawing order",
        "content": {"application/geo+json": {}},
    }
}


@router.get(
    PORTAL + "/basemap",
    tags=["portal"],
    response_class=Response,
    responses={**BASEMAP_RESPONSE, **error_responses(422, 429)},
    # Each new box costs the API a clip of the shorelines: counted like the catalogue's reads.
    dependencies=[Depends(limit_anonymous_reads)],
)
async def read_basemap(
    request: Request,
    bbox: Annotated[str, Query(max_length=200, description="west,south,east,north (WGS84)")],
) -> Response:
    """CURE's own light basemap of a box: sea, land, lakes, rivers and national borders (GSHHG
    and WDBII), clipped to the box and simplified to its scale (the box as about 2000 pixels
    across). The maps draw it where no tile server answers, or the tiles are off."""
    box = _bbox(bbox)
    if box is None or box[0] == box[2] or box[1] == box[3]:
        raise InvalidInput("bbox must have an extent on both axes", loc=("query", "bbox"))
    plain, packed = await asyncio.to_thread(basemap.served, box)
    headers = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type="application/geo+json", headers=headers)
    return Response(plain, media_type="application/geo+json", headers=headers)


@router.get(PORTAL + "/storylines", tags=["portal"], response_model=list[StorylineSummary])
async def list_storylines() -> list[StorylineSummary]:
    """The storylines, in the order the portal lists them."""
    return portal_service.list_storylines()


@router.get(
    PORTAL + "/storylines/{slug}",
    tags=["portal"],
    response_model=StorylineRead,
    responses=error_responses(404),
)
async def read_storyline(
    slug: Annotated[str, PathParam(max_length=63)],
    sessionmaker: SessionmakerDep,
    storage: StorageDep,
) -> StorylineRead:
    """A storyline: its text and widgets, and its demonstration products from the catalogue
    (with their statistics and quicklooks) once `cure portal prepare` has published them."""
    return await portal_service.read_storyline(sessionmaker, storage, slug)


@router.get(PORTAL + "/places", tags=["portal"], response_model=list[PlaceRead])
async def list_places(session: SessionDep) -> list[PlaceRead]:
    """Places the catalogue's public products are about (the demo cities), with their extents."""
    return await portal_service.places(session)


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    try:
        return parse_bbox(value)
    except ValueError as exc:
        raise InvalidInput(f"bbox {exc}", loc=("query", "bbox")) from None


@router.get(
    PORTAL + "/apps/{app_id}/dates",
    tags=["portal"],
    response_model=AvailableDatesRead,
    responses=error_responses(404, 422),
)
async def available_dates(
    app_id: Annotated[str, PathParam(max_length=63)],
    session: SessionDep,
    settings: SettingsDep,
    start: date | None = None,
    end: date | None = None,
    bbox: Annotated[str | None, Query(max_length=200, description="west,south,east,north")] = None,
) -> AvailableDatesRead:
    """The days (from start to end, at most ten years; by default the last ten years) on which
    the catalogue has the app's inputs over the box: what the order form's calendar marks."""
    end = end or date.today()
    try:
        start = start or end - timedelta(days=3652)
    except OverflowError:  # an end in the first ten years of the calendar
        raise InvalidInput("end is too early: give a start as well", loc=("query", "end")) from None
    if end < start or end - start > timedelta(days=3660):
        raise InvalidInput("end must follow start, by at most ten years", loc=("query", "end"))
    return await portal_service.available_dates(
        session, settings, app_id=app_id, bbox=_bbox(bbox), start=start, end=end
    )
