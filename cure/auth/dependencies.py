import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import unquote_plus

from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlowPassword, OAuthFlows
from fastapi.security import HTTPBasic, HTTPBasicCredentials, OAuth2

from cure.auth import scopes as scope_rules
from cure.auth import service as auth_service
from cure.auth.exceptions import AdminOnly, InsufficientScope, InvalidToken, invalid_client
from cure.auth.passwords import PasswordHasher
from cure.auth.principals import Principal, PrincipalCache
from cure.auth.throttle import Throttle
from cure.kit.dependencies import SettingsDep, uses_database
from cure.kit.state import StateKey, state_of

_TOKEN_URL = "/v1/auth/token"  # noqa: S105 (a path)
_oauth2 = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl=_TOKEN_URL, scopes=scope_rules.DESCRIPTIONS
        ),
        password=OAuthFlowPassword(tokenUrl=_TOKEN_URL, scopes=scope_rules.DESCRIPTIONS),
    ),
    scheme_name="OAuth2",
    description="An access token from POST /v1/auth/token, sent as Authorization: Bearer <token>",
    auto_error=False,
)

# What the API process keeps for authentication (made in its lifespan): the password hasher's
# threads and, where enabled, the cache of recently authenticated tokens.
PASSWORD_HASHER = StateKey[PasswordHasher]("password hasher")
PRINCIPALS = StateKey[PrincipalCache[Principal]]("principal cache")


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@uses_database  # on a cache miss
async def current_principal(
    request: Request, authorization: Annotated[str | None, Security(_oauth2)]
) -> Principal:
    # Every authenticated request solves this: what it needs of the app comes from its state,
    # not from further dependencies (each one FastAPI solves costs more than reading it).
    token = bearer_token(authorization)
    if token is None:
        raise InvalidToken("an access token is required (Authorization: Bearer <token>)")
    state = state_of(request.app)
    cache = state.get(PRINCIPALS)
    if cache is not None and (known := cache.get(token)) is not None:
        return known
    # Read in a short session of its own, only when the cache cannot answer.
    async with state.db.sessionmaker() as session:
        return await auth_service.authenticate(session, state.settings, token, cache)


@uses_database  # a token that is sent is checked
async def optional_principal(
    request: Request, authorization: Annotated[str | None, Security(_oauth2)]
) -> Principal | None:
    """The caller, or None for an anonymous request; a token that is sent must be valid."""
    if authorization is None:
        return None
    return await current_principal(request, authorization)


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only tokens carrying ``scope`` (declared in the OpenAPI document)."""

    @uses_database  # as current_principal
    async def _check(
        request: Request,
        authorization: Annotated[str | None, Security(_oauth2, scopes=[scope])],
    ) -> Principal:
        # current_principal called, not declared: one dependency less for FastAPI to solve on
        # every request; the OpenAPI document gets the same requirement (OAuth2 with the scope).
        principal = await current_principal(request, authorization)
        if scope not in principal.scopes:
            raise InsufficientScope(scope)
        return principal

    return _check


async def _admin(
    principal: Annotated[Principal, Depends(require_scope(scope_rules.ADMIN))],
) -> Principal:
    if not principal.is_admin:
        raise AdminOnly("this request is for admins")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
AdminPrincipal = Annotated[Principal, Depends(_admin)]


class ClientBasic(HTTPBasic):
    """HTTP Basic client authentication (RFC 6749 section 2.3.1) whose failures are RFC-shaped."""

    async def __call__(self, request: Request) -> HTTPBasicCredentials | None:  # type: ignore[override]
        header = request.headers.get("Authorization")
        if not header:
            return None
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise invalid_client() from exc
        username, separator, password = decoded.partition(":")
        if not separator:
            raise invalid_client()
        # The credentials are form-urlencoded before base64 (RFC 6749 section 2.3.1).
        return HTTPBasicCredentials(
            username=unquote_plus(username), password=unquote_plus(password)
        )


client_basic = ClientBasic(auto_error=False, scheme_name="client_secret_basic")
BasicDep = Annotated[HTTPBasicCredentials | None, Security(client_basic)]


async def get_throttle(request: Request, settings: SettingsDep) -> Throttle:
    # Behind a proxy, run uvicorn with --forwarded-allow-ips so this is the real client address.
    address = request.client.host if request.client else "unknown"
    state = state_of(request.app)
    return Throttle(settings, address, state.db.side, state.need(PASSWORD_HASHER))


ThrottleDep = Annotated[Throttle, Depends(get_throttle)]
