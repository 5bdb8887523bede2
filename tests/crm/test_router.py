import uuid

from sqlalchemy import func, select

from cure.auth.models import OAuthClient
from cure.crm.models import Customer
from tests.factories import PASSWORD, create_customer, unique_email


async def test_register_returns_credentials_and_stores_only_hashes(client, session) -> None:
    email = unique_email()
    body = await create_customer(client, email=email.upper(), organisation="City of Vienna")
    assert set(body) == {"customer_id", "name", "email", "client_id", "client_secret", "scopes"}
    assert body["email"] == email  # normalised to lower case
    customer = await session.get(Customer, uuid.UUID(body["customer_id"]))
    assert customer.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in customer.password_hash
    client_row = (
        await session.execute(select(OAuthClient).where(OAuthClient.client_id == body["client_id"]))
    ).scalar_one()
    assert client_row.secret_hash != body["client_secret"]
    assert body["client_secret"] not in client_row.secret_hash


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
    cases = {
        "unknown field": {"name": "X", "email": email, "password": PASSWORD, "is_admin": True},
        "scopes injected": {"name": "X", "email": email, "password": PASSWORD, "scopes": ["admin"]},
        "short password": {"name": "X", "email": email, "password": "short"},
        "bad email": {"name": "X", "email": "not-an-email", "password": PASSWORD},
        "blank name": {"name": "   ", "email": email, "password": PASSWORD},
        "password is email": {"name": "X", "email": email, "password": email},
        "missing password": {"name": "X", "email": email},
    }
    for case, body in cases.items():
        response = await client.post("/v1/crm/customers", json=body)
        assert response.status_code == 422, case
        assert response.json()["error"] in {"ValidationError", "WeakPassword"}, case
        assert PASSWORD not in response.text, case  # submitted secrets are never echoed
    assert await _count(session, email) == 0
