from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request, Response, status
from fastapi.responses import JSONResponse

from cure.auth import service as auth_service
from cure.auth import tokens
from cure.auth.dependencies import (
    BasicDep,
    ThrottleDep,
    bearer_token,
)
from cure.auth.exceptions import OAuthError, invalid_client
from cure.auth.principals import Principal
from cure.auth.schemas import (
    IntrospectionRead,
    JwksRead,
    LoginCreate,
    OAuthErrorRead,
    PasswordResetConfirm,
    PasswordResetCreate,
    PasswordResetRequested,
    TokenRead,
)
from cure.auth.scopes import ADMIN
from cure.auth.service import ClientCredentials
from cure.kit.dependencies import SessionDep, SettingsDep
from cure.kit.routes import deprecated_alias
from cure.kit.schemas import error_responses

router = APIRouter(prefix="/v1/auth", tags=["auth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_oauth_errors: dict[int | str, dict[str, object]] = {
    400: {"model": OAuthErrorRead},
    401: {"model": OAuthErrorRead},
    429: {"model": OAuthErrorRead},
}
FormField = Annotated[str | None, Form()]


async def _single_valued(request: Request, *names: str) -> None:
    """RFC 6749 section 3.2: request parameters must not be included more than once; and none
    may hold a NUL character (PostgreSQL text cannot)."""
    form = await request.form()
    repeated = [name for name in names if len(form.getlist(name)) > 1]
    if repeated:
        raise OAuthError("invalid_request", f"repeated parameter: {', '.join(repeated)}")
    if any(isinstance(value, str) and "\x00" in value for value in form.values()):
        raise OAuthError("invalid_request", "parameters must not contain NUL characters")


def _client_credentials(
    basic: BasicDep, client_id: str | None, client_secret: str | None
) -> ClientCredentials:
    if basic is not None:
        if "\x00" in basic.username or "\x00" in basic.password:
            raise invalid_client()
        if client_id is not None or client_secret is not None:
            raise OAuthError("invalid_request", "use one client authentication method, not two")
        return ClientCredentials(basic.username, basic.password)
    return ClientCredentials(client_id, client_secret)


def _token_response(issued: TokenRead) -> JSONResponse:
    return JSONResponse(issued.model_dump(exclude_none=True), headers=NO_STORE)


@router.post("/token", response_model=TokenRead, responses=_oauth_errors)
async def token(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    throttle: ThrottleDep,
    basic: BasicDep,
    grant_type: FormField = None,
    client_id: FormField = None,
    client_secret: FormField = None,
    scope: FormField = None,
    username: FormField = None,
    password: FormField = None,
    refresh_token: FormField = None,
) -> JSONResponse:
    """Issue tokens (RFC 6749): client_credentials, password and refresh_token grants.

    Confidential clients authenticate by HTTP Basic or client_id/client_secret form fields; the
    first-party public client (`cure-portal`, no secret) may use the password and refresh grants.
    Refresh tokens rotate: each use returns a new one, and reusing an old one revokes them all.
    """
    await _single_valued(
        request,
        "grant_type",
        "client_id",
        "client_secret",
        "scope",
        "username",
        "password",
        "refresh_token",
    )
    issued = await auth_service.issue_token(
        session,
        settings,
        throttle,
        grant_type=grant_type,
        credentials=_client_credentials(basic, client_id, client_secret),
        scope=scope,
        username=username,
        password=password,
        refresh_token=refresh_token,
    )
    return _token_response(issued)


# The original CURE platform's name for the token endpoint: kept for old scripts, deprecated.
router.add_api_route(
    "/get_bearer_token",
    token,
    methods=["POST"],
    response_model=TokenRead,
    include_in_schema=False,
    route_class_override=deprecated_alias("/v1/auth/token"),
)


@router.post(
    "/login", response_model=TokenRead, responses={**_oauth_errors, **error_responses(422)}
)
async def login(
    data: LoginCreate, session: SessionDep, settings: SettingsDep, throttle: ThrottleDep
) -> JSONResponse:
    """Log in with email and password (the portal's password grant, as JSON)."""
    issued = await auth_service.issue_token(
        session,
        settings,
        throttle,
        grant_type="password",
        credentials=ClientCredentials(settings.first_party_client_id),
        scope=data.scope,
        username=data.email,
        password=data.password,
    )
    return _token_response(issued)


async def _caller(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    throttle: ThrottleDep,
    basic: BasicDep,
    client_id: str | None,
    client_secret: str | None,
) -> Principal:
    """Who asks to introspect: a confidential client, or the holder of a valid access token."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is not None:
        return await auth_service.authenticate(session, settings, token)
    client = await auth_service.authenticate_client(
        session,
        settings,
        throttle,
        _client_credentials(basic, client_id, client_secret),
        allow_public=False,
    )
    assert client.customer is not None
    scopes = frozenset(auth_service.client_scopes(client.client, client.customer))
    is_admin = client.customer.is_admin and ADMIN in scopes
    return Principal(client.customer.id, client.client_id, scopes, is_admin)


@router.post("/introspect", response_model=IntrospectionRead, responses=_oauth_errors)
async def introspect(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    throttle: ThrottleDep,
    basic: BasicDep,
    token: FormField = None,
    token_type_hint: FormField = None,
    client_id: FormField = None,
    client_secret: FormField = None,
) -> JSONResponse:
    """Token introspection (RFC 7662): the caller authenticates as a client or with a bearer token.

    Answers `{"active": false}` alone for expired, revoked, malformed or foreign tokens; admins may
    introspect any customer's tokens, others only their own.
    """
    await _single_valued(request, "token", "token_type_hint", "client_id", "client_secret")
    caller = await _caller(request, session, settings, throttle, basic, client_id, client_secret)
    if not token:
        raise OAuthError("invalid_request", "token is required")
    answer = await auth_service.introspect(session, settings, caller, token=token)
    return JSONResponse(answer, headers=NO_STORE)


@router.post("/revoke", responses=_oauth_errors)
async def revoke(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    throttle: ThrottleDep,
    basic: BasicDep,
    token: FormField = None,
    token_type_hint: FormField = None,
    client_id: FormField = None,
    client_secret: FormField = None,
) -> Response:
    """Token revocation (RFC 7009): an access token stops working at once; a refresh token ends
    its whole login (every rotated refresh token and the access tokens issued with them).
    Answers 200 also for unknown or expired tokens."""
    await _single_valued(request, "token", "token_type_hint", "client_id", "client_secret")
    client = await auth_service.authenticate_client(
        session,
        settings,
        throttle,
        _client_credentials(basic, client_id, client_secret),
        allow_public=True,
    )
    if not token:
        raise OAuthError("invalid_request", "token is required")
    await auth_service.revoke(session, settings, client, token=token)
    return Response(status_code=status.HTTP_200_OK, headers=NO_STORE)


@router.get("/jwks.json", response_model=JwksRead)
async def jwks(settings: SettingsDep) -> JwksRead:
    """The public keys that verify access tokens (RS* algorithms); empty for HS*, whose key is secret."""
    return JwksRead.model_validate(tokens.jwks(settings))


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PasswordResetRequested,
    responses=error_responses(422, 429),
)
async def request_password_reset(
    data: PasswordResetCreate,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    throttle: ThrottleDep,
) -> PasswordResetRequested:
    """Email a single-use reset token; the answer is the same whether the account exists or not."""
    mail = await auth_service.request_password_reset(session, settings, throttle, email=data.email)
    if mail is not None:
        # After the response (so timing tells nothing) and after the commit (so the token exists).
        background.add_task(auth_service.send_reset_email, settings, mail)
    return PasswordResetRequested(
        detail="if an account has this email, a message with a reset token is on its way"
    )


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(400, 422, 429),
)
async def confirm_password_reset(
    data: PasswordResetConfirm, session: SessionDep, settings: SettingsDep, throttle: ThrottleDep
) -> Response:
    """Set a new password with a mailed reset token; ends every refresh token of the account."""
    await auth_service.confirm_password_reset(
        session, settings, throttle, token=data.token, new_password=data.new_password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
