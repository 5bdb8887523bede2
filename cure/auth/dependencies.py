from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cure.auth import service as auth_service
from cure.auth.exceptions import InsufficientScope, InvalidToken
from cure.auth.service import Principal
from cure.config import Settings, get_settings
from cure.kit.db import SessionDep

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /v1/auth/token")


async def current_principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    session: SessionDep,
    settings: Annotated[Settings, Depends(get_settings)],
) -> Principal:
    if credentials is None:
        raise InvalidToken("an access token is required (Authorization: Bearer <token>)")
    return await auth_service.authenticate(session, settings, credentials.credentials)


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only tokens carrying ``scope``."""

    async def _check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if scope not in principal.scopes:
            raise InsufficientScope(scope)
        return principal

    return _check


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
