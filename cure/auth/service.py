"""The rules of the OAuth2 server: clients, grants, tokens, revocation, password reset."""

import asyncio
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cure.auth import passwords, repository
from cure.auth import scopes as scope_rules
from cure.auth.exceptions import (
    ClientNotFound,
    InvalidResetToken,
    InvalidToken,
    InvalidVerificationToken,
    OAuthError,
    ScopeNotHeld,
    TooManyAttempts,
    WeakPassword,
    WrongPassword,
    invalid_client,
)
from cure.auth.models import (
    Customer,
    EmailVerificationToken,
    OAuthClient,
    PasswordResetToken,
    RefreshToken,
)
from cure.auth.passwords import PasswordHasher
from cure.auth.principals import Principal, PrincipalCache
from cure.auth.schemas import TokenRead
from cure.auth.throttle import Limit, Throttle
from cure.auth.tokens import TokenInvalid, decode_access_token, encode_access_token
from cure.config import Settings
from cure.kit.db import utcnow
from cure.mail import sender as mail_sender
from cure.mail.exceptions import MailError

log = logging.getLogger(__name__)

SUPPORTED_GRANTS = ("client_credentials", "password", "refresh_token")


@dataclass(frozen=True)
class ClientCredentials:
    """What a request said about its client (HTTP Basic or form fields), not yet verified."""

    client_id: str | None = None
    client_secret: str | None = None


@dataclass(frozen=True)
class AuthenticatedClient:
    """A verified client: a customer's confidential client, or the first-party public client."""

    client_id: str
    client: OAuthClient | None  # None for the first-party public client
    customer: Customer | None  # the confidential client's customer


# -- clients -------------------------------------------------------------------------------------


def new_client_id() -> str:
    return f"cure-{secrets.token_urlsafe(18)}"


async def create_client(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    scopes: list[str] | None = None,
    name: str = "default",
) -> tuple[OAuthClient, str]:
    """A new client; the plain secret is returned once and only its hash is stored.

    ``scopes=None``: the client follows its customer's scopes as they change.
    """
    secret = passwords.new_client_secret()
    client = OAuthClient(
        client_id=new_client_id(),
        secret_hash=passwords.hash_client_secret(secret),
        customer_id=customer_id,
        name=name,
        scopes=None if scopes is None else sorted(set(scopes)),
    )
    await repository.add_client(session, client)
    return client, secret


def client_scopes(client: OAuthClient | None, customer: Customer) -> set[str]:
    """What a client may ask for now: its customer's scopes, narrowed by its own list if it has one."""
    held = set(customer.scopes)
    if client is not None and client.scopes is not None:
        held &= set(client.scopes)
    return held


async def authenticate_client(
    session: AsyncSession,
    settings: Settings,
    throttle: Throttle,
    credentials: ClientCredentials,
    *,
    allow_public: bool,
) -> AuthenticatedClient:
    """Verify the client; the first-party public client (no secret) only where ``allow_public``."""
    client_id, secret = credentials.client_id, credentials.client_secret
    if client_id is None or client_id == settings.first_party_client_id:
        if not allow_public or secret:
            raise invalid_client()
        return AuthenticatedClient(settings.first_party_client_id, None, None)
    # A client secret is 256 random bits checked with one lookup: check it first, so that the
    # right one is never refused, whatever others tried with this client_id or from this address.
    found = await repository.get_active_client(session, client_id) if secret else None
    if found is None or not passwords.verify_client_secret(secret or "", found[0].secret_hash):
        await _count_failure(throttle, throttle.pair_limit("client", client_id))
        raise invalid_client()
    client, customer = found
    if not customer.is_active:
        raise invalid_client()
    return AuthenticatedClient(client.client_id, client, customer)


async def _count_failure(throttle: Throttle, *limits: Limit) -> None:
    """Count a wrong cheap credential, under ``limits`` and the address: 429 past a limit."""
    try:
        await throttle.failed(*limits, throttle.address_limit())
    except TooManyAttempts as exc:
        raise _oauth_throttled(exc) from exc


def _oauth_throttled(exc: TooManyAttempts) -> OAuthError:
    # RFC 6749 has no code for throttling; "temporarily_unavailable" is the registered code that
    # means "try again later", which is what Retry-After tells the client to do.
    return OAuthError(
        "temporarily_unavailable",
        "too many failed attempts; try again later",
        status_code=429,
        retry_after=exc.retry_after,
    )


# -- the token endpoint --------------------------------------------------------------------------


async def issue_token(
    session: AsyncSession,
    settings: Settings,
    throttle: Throttle,
    *,
    grant_type: str | None,
    credentials: ClientCredentials,
    scope: str | None = None,
    username: str | None = None,
    password: str | None = None,
    refresh_token: str | None = None,
) -> TokenRead:
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type not in SUPPORTED_GRANTS:
        raise OAuthError("unsupported_grant_type", f"grant_type '{grant_type}' is not supported")
    requested = _parse_scope(scope)
    if grant_type == "client_credentials":
        client = await authenticate_client(
            session, settings, throttle, credentials, allow_public=False
        )
        assert client.customer is not None  # a confidential client always has one
        granted = _grant_scopes(client_scopes(client.client, client.customer), requested)
        return await _issue(
            session, settings, customer=client.customer, client_id=client.client_id, scopes=granted
        )
    if grant_type == "password":
        client = await authenticate_client(
            session, settings, throttle, credentials, allow_public=True
        )
        return await _password_grant(
            session, settings, throttle, client, username, password, requested
        )
    client = await authenticate_client(session, settings, throttle, credentials, allow_public=True)
    return await _refresh_grant(session, settings, throttle, client, refresh_token, requested)


def _parse_scope(scope: str | None) -> list[str] | None:
    requested = scope_rules.parse(scope)
    if requested is not None and not all(scope_rules.is_well_formed(s) for s in requested):
        raise OAuthError("invalid_scope", "scope must be space-separated scope tokens")
    return requested


def _grant_scopes(held: set[str], requested: list[str] | None) -> list[str]:
    """All held scopes when none are requested; otherwise the requested ones, if all are held."""
    if requested is None:
        return sorted(held)
    missing = set(requested) - held
    if missing:
        raise OAuthError(
            "invalid_scope", f"scope not granted to this client: {' '.join(sorted(missing))}"
        )
    return sorted(requested)


async def _password_grant(
    session: AsyncSession,
    settings: Settings,
    throttle: Throttle,
    client: AuthenticatedClient,
    username: str | None,
    password: str | None,
    requested: list[str] | None,
) -> TokenRead:
    if not username or not password:
        raise OAuthError("invalid_request", "username and password are required")
    customer = await verify_login(session, settings, throttle, email=username, password=password)
    if client.customer is not None and client.customer.id != customer.id:
        raise OAuthError("invalid_grant", "the account does not own this client")
    granted = _grant_scopes(client_scopes(client.client, customer), requested)
    return await _issue(
        session,
        settings,
        customer=customer,
        client_id=client.client_id,
        scopes=granted,
        family_id=uuid.uuid4(),
    )


async def verify_login(
    session: AsyncSession, settings: Settings, throttle: Throttle, *, email: str, password: str
) -> Customer:
    """The active customer with this email and password, or invalid_grant (throttled).

    The slow part, the hash, runs holding no database connection: the throttle's decision and
    the stored hash are read in a short transaction of the side pool that commits the attempt
    as a failure first (taken back when the password is right), then the hash waits for one of
    the hashing threads, and only a right password goes on in the request's own session.
    """
    if len(password) > passwords.MAX_PASSWORD_LENGTH:
        # Before any lookup: the same answer whether or not the email has an account.
        raise OAuthError(
            "invalid_request",
            f"the password must have at most {passwords.MAX_PASSWORD_LENGTH} characters",
        )
    try:
        async with throttle.sessionmaker() as gate, gate.begin():
            attempt = await throttle.admit(gate, "user", email)
            stored = await repository.get_customer_by_email(gate, email)
    except TooManyAttempts as exc:
        raise _oauth_throttled(exc) from exc
    await throttle.wait(attempt)
    if stored is None:
        # As slow as a real check, so the answer's timing does not tell which emails exist.
        await throttle.hasher.burn(password)
        valid, upgraded = False, None
    else:
        valid, upgraded = await throttle.hasher.verify(password, stored.password_hash)
    if stored is None or not valid:
        raise OAuthError("invalid_grant", "the email or password is wrong")  # already counted
    await throttle.forget(attempt)
    customer = await repository.get_customer(session, stored.id)
    if customer is None:  # removed in the meantime
        raise OAuthError("invalid_grant", "the email or password is wrong")
    if upgraded:
        customer.password_hash = upgraded  # the hash parameters changed: store the stronger hash
    if not customer.is_active:
        raise OAuthError("invalid_grant", "the account is disabled")
    return customer


async def _refresh_grant(
    session: AsyncSession,
    settings: Settings,
    throttle: Throttle,
    client: AuthenticatedClient,
    refresh_token: str | None,
    requested: list[str] | None,
) -> TokenRead:
    if not refresh_token:
        raise OAuthError("invalid_request", "refresh_token is required")
    now = utcnow()
    invalid = OAuthError("invalid_grant", "the refresh token is invalid, expired or revoked")
    stored = await repository.get_refresh_token(session, passwords.hash_opaque_token(refresh_token))
    if stored is None:  # 256 random bits: checked first, only wrong ones are counted
        await _count_failure(throttle)
        raise invalid
    if stored.client_id != client.client_id:
        raise OAuthError("invalid_grant", "the refresh token was issued to another client")
    await repository.lock_refresh_family(session, stored.family_id)
    stored = await repository.get_refresh_token(session, stored.token_hash)  # as of the lock
    assert stored is not None  # refresh tokens are never deleted
    if stored.revoked_at is not None or stored.expires_at <= now:
        raise invalid
    if stored.used_at is not None or not await repository.claim_refresh_token(
        session, stored.id, now=now
    ):
        # A rotated token came back: it leaked, or a client replays it. Either way the family
        # can no longer be trusted (RFC 9700 section 4.14.2), so all of it goes. This request
        # holds no row lock (only the family's advisory lock), so the revocation cannot wait on it.
        log.warning(
            "refresh token reuse: revoking family %s of customer %s",
            stored.family_id,
            stored.customer_id,
        )
        family_id = stored.family_id
        await _commit_apart(
            throttle.sessionmaker, lambda apart: repository.revoke_family(apart, family_id, now=now)
        )
        raise invalid
    customer = await repository.get_customer(session, stored.customer_id)
    if customer is None or not customer.is_active:
        raise invalid
    # Never more than first granted (RFC 6749 section 6), nor more than held now.
    held = set(stored.scopes) & client_scopes(client.client, customer)
    if requested is not None and not set(requested) <= set(stored.scopes):
        raise OAuthError("invalid_scope", "a refresh cannot add scopes to the original grant")
    granted = _grant_scopes(held, requested) if requested else sorted(held)
    issued = await _issue(
        session,
        settings,
        customer=customer,
        client_id=client.client_id,
        scopes=granted,
        family_id=stored.family_id,
        replaces=stored,
    )
    return issued


async def _issue(
    session: AsyncSession,
    settings: Settings,
    *,
    customer: Customer,
    client_id: str,
    scopes: list[str],
    family_id: uuid.UUID | None = None,
    replaces: RefreshToken | None = None,
) -> TokenRead:
    """An access token, and a refresh token in ``family_id`` when one is given."""
    now = utcnow()
    access, claims = encode_access_token(
        settings,
        subject=str(customer.id),
        client_id=client_id,
        scopes=scopes,
        now=now,
        generation=customer.token_generation,
    )
    result = TokenRead(
        access_token=access, expires_in=settings.access_token_ttl_seconds, scope=" ".join(scopes)
    )
    if family_id is None:
        return result
    plain, digest = passwords.new_opaque_token()
    refresh = await repository.add_refresh_token(
        session,
        RefreshToken(
            token_hash=digest,
            family_id=family_id,
            customer_id=customer.id,
            client_id=client_id,
            scopes=scopes,
            access_token_jti=claims["jti"],
            access_token_expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds),
        ),
    )
    if replaces is not None:
        await repository.link_replacement(session, replaces.id, refresh.id)
    result.refresh_token = plain
    return result


async def _commit_apart(
    sessionmaker: async_sessionmaker[AsyncSession], work: Callable[[AsyncSession], Awaitable[None]]
) -> None:
    """Security records that must outlive the request: its transaction rolls back on the error
    that follows. Callers hold no row locks that ``work`` needs, so this cannot deadlock."""
    async with sessionmaker() as session, session.begin():
        await work(session)


# -- every request -------------------------------------------------------------------------------


async def authenticate(
    session: AsyncSession,
    settings: Settings,
    token: str,
    cache: PrincipalCache[Principal] | None = None,
) -> Principal:
    """Verify the token, then that it is not revoked and its client and customer are active.

    With a ``cache`` (see ``cure.auth.principals``), the principal is kept there for the token;
    the caller asks the cache first (``current_principal``) and comes here when it cannot answer.
    """
    try:
        claims = decode_access_token(settings, token)
    except TokenInvalid as exc:
        raise InvalidToken("the access token is invalid or expired") from exc
    generation = cache.generation if cache is not None else 0
    principal = await _principal_of(session, settings, claims)
    if principal is None:
        raise InvalidToken("the access token is no longer valid")
    if cache is not None:
        cache.put(
            token,
            principal,
            customer_id=principal.customer_id,
            jti=str(claims["jti"]),
            expires_at=float(claims["exp"]),
            read_at_generation=generation,
        )
    return principal


async def _principal_of(
    session: AsyncSession, settings: Settings, claims: dict[str, Any]
) -> Principal | None:
    try:
        customer_id = uuid.UUID(claims["sub"])
    except ValueError:
        return None
    client: OAuthClient | None = None
    if claims["client_id"] == settings.first_party_client_id:
        customer = await repository.get_customer(session, customer_id)
    else:
        found = await repository.get_active_client(session, claims["client_id"])
        if found is None:
            return None
        client, customer = found
        rotated = client.secret_rotated_at
        if rotated is not None and claims["iat"] < int(rotated.timestamp()):
            return None  # issued with a secret that has since been replaced
    if customer is None or customer.id != customer_id or not customer.is_active:
        return None
    if claims.get("gen", 0) < customer.token_generation:
        return None  # issued before the password was reset or changed
    if await repository.is_revoked(session, claims["jti"]):
        return None
    # A token never carries more than its client and customer hold now: withdrawn scopes go at once.
    scopes = frozenset(claims["scope"].split()) & frozenset(client_scopes(client, customer))
    is_admin = customer.is_admin and scope_rules.ADMIN in scopes
    verified = customer.email_verified_at is not None
    return Principal(customer.id, claims["client_id"], scopes, is_admin, email_verified=verified)


# -- introspection and revocation ----------------------------------------------------------------


async def introspect(
    session: AsyncSession, settings: Settings, caller: Principal, *, token: str
) -> dict[str, Any]:
    """RFC 7662: the token's claims when it is active and the caller's (or the caller is an
    admin); only ``{"active": false}`` otherwise, whatever the reason."""
    inactive: dict[str, Any] = {"active": False}
    try:
        claims = decode_access_token(settings, token)
    except TokenInvalid:
        return await _introspect_refresh(session, settings, caller, token)
    principal = await _principal_of(session, settings, claims)
    if principal is None or not _may_see(caller, principal.customer_id):
        return inactive
    return {
        "active": True,
        **claims,
        "scope": " ".join(sorted(principal.scopes)),
        "token_type": "Bearer",
    }


async def _introspect_refresh(
    session: AsyncSession, settings: Settings, caller: Principal, token: str
) -> dict[str, Any]:
    stored = await repository.get_refresh_token(session, passwords.hash_opaque_token(token))
    now = utcnow()
    if (
        stored is None
        or stored.used_at is not None
        or stored.revoked_at is not None
        or stored.expires_at <= now
        or not _may_see(caller, stored.customer_id)
    ):
        return {"active": False}
    customer = await repository.get_customer(session, stored.customer_id)
    if customer is None or not customer.is_active:
        return {"active": False}
    return {
        "active": True,
        "scope": " ".join(sorted(set(stored.scopes) & set(customer.scopes))),
        "client_id": stored.client_id,
        "sub": str(stored.customer_id),
        "exp": int(stored.expires_at.timestamp()),
        "iat": int(stored.created_at.timestamp()),
        "iss": settings.jwt_issuer,
        "token_type": "refresh_token",
    }


def _may_see(caller: Principal, customer_id: uuid.UUID) -> bool:
    return caller.is_admin or caller.customer_id == customer_id


async def revoke(
    session: AsyncSession, settings: Settings, client: AuthenticatedClient, *, token: str
) -> None:
    """RFC 7009: revoke an access token (its jti) or a refresh token (its whole family and the
    access tokens issued with it). Unknown, malformed or expired tokens are ignored."""
    now = utcnow()
    await repository.purge_revoked_access_tokens(session, now=now)
    try:
        claims = decode_access_token(settings, token)
    except TokenInvalid:
        claims = None
    if claims is not None:
        _check_issued_to(client, claims["client_id"])
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        await repository.revoke_access_tokens(session, [(claims["jti"], expires_at)], now=now)
        return
    stored = await repository.get_refresh_token(session, passwords.hash_opaque_token(token))
    if stored is not None:
        _check_issued_to(client, stored.client_id)
        await repository.revoke_family(session, stored.family_id, now=now)


def _check_issued_to(client: AuthenticatedClient, issued_to: str) -> None:
    if client.client_id != issued_to:
        raise OAuthError("unauthorized_client", "the token was issued to another client")


# -- passwords -----------------------------------------------------------------------------------


def check_password_policy(
    settings: Settings,
    password: str,
    *,
    email: str,
    name: str | None = None,
    field: str = "password",
) -> None:
    """WeakPassword naming the body's ``field`` (password, new_password) and each problem."""
    problems = passwords.policy_violations(settings, password, email=email, name=name)
    if problems:
        raise WeakPassword(problems, field=field)


async def hash_password(
    settings: Settings, password: str, *, hasher: PasswordHasher | None = None
) -> str:
    """The password's hash, on the hashing threads when given (the API), else a plain thread."""
    if hasher is not None:
        return await hasher.hash(password)
    return await asyncio.to_thread(passwords.hash_password, settings, password)


@dataclass(frozen=True)
class ResetMail:
    customer_id: uuid.UUID
    to: str
    name: str
    token: str


async def request_password_reset(
    session: AsyncSession, settings: Settings, throttle: Throttle, *, email: str
) -> ResetMail | None:
    """A single-use reset token for an active account with this email, to be mailed; None when
    there is no such account. The caller answers the same either way."""
    # Every request counts, known email or not, so the limits reveal nothing about accounts; its
    # own count per address, so that failed logins from an address never block its resets.
    await throttle.spend(throttle.reset_limit(email), throttle.address_limit("reset-request"))
    customer = await repository.get_customer_by_email(session, email)
    if customer is None or not customer.is_active:
        return None
    plain, digest = passwords.new_opaque_token()
    now = utcnow()
    await repository.add_reset_token(
        session,
        PasswordResetToken(
            token_hash=digest,
            customer_id=customer.id,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.password_reset_ttl_seconds),
        ),
    )
    return ResetMail(customer.id, customer.email, customer.name, plain)


def reset_email_body(settings: Settings, mail: ResetMail) -> str:
    minutes = settings.password_reset_ttl_seconds // 60
    if settings.password_reset_url:
        how = f"Choose a new password here:\n\n  {settings.password_reset_url.format(token=mail.token)}"
    else:
        how = (
            "Send your new password with this token to "
            f"{settings.public_url}/v1/auth/password-reset/confirm:\n\n"
            f'  {{"token": "{mail.token}", "new_password": "..."}}'
        )
    return (
        f"Hello {mail.name},\n\n"
        "someone asked to reset the password of your CURE account. "
        f"{how}\n\n"
        f"The token works once and expires in {minutes} minutes. If you did not ask for this, "
        "ignore this email: your password stays as it is.\n"
    )


async def _send_quietly(
    settings: Settings, *, to: str, subject: str, body: str, what: str, customer_id: uuid.UUID
) -> None:
    """Mail a message holding a token; a failure is logged (never with the token), not raised."""
    try:
        await mail_sender.send_email(settings, to=to, subject=subject, body=body)
    except MailError as exc:
        log.error("%s email for customer %s was not sent: %s", what, customer_id, exc)
    except Exception:  # a background task: nothing above us would log it with this context
        log.exception("%s email for customer %s was not sent", what, customer_id)


async def send_reset_email(settings: Settings, mail: ResetMail) -> None:
    """Mail the reset token; a failure is logged (never with the token), not raised."""
    await _send_quietly(
        settings,
        to=mail.to,
        subject="Reset your CURE password",
        body=reset_email_body(settings, mail),
        what="password reset",
        customer_id=mail.customer_id,
    )


async def confirm_password_reset(
    session: AsyncSession, settings: Settings, throttle: Throttle, *, token: str, new_password: str
) -> None:
    """Set the new password, spend every reset token of the account and end everything that
    gave access to it (``end_all_access``)."""
    now = utcnow()
    stored = await repository.get_reset_token_for_update(
        session, passwords.hash_opaque_token(token)
    )
    customer = await repository.get_customer(session, stored.customer_id) if stored else None
    if (
        stored is None
        or stored.used_at is not None
        or stored.expires_at <= now
        or customer is None
        or not customer.is_active
    ):
        # 256 random bits: checked first, so only wrong tokens are counted (and refused past
        # the address's limit).
        await throttle.failed(throttle.address_limit())
        raise InvalidResetToken("the reset token is invalid, expired or already used")
    check_password_policy(
        settings, new_password, email=customer.email, name=customer.name, field="new_password"
    )
    customer.password_hash = await hash_password(settings, new_password, hasher=throttle.hasher)
    await repository.use_all_reset_tokens(session, customer.id, now=now)
    await end_all_access(session, customer, now=now)


async def change_password(
    session: AsyncSession,
    settings: Settings,
    throttle: Throttle,
    principal: Principal,
    *,
    current_password: str,
    new_password: str,
) -> None:
    """Change the caller's password (knowing the current one) and end everything that gave
    access to the account, the caller's own token included (``end_all_access``)."""
    customer = await repository.get_customer(session, principal.customer_id)
    assert customer is not None  # authenticate() found it a moment ago
    try:
        await verify_login(
            session, settings, throttle, email=customer.email, password=current_password
        )
    except OAuthError as exc:
        if exc.status_code == 429:
            retry_after = int((exc.headers or {}).get("Retry-After", "1"))
            raise TooManyAttempts(exc.message, retry_after=retry_after) from exc
        raise WrongPassword("the current password is wrong") from exc
    check_password_policy(
        settings, new_password, email=customer.email, name=customer.name, field="new_password"
    )
    customer.password_hash = await hash_password(settings, new_password, hasher=throttle.hasher)
    await end_all_access(session, customer, now=utcnow())


async def end_all_access(session: AsyncSession, customer: Customer, *, now: datetime) -> None:
    """Whoever had access to the account loses it: every access token stops working (the
    customer's token generation moves on), every refresh token is revoked, and every client's
    secret is replaced by one nobody knows (the owner gets new ones with POST .../secret)."""
    customer.token_generation += 1
    await repository.revoke_customer_refresh_tokens(session, customer.id, now=now)
    await repository.lock_out_customer_clients(session, customer.id, now=now)


async def end_sessions(session: AsyncSession, customer_id: uuid.UUID) -> None:
    """Revoke every refresh token of the customer (and the access tokens issued with them)."""
    await repository.revoke_customer_refresh_tokens(session, customer_id, now=utcnow())


# -- email verification --------------------------------------------------------------------------


@dataclass(frozen=True)
class VerificationMail:
    customer_id: uuid.UUID
    to: str
    name: str
    token: str


async def new_verification(
    session: AsyncSession, settings: Settings, customer: Customer
) -> VerificationMail:
    """A single-use token that proves the customer reads mail at their address, to be mailed."""
    plain, digest = passwords.new_opaque_token()
    now = utcnow()
    await repository.add_verification_token(
        session,
        EmailVerificationToken(
            token_hash=digest,
            customer_id=customer.id,
            email=customer.email,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.email_verification_ttl_seconds),
        ),
    )
    return VerificationMail(customer.id, customer.email, customer.name, plain)


async def resend_verification(
    session: AsyncSession, settings: Settings, throttle: Throttle, principal: Principal
) -> VerificationMail | None:
    """Another verification token for the caller; None when the email is verified already."""
    customer = await repository.get_customer(session, principal.customer_id)
    assert customer is not None
    if customer.email_verified_at is not None:
        return None
    await throttle.spend(throttle.verification_limit(customer.id))
    return await new_verification(session, settings, customer)


async def verify_email(session: AsyncSession, principal: Principal, *, token: str) -> Customer:
    """Mark the caller's email verified with a token mailed to it; the token works once."""
    now = utcnow()
    stored = await repository.get_verification_token_for_update(
        session, passwords.hash_opaque_token(token)
    )
    customer = await repository.get_customer(session, principal.customer_id)
    assert customer is not None
    if (
        stored is None
        or stored.customer_id != customer.id
        or stored.email != customer.email
        or stored.used_at is not None
        or stored.expires_at <= now
    ):
        raise InvalidVerificationToken("the verification token is invalid, expired or used")
    stored.used_at = now
    customer.email_verified_at = customer.email_verified_at or now
    return customer


def verification_email_body(settings: Settings, mail: VerificationMail) -> str:
    hours = settings.email_verification_ttl_seconds // 3600
    if settings.email_verification_url:
        how = f"Confirm it here:\n\n  {settings.email_verification_url.format(token=mail.token)}"
    else:
        how = (
            "Confirm it by sending this token, signed in to your account, to "
            f"{settings.public_url}/v1/crm/customers/me/verify:\n\n"
            f'  {{"token": "{mail.token}"}}'
        )
    return (
        f"Hello {mail.name},\n\n"
        f"please confirm that {mail.to} is the address of your CURE account. {how}\n\n"
        f"The token works once and expires in {hours} hours. If you did not register with "
        "CURE, someone else used your address: ignore this email, or reset the password of the "
        "account to take it over (that ends every access the other person had).\n"
    )


async def send_verification_email(settings: Settings, mail: VerificationMail) -> None:
    """Mail the verification token; a failure is logged (never with the token), not raised."""
    await _send_quietly(
        settings,
        to=mail.to,
        subject="Confirm your CURE email address",
        body=verification_email_body(settings, mail),
        what="verification",
        customer_id=mail.customer_id,
    )


# -- a customer's clients ------------------------------------------------------------------------


async def withdraw_client_scope(
    session: AsyncSession, *, customer_id: uuid.UUID, scope: str
) -> None:
    """Take a withdrawn scope out of the customer's clients' own lists too."""
    await repository.remove_scope_from_clients(session, customer_id=customer_id, scope=scope)


async def list_clients(session: AsyncSession, principal: Principal) -> list[OAuthClient]:
    return await repository.list_customer_clients(session, principal.customer_id)


async def add_client(
    session: AsyncSession, principal: Principal, *, name: str, scopes: list[str] | None
) -> tuple[OAuthClient, str]:
    """Another client for the caller, with at most the scopes of the caller's own token."""
    held = set(principal.scopes)
    wanted = held if scopes is None else set(scopes)
    missing = wanted - held
    if missing:
        raise ScopeNotHeld(f"your token does not hold: {' '.join(sorted(missing))}")
    return await create_client(
        session, customer_id=principal.customer_id, scopes=sorted(wanted), name=name
    )


async def _own_client(session: AsyncSession, principal: Principal, client_id: str) -> OAuthClient:
    client = await repository.get_customer_client(
        session, customer_id=principal.customer_id, client_id=client_id, for_update=True
    )
    if client is None:  # another customer's client answers like a missing one
        raise ClientNotFound(f"no client with id {client_id}")
    return client


async def rotate_client_secret(
    session: AsyncSession, principal: Principal, client_id: str
) -> tuple[OAuthClient, str]:
    """A new secret (shown once); the old one and the tokens issued with it stop working."""
    client = await _own_client(session, principal, client_id)
    secret = passwords.new_client_secret()
    client.secret_hash = passwords.hash_client_secret(secret)
    client.secret_rotated_at = utcnow()
    await repository.revoke_client_refresh_tokens(session, client.client_id, now=utcnow())
    return client, secret


async def delete_client(session: AsyncSession, principal: Principal, client_id: str) -> None:
    client = await _own_client(session, principal, client_id)
    client.revoked_at = utcnow()
    await repository.revoke_client_refresh_tokens(session, client.client_id, now=utcnow())
