"""Registration, the customer's own profile, and mass assignment."""

import uuid

from sqlalchemy import func, select

from cure.auth.models import Customer, OAuthClient
from tests.factories import PASSWORD, create_customer, customer_with_token, unique_email

ME = "/v1/crm/customers/me"


async def test_register_returns_credentials_and_stores_only_hashes(client, session) -> None:
    email = unique_email()
    body = await create_customer(
        client, email=email.upper(), organisation="City of Vienna", country="at"
    )
    assert set(body) == {
        "customer_id",
        "name",
        "email",
        "client_id",
        "client_secret",
        "scopes",
        "email_verified",
    }
    assert body["email_verified"] is False
    assert body["email"] == email  # normalised to lower case
    customer = await session.get(Customer, uuid.UUID(body["customer_id"]))
    assert customer.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in customer.password_hash
    assert customer.country == "AT"
    assert set(customer.scopes) == set(body["scopes"])
    assert {"app:roi_stats", "orders:read", "orders:write"} <= set(customer.scopes)
    assert "admin" not in customer.scopes
    client_row = (
        await session.execute(select(OAuthClient).where(OAuthClient.client_id == body["client_id"]))
    ).scalar_one()
    assert client_row.secret_hash != body["client_secret"]
    assert body["client_secret"] not in client_row.secret_hash
    assert client_row.scopes is None  # the default client follows the customer's scopes


async def test_duplicate_email_is_409(client) -> None:
    email = unique_email()
    await create_customer(client, email=email)
    again = await client.post(
        "/v1/crm/customers", json={"name": "X", "email": email.upper(), "password": PASSWORD}
    )
    assert again.status_code == 409
    assert again.json()["error"] == "EmailTaken"


async def _count(session, email: str) -> int:
    return (await session.execute(select(func.count()).where(Customer.email == email))).scalar_one()


async def test_bad_registrations_are_4xx_and_store_nothing(client, session) -> None:
    email = unique_email()
    base = {"name": "X", "email": email, "password": PASSWORD}
    cases = {
        "unknown field": {**base, "nickname": "x"},
        "is_admin injected": {**base, "is_admin": True},
        "scopes injected": {**base, "scopes": ["admin"]},
        "status injected": {**base, "is_active": False},
        "id injected": {**base, "customer_id": str(uuid.uuid4())},
        "short password": {**base, "password": "short"},
        "bad email": {**base, "email": "not-an-email"},
        "blank name": {**base, "name": "   "},
        "password is email": {**base, "password": email},
        "missing password": {"name": "X", "email": email},
        "unknown country": {**base, "country": "XX"},
    }
    for case, body in cases.items():
        response = await client.post("/v1/crm/customers", json=body)
        assert response.status_code == 422, case
        assert response.json()["error"] in {"ValidationError", "WeakPassword"}, case
        assert PASSWORD not in response.text, case  # submitted secrets are never echoed
    assert await _count(session, email) == 0


async def test_read_and_update_my_profile(client) -> None:
    customer, headers = await customer_with_token(client)
    me = await client.get(ME, headers=headers)
    assert me.status_code == 200
    body = me.json()
    assert body["customer_id"] == customer["customer_id"]
    assert body["email"] == customer["email"]
    assert body["is_admin"] is False and body["is_active"] is True
    assert "password_hash" not in body

    changed = await client.patch(
        ME,
        json={"name": "  Ana Analyst ", "organisation": "ESA", "country": "de"},
        headers=headers,
    )
    assert changed.status_code == 200
    assert changed.json()["name"] == "Ana Analyst"
    assert changed.json()["organisation"] == "ESA"
    assert changed.json()["country"] == "DE"
    cleared = await client.patch(ME, json={"organisation": None}, headers=headers)
    assert cleared.json()["organisation"] is None
    assert cleared.json()["name"] == "Ana Analyst"  # untouched fields stay
    assert (await client.get(ME, headers=headers)).json()["country"] == "DE"


async def test_mass_assignment_on_my_profile_is_rejected_and_changes_nothing(
    client, session
) -> None:
    customer, headers = await customer_with_token(client)
    other = await create_customer(client)
    before = (await client.get(ME, headers=headers)).json()
    attempts = {
        "scopes": {"scopes": ["admin"]},
        "is_admin": {"is_admin": True},
        "status": {"is_active": False},
        "status (other name)": {"status": "disabled"},
        "email": {"email": unique_email()},
        "another customer's id": {"customer_id": other["customer_id"]},
        "id": {"id": other["customer_id"]},
        "password hash": {"password_hash": "x"},
        "allowed field plus a forbidden one": {"name": "Changed", "is_admin": True},
        "name removed": {"name": None},
        "blank name": {"name": "  "},
        "bad country": {"country": "Austria"},
    }
    for case, body in attempts.items():
        response = await client.patch(ME, json=body, headers=headers)
        assert response.status_code == 422, case
    assert (await client.get(ME, headers=headers)).json() == before
    row = await session.get(Customer, uuid.UUID(other["customer_id"]))
    assert row.name == "Test Customer"


async def test_profile_needs_the_account_scopes(client) -> None:
    from tests.factories import bearer, get_token

    customer = await create_customer(client)
    read_only = bearer(await get_token(client, customer, scope="account:read"))
    assert (await client.get(ME, headers=read_only)).status_code == 200
    refused = await client.patch(ME, json={"name": "X"}, headers=read_only)
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_scope"


async def test_change_password(client) -> None:
    from tests.factories import bearer, password_login

    customer = await create_customer(client)
    login = await password_login(client, customer["email"])
    headers = bearer(login["access_token"])
    wrong = await client.post(
        f"{ME}/password",
        json={"current_password": "not my password", "new_password": "a new long passphrase"},
        headers=headers,
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "WrongPassword"
    weak = await client.post(
        f"{ME}/password",
        json={"current_password": PASSWORD, "new_password": customer["email"]},
        headers=headers,
    )
    assert weak.status_code == 422
    ok = await client.post(
        f"{ME}/password",
        json={"current_password": PASSWORD, "new_password": "a new long passphrase"},
        headers=headers,
    )
    assert ok.status_code == 204
    # Every login of the account ends, this one included, and so do its clients' secrets.
    assert (await client.get(ME, headers=headers)).status_code == 401
    client_login = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(customer["client_id"], customer["client_secret"]),
    )
    assert client_login.status_code == 401
    assert (
        await client.post(
            "/v1/auth/login",
            json={"email": customer["email"], "password": "a new long passphrase"},
        )
    ).status_code == 200
