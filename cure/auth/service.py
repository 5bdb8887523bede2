"""Clients and tokens: the rules of the OAuth2 server."""

import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from cure.auth import repository
from cure.auth.exceptions import InvalidToken, OAuthError
from cure.auth.models import OAuthClient
from cure.auth.passwords import hash_client_secret, new_client_secret, verify_client_secret
from cure.auth.schemas import TokenRead
from cure.auth.tokens import TokenInvalid, decode_access_token, encode_access_token
from cure.config import Settings

SUPPORTED_GRANTS = ("client_credentials",)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the customer behind a verified access token, and what it may do."""

    customer_id: uuid.UUID
    client_id: str
    scopes: frozenset[str]
    is_admin: bool


async def create_client(
    session: AsyncSession, *, customer_id: uuid.UUID, scopes: list[str], name: str = "default"
) -> tuple[OAuthClient, str]:
    """A new client for the customer; the plain secret is returned once and stored hashed."""
    secret = new_client_secret()
    client = OAuthClient(
        client_id=f"cure-{secrets.token_urlsafe(18)}",
        secret_hash=hash_client_secret(secret),
        customer_id=customer_id,
        name=name,
        scopes=sorted(set(scopes)),
    )
    await repository.add_client(session, client)
    return client, secret


async def issue_token(
    session: AsyncSession,
    settings: Settings,
    *,
    grant_type: str | None,
    client_id: str | None,
    client_secret: str | None,
    scope: str | None,
) -> TokenRead:
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type not in SUPPORTED_GRANTS:
        raise OAuthError("unsupported_grant_type", f"grant_type '{grant_type}' is not supported")
    if not client_id or not client_secret:
        raise OAuthError("invalid_client", "client authentication failed", status_code=401)
    found = await repository.get_active_client(session, client_id)
    if (
        found is None
        or not verify_client_secret(client_secret, found[0].secret_hash)
        or not found[1].is_active
    ):
        raise OAuthError("invalid_client", "client authentication failed", status_code=401)
    client, _ = found
    granted = _granted_scopes(client.scopes, scope)
    token, ttl = encode_access_token(
        settings, subject=str(client.customer_id), client_id=client.client_id, scopes=granted
    )
    return TokenRead(access_token=token, expires_in=ttl, scope=" ".join(granted))


def _granted_scopes(held: list[str], requested: str | None) -> list[str]:
    if requested is None or not requested.strip():
        return sorted(held)
    wanted = set(requested.split())
    missing = wanted - set(held)
    if missing:
        raise OAuthError(
            "invalid_scope", f"scope not granted to this client: {' '.join(sorted(missing))}"
        )
    return sorted(wanted)


async def authenticate(session: AsyncSession, settings: Settings, token: str) -> Principal:
    """Verify the token, then that its client and customer still exist and are active."""
    try:
        claims = decode_access_token(settings, token)
        customer_id = uuid.UUID(claims["sub"])
    except (TokenInvalid, ValueError) as exc:
        raise InvalidToken("the access token is invalid or expired") from exc
    found = await repository.get_active_client(session, claims["client_id"])
    if found is None or found[1].id != customer_id or not found[1].is_active:
        raise InvalidToken("the access token is no longer valid")
    client, customer = found
    # A token never carries more than its client holds now: withdrawn scopes take effect at once.
    scopes = frozenset(claims["scope"].split()) & frozenset(client.scopes)
    return Principal(customer.id, client.client_id, scopes, customer.is_admin)
