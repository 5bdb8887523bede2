"""Password hashing (argon2id, upgraded at login) and the password policy."""

import uuid

import httpx

from cure.auth import passwords
from cure.auth.models import Customer
from tests.conftest import loopback_address
from tests.factories import PASSWORD, create_customer, problems, unique_email


async def test_hashes_are_upgraded_at_login_when_parameters_change(
    committing_client, committing_session, settings
) -> None:
    from tests.conftest import started_app

    # A second app with its own engine reads the account: it must really be committed.
    client, session = committing_client, committing_session

    customer = await create_customer(client)
    customer_id = uuid.UUID(customer["customer_id"])
    before = (await session.get(Customer, customer_id)).password_hash
    assert before.startswith("$argon2id$v=19$m=19456,t=2,p=1$")

    stronger = settings.model_copy(update={"argon2_memory_kib": 24576, "argon2_time_cost": 3})
    async with (
        started_app(stronger) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(loopback_address(), 50000)),
            base_url="http://cure.test",
        ) as http,
    ):
        wrong = await http.post(
            "/v1/auth/login", json={"email": customer["email"], "password": "wrong password!"}
        )
        assert wrong.status_code == 400
        session.expire_all()
        assert (await session.get(Customer, customer_id)).password_hash == before
        login = await http.post(
            "/v1/auth/login", json={"email": customer["email"], "password": PASSWORD}
        )
        assert login.status_code == 200
    session.expire_all()
    after = (await session.get(Customer, customer_id)).password_hash
    assert after.startswith("$argon2id$v=19$m=24576,t=3,p=1$")
    # The upgraded hash still verifies.
    again = await client.post(
        "/v1/auth/login", json={"email": customer["email"], "password": PASSWORD}
    )
    assert again.status_code == 200


def test_settings_refuse_argon2_below_owasp_minimum() -> None:
    import pytest
    from pydantic import ValidationError

    from cure.config import Settings

    for update in ({"argon2_memory_kib": 19455}, {"argon2_time_cost": 1}):
        with pytest.raises(ValidationError):
            Settings(**update)


def test_bcrypt_and_garbage_hashes_never_verify(settings) -> None:
    from cure.auth.passwords import verify_password

    bcrypt_hash = "$2b$12$KIXQJ8e0d0w1f8Q9Y0b0XeQmGq8m1n1l1p1q1r1s1t1u1v1w1x1y"
    assert verify_password(settings, "anything", bcrypt_hash) == (False, None)
    assert verify_password(settings, "anything", "not a hash") == (False, None)


async def test_password_policy_errors_are_clear(client) -> None:
    email = unique_email()
    local = email.split("@")[0]
    cases = {
        "short1234": "at least 10 characters",
        email: "must not be the email address",
        email.upper(): "must not be the email address",
        local + "12": "built from the email address",
        "Test Customer": "must not be the name",
        "aaaaaaaaaaaa": "at least 4 different characters",
        "password123": "too common",
    }
    for password, problem in cases.items():
        response = await client.post(
            "/v1/crm/customers",
            json={"name": "Test Customer", "email": email, "password": password},
        )
        assert response.status_code == 422, password
        body = response.json()
        assert body["error"] == "WeakPassword", password
        assert any(problem in p for p in problems(body)), (password, body)
        assert password not in response.text
    # Long passphrases of any characters are fine; composition rules are not imposed.
    ok = await client.post(
        "/v1/crm/customers",
        json={"name": "Test Customer", "email": email, "password": "correct horse battery staple"},
    )
    assert ok.status_code == 201


def test_a_client_secret_never_reads_as_a_command_line_option() -> None:
    # One token in 64 starts with "-": among 2,000 the chance of none is about 2e-14.
    drawn = [passwords.new_client_secret() for _ in range(2000)]
    assert not [secret for secret in drawn if secret.startswith("-")]
    assert len(set(drawn)) == len(drawn) and {len(secret) for secret in drawn} == {43}
