import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Response, status

from cure.auth import scopes as scope_rules
from cure.auth import service as auth_service
from cure.auth.dependencies import AdminPrincipal, ThrottleDep, require_scope
from cure.auth.models import Customer, OAuthClient
from cure.auth.principals import Principal
from cure.auth.schemas import ClientCreate, ClientRead, ClientSecretRead, PasswordChange
from cure.crm import service as crm_service
from cure.crm.schemas import (
    CustomerCreate,
    CustomerPage,
    CustomerRead,
    CustomerRegistered,
    CustomerUpdate,
    EmailVerify,
    VerificationRequested,
)
from cure.kit.dependencies import SessionDep, SettingsDep
from cure.kit.routes import deprecated_alias
from cure.kit.schemas import error_responses

router = APIRouter()

AccountReader = Annotated[Principal, Depends(require_scope(scope_rules.ACCOUNT_READ))]
AccountWriter = Annotated[Principal, Depends(require_scope(scope_rules.ACCOUNT_WRITE))]
ClientId = Annotated[str, Path(max_length=64)]
ScopeName = Annotated[str, Path(max_length=100)]


@router.post(
    "/v1/crm/customers",
    tags=["crm"],
    status_code=status.HTTP_201_CREATED,
    response_model=CustomerRegistered,
    responses=error_responses(409, 422, 429),
)
async def register_customer(
    data: CustomerCreate,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    throttle: ThrottleDep,
) -> CustomerRegistered:
    """Register a customer; the answer holds OAuth2 client credentials, the secret shown once.
    Where ordering needs a verified email, a link to verify it is mailed."""
    registered, mail = await crm_service.register(session, settings, throttle, data)
    if mail is not None:  # after the commit, so the token exists when the link is used
        background.add_task(auth_service.send_verification_email, settings, mail)
    return registered


@router.post(
    "/v1/crm/customers/me/verify",
    tags=["crm"],
    response_model=CustomerRead,
    responses=error_responses(400, 401, 403, 422),
)
async def verify_email(
    data: EmailVerify, session: SessionDep, principal: AccountWriter
) -> Customer:
    """Confirm your email with the single-use token mailed to it."""
    return await auth_service.verify_email(session, principal, token=data.token)


@router.post(
    "/v1/crm/customers/me/verification-email",
    tags=["crm"],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=VerificationRequested,
    responses=error_responses(401, 403, 429),
)
async def resend_verification_email(
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    throttle: ThrottleDep,
    principal: AccountWriter,
) -> VerificationRequested:
    """Mail a new verification link (earlier ones keep working until they expire)."""
    mail = await auth_service.resend_verification(session, settings, throttle, principal)
    if mail is None:
        return VerificationRequested(detail="your email is verified already")
    background.add_task(auth_service.send_verification_email, settings, mail)
    return VerificationRequested(detail="a message with a verification link is on its way")


# The original CURE platform's name for registration: kept for old scripts, deprecated.
router.add_api_route(
    "/v1/crm/customers/create",
    register_customer,
    methods=["POST"],
    status_code=status.HTTP_201_CREATED,
    response_model=CustomerRegistered,
    include_in_schema=False,
    route_class_override=deprecated_alias("/v1/crm/customers"),
)


# -- the caller's own account --------------------------------------------------------------------


@router.get(
    "/v1/crm/customers/me",
    tags=["crm"],
    response_model=CustomerRead,
    responses=error_responses(401, 403),
)
async def read_me(session: SessionDep, principal: AccountReader) -> Customer:
    """Your profile, scopes and status."""
    return await crm_service.get_me(session, principal)


@router.patch(
    "/v1/crm/customers/me",
    tags=["crm"],
    response_model=CustomerRead,
    responses=error_responses(401, 403, 422),
)
async def update_me(
    data: CustomerUpdate, session: SessionDep, principal: AccountWriter
) -> Customer:
    """Change your name, organisation or country; any other field is refused."""
    return await crm_service.update_me(session, principal, data)


@router.post(
    "/v1/crm/customers/me/password",
    tags=["crm"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(400, 401, 403, 422, 429),
)
async def change_password(
    data: PasswordChange,
    session: SessionDep,
    settings: SettingsDep,
    throttle: ThrottleDep,
    principal: AccountWriter,
) -> Response:
    """Change your password (give the current one); ends every refresh token of the account."""
    await auth_service.change_password(
        session,
        settings,
        throttle,
        principal,
        current_password=data.current_password,
        new_password=data.new_password,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _client_read(client: OAuthClient) -> ClientRead:
    return ClientRead.model_validate(client)


def _client_secret_read(client: OAuthClient, secret: str) -> ClientSecretRead:
    return ClientSecretRead(**_client_read(client).model_dump(), client_secret=secret)


@router.get(
    "/v1/crm/customers/me/clients",
    tags=["crm"],
    response_model=list[ClientRead],
    responses=error_responses(401, 403),
)
async def list_clients(session: SessionDep, principal: AccountReader) -> list[ClientRead]:
    """Your OAuth2 clients (never their secrets)."""
    return [_client_read(c) for c in await auth_service.list_clients(session, principal)]


@router.post(
    "/v1/crm/customers/me/clients",
    tags=["crm"],
    status_code=status.HTTP_201_CREATED,
    response_model=ClientSecretRead,
    responses=error_responses(401, 403, 422),
)
async def create_client(
    data: ClientCreate, session: SessionDep, principal: AccountWriter
) -> ClientSecretRead:
    """Another OAuth2 client, e.g. one per script, with at most your token's scopes; the secret
    is shown once."""
    client, secret = await auth_service.add_client(
        session, principal, name=data.name, scopes=data.scopes
    )
    return _client_secret_read(client, secret)


@router.post(
    "/v1/crm/customers/me/clients/{client_id}/secret",
    tags=["crm"],
    response_model=ClientSecretRead,
    responses=error_responses(401, 403, 404),
)
async def rotate_client_secret(
    client_id: ClientId, session: SessionDep, principal: AccountWriter
) -> ClientSecretRead:
    """A new secret for one of your clients, shown once; the old secret and the tokens issued
    with it stop working."""
    client, secret = await auth_service.rotate_client_secret(session, principal, client_id)
    return _client_secret_read(client, secret)


@router.delete(
    "/v1/crm/customers/me/clients/{client_id}",
    tags=["crm"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404),
)
async def delete_client(
    client_id: ClientId, session: SessionDep, principal: AccountWriter
) -> Response:
    """Delete one of your clients; its tokens stop working at once."""
    await auth_service.delete_client(session, principal, client_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- admin ---------------------------------------------------------------------------------------


@router.get(
    "/v1/admin/customers",
    tags=["admin"],
    response_model=CustomerPage,
    responses=error_responses(401, 403, 422),
)
async def list_customers(
    session: SessionDep,
    _admin: AdminPrincipal,
    search: Annotated[
        str | None,
        Query(max_length=200, pattern=r"^[^\x00]*$", description="in email, name or organisation"),
    ] = None,
    is_active: bool | None = None,
    is_admin: bool | None = None,
    country: Annotated[str | None, Query(min_length=2, max_length=2)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    cursor: Annotated[str | None, Query(max_length=500, description="From next_cursor")] = None,
) -> CustomerPage:
    """Customers, newest first, filtered and paginated (admins)."""
    return await crm_service.list_customers(
        session,
        search=search,
        is_active=is_active,
        is_admin=is_admin,
        country=country.upper() if country else None,
        limit=limit,
        offset=offset,
        cursor=cursor,
    )


@router.get(
    "/v1/admin/customers/{customer_id}",
    tags=["admin"],
    response_model=CustomerRead,
    responses=error_responses(401, 403, 404),
)
async def read_customer(
    customer_id: uuid.UUID, session: SessionDep, _admin: AdminPrincipal
) -> Customer:
    """One customer (admins)."""
    return await crm_service.get(session, customer_id)


@router.patch(
    "/v1/admin/customers/{customer_id}",
    tags=["admin"],
    response_model=CustomerRead,
    responses=error_responses(401, 403, 404, 422),
)
async def update_customer(
    customer_id: uuid.UUID, data: CustomerUpdate, session: SessionDep, _admin: AdminPrincipal
) -> Customer:
    """Change a customer's name, organisation or country (admins); status and scopes have their
    own endpoints."""
    return await crm_service.update_customer(session, customer_id, data)


@router.post(
    "/v1/admin/customers/{customer_id}/disable",
    tags=["admin"],
    response_model=CustomerRead,
    responses=error_responses(401, 403, 404, 409),
)
async def disable_customer(
    customer_id: uuid.UUID, session: SessionDep, admin: AdminPrincipal
) -> Customer:
    """Disable a customer: every token of theirs stops working at once (admins)."""
    return await crm_service.set_active(session, admin, customer_id, active=False)


@router.post(
    "/v1/admin/customers/{customer_id}/enable",
    tags=["admin"],
    response_model=CustomerRead,
    responses=error_responses(401, 403, 404, 409),
)
async def enable_customer(
    customer_id: uuid.UUID, session: SessionDep, admin: AdminPrincipal
) -> Customer:
    """Re-enable a disabled customer (admins); they log in again to get new refresh tokens."""
    return await crm_service.set_active(session, admin, customer_id, active=True)


@router.put(
    "/v1/admin/customers/{customer_id}/scopes/{scope}",
    tags=["admin"],
    response_model=CustomerRead,
    responses=error_responses(401, 403, 404, 422),
)
async def grant_scope(
    customer_id: uuid.UUID,
    scope: ScopeName,
    session: SessionDep,
    settings: SettingsDep,
    _admin: AdminPrincipal,
) -> Customer:
    """Grant a scope to a customer (admins); idempotent."""
    return await crm_service.grant_scope(session, settings, customer_id, scope)


@router.delete(
    "/v1/admin/customers/{customer_id}/scopes/{scope}",
    tags=["admin"],
    response_model=CustomerRead,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def withdraw_scope(
    customer_id: uuid.UUID,
    scope: ScopeName,
    session: SessionDep,
    settings: SettingsDep,
    admin: AdminPrincipal,
) -> Customer:
    """Withdraw a scope from a customer and their clients (admins); their tokens lose it at once."""
    return await crm_service.withdraw_scope(session, settings, admin, customer_id, scope)
