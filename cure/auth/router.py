from typing import Annotated
from urllib.parse import unquote_plus

from fastapi import APIRouter, Depends, Form
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from cure.auth import service as auth_service
from cure.auth.exceptions import OAuthError
from cure.auth.schemas import OAuthErrorRead, TokenRead
from cure.config import Settings, get_settings
from cure.kit.db import SessionDep

router = APIRouter(prefix="/v1/auth", tags=["auth"])
_basic = HTTPBasic(auto_error=False)


@router.post(
    "/token",
    response_model=TokenRead,
    responses={400: {"model": OAuthErrorRead}, 401: {"model": OAuthErrorRead}},
)
async def token(
    session: SessionDep,
    settings: Annotated[Settings, Depends(get_settings)],
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    grant_type: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
) -> JSONResponse:
    """Issue an access token (RFC 6749): client credentials by HTTP Basic or form fields."""
    if basic is not None and client_id is not None:
        raise OAuthError("invalid_request", "use one client authentication method, not two")
    if basic is not None:
        # RFC 6749 2.3.1: the Basic credentials are form-urlencoded before base64.
        client_id, client_secret = unquote_plus(basic.username), unquote_plus(basic.password)
    issued = await auth_service.issue_token(
        session,
        settings,
        grant_type=grant_type,
        client_id=client_id,
        client_secret=client_secret,
        scope=scope,
    )
    return JSONResponse(
        issued.model_dump(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )
