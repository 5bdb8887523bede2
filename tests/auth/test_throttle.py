"""Brute force: repeated failures per account and per client address get 429 with Retry-After."""

import asyncio

from tests.auth.conftest import client_from_new_address
from tests.factories import PASSWORD, create_customer, unique_email


async def _login(http, email: str, password: str):  # type: ignore[no-untyped-def]
    return await http.post("/v1/auth/login", json={"email": email, "password": password})


async def test_failed_logins_per_account_are_throttled(strict_app, strict_client) -> None:
    customer = await create_customer(strict_client)
    for _ in range(3):
        wrong = await _login(strict_client, customer["email"], "wrong password!!")
        assert wrong.status_code == 400
    throttled = await _login(strict_client, customer["email"], PASSWORD)  # even the right one
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "temporarily_unavailable"
    assert 1 <= int(throttled.headers["retry-after"]) <= 2
    # The account's limit holds from another address too.
    async with client_from_new_address(strict_app) as elsewhere:
        from_elsewhere = await elsewhere.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": customer["email"], "password": PASSWORD},
        )
        assert from_elsewhere.status_code == 429
        other = await create_customer(elsewhere)  # other accounts from there are fine
        assert (await _login(elsewhere, other["email"], PASSWORD)).status_code == 200
    await asyncio.sleep(float(throttled.headers["retry-after"]) + 0.1)
    assert (await _login(strict_client, customer["email"], PASSWORD)).status_code == 200


async def test_successful_logins_do_not_count(strict_client) -> None:
    customer = await create_customer(strict_client)
    for _ in range(5):
        assert (await _login(strict_client, customer["email"], PASSWORD)).status_code == 200
    assert (await _login(strict_client, customer["email"], "wrong password!!")).status_code == 400
    assert (await _login(strict_client, customer["email"], PASSWORD)).status_code == 200


async def test_failures_per_address_are_throttled_across_accounts(strict_client) -> None:
    emails = [unique_email() for _ in range(6)]  # unknown accounts count like known ones
    for email in emails:
        assert (await _login(strict_client, email, "wrong password!!")).status_code == 400
    customer = await create_customer(strict_client)
    throttled = await _login(strict_client, customer["email"], PASSWORD)
    assert throttled.status_code == 429
    assert "retry-after" in throttled.headers


async def test_wrong_client_secrets_are_throttled(strict_client) -> None:
    customer = await create_customer(strict_client)
    for _ in range(3):
        response = await strict_client.post(
            "/v1/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(customer["client_id"], "guess"),
        )
        assert response.status_code == 401
    throttled = await strict_client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(customer["client_id"], customer["client_secret"]),
    )
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "temporarily_unavailable"
    assert throttled.headers["cache-control"] == "no-store"
    assert int(throttled.headers["retry-after"]) >= 1


async def test_password_reset_requests_are_throttled_the_same_for_any_email(
    strict_client,
) -> None:
    customer = await create_customer(strict_client)
    for email in (customer["email"], unique_email()):
        answers = [
            await strict_client.post("/v1/auth/password-reset", json={"email": email})
            for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert answers[2].json()["error"] == "TooManyAttempts"
        assert int(answers[2].headers["retry-after"]) >= 1


async def test_bad_reset_tokens_are_throttled(strict_client) -> None:
    codes = []
    for _ in range(7):
        response = await strict_client.post(
            "/v1/auth/password-reset/confirm",
            json={"token": "guessed-token", "new_password": "a brand new passphrase"},
        )
        codes.append(response.status_code)
    assert codes == [400] * 6 + [429]
    assert response.headers["retry-after"]


async def test_throttle_state_holds_no_email_or_address_in_clear(strict_client, session) -> None:
    from sqlalchemy import select

    from cure.auth.models import AuthFailure

    email = unique_email()
    await _login(strict_client, email, "wrong password!!")
    keys = (await session.execute(select(AuthFailure.key))).scalars().all()
    assert keys and all(len(k) == 64 and email not in k and "127." not in k for k in keys)
