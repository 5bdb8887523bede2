"""Credentials and the access tokens they get: client credentials, or a password login whose
refresh token is used (and rotated) until it stops working."""

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from cure_client.errors import ApiError
from cure_client.models import Token

TOKEN_PATH = "/v1/auth/token"  # noqa: S105 (a path)
FIRST_PARTY_CLIENT = "cure-portal"
EARLY_SECONDS = 30  # renew a token this long before it expires


@dataclass
class ClientCredentials:
    """A confidential client (from registration or ``/v1/crm/customers/me/clients``)."""

    client_id: str
    client_secret: str
    scope: str | None = None


@dataclass
class PasswordLogin:
    """A person's login through the first-party public client; once logged in, the refresh token
    is enough (the password need not be kept)."""

    email: str
    password: str | None = None
    refresh_token: str | None = None
    client_id: str = FIRST_PARTY_CLIENT
    scope: str | None = None


Credentials = ClientCredentials | PasswordLogin


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        return ApiError(response.status_code, "HTTPError", response.text[:500])
    if isinstance(body, dict):
        name = body.get("error") or body.get("code") or body.get("title") or "HTTPError"
        detail = body.get("error_description") or body.get("detail") or body.get("description")
        return ApiError(response.status_code, str(name), detail)
    return ApiError(response.status_code, "HTTPError", body)


class TokenKeeper:
    """Holds the current access token and gets a new one shortly before it expires.

    ``on_refresh`` receives each new refresh token of a password login, so a caller can store it
    (each use returns a new one and the old one stops working)."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        on_refresh: Callable[[str], None] | None = None,
    ) -> None:
        self.credentials = credentials
        self.on_refresh = on_refresh
        self._token: Token | None = None
        self._expires_at = 0.0

    def forget(self) -> None:
        self._token = None

    def current(self) -> str | None:
        if self._token is None or time.monotonic() >= self._expires_at - EARLY_SECONDS:
            return None
        return self._token.access_token

    def _form(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        creds = self.credentials
        if isinstance(creds, ClientCredentials):
            form = {"grant_type": "client_credentials"}
            auth: tuple[str, str] | None = (creds.client_id, creds.client_secret)
        elif creds.refresh_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.refresh_token}
            form["client_id"], auth = creds.client_id, None
        elif creds.password:
            form = {"grant_type": "password", "username": creds.email, "password": creds.password}
            form["client_id"], auth = creds.client_id, None
        else:
            raise ApiError(401, "invalid_grant", "the login has expired: log in again")
        if creds.scope:
            form["scope"] = creds.scope
        return form, auth

    def accept(self, token: Token) -> Token:
        self._token = token
        self._expires_at = time.monotonic() + token.expires_in
        creds = self.credentials
        if isinstance(creds, PasswordLogin) and token.refresh_token:
            creds.refresh_token = token.refresh_token
            if self.on_refresh is not None:
                self.on_refresh(token.refresh_token)
        return token

    async def fetch(self, http: httpx.AsyncClient) -> Token:
        """A new token from the token endpoint (a refresh that fails falls back to the password,
        when there is one)."""
        form, auth = self._form()
        response = await http.post(TOKEN_PATH, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT)
        creds = self.credentials
        if (
            response.status_code == 400
            and isinstance(creds, PasswordLogin)
            and form["grant_type"] == "refresh_token"
            and creds.password
        ):
            creds.refresh_token = None
            return await self.fetch(http)
        if response.status_code != 200:
            raise _error(response)
        return self.accept(Token.model_validate(response.json()))
