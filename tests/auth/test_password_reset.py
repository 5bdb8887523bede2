"""Password reset end to end through a real SMTP server (aiosmtpd on 127.0.0.1)."""

import logging
import re
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from cure.auth.models import PasswordResetToken
from tests.conftest import free_port, loopback_address, until
from tests.factories import (
    PASSWORD,
    bearer,
    create_customer,
    get_token,
    password_login,
    unique_email,
)

NEW_PASSWORD = "a completely new passphrase"
CONFIRM = "/v1/auth/password-reset/confirm"


def _token_of(message) -> str:  # type: ignore[no-untyped-def]
    match = re.search(r'"token": "([A-Za-z0-9_-]+)"', message.get_content())
    assert match, message.get_content()
    return match.group(1)


async def _reset_token(http, mailbox, email: str) -> str:  # type: ignore[no-untyped-def]
    before = len(mailbox.to(email))
    response = await http.post("/v1/auth/password-reset", json={"email": email})
    assert response.status_code == 202
    await until(lambda: len(mailbox.to(email)) > before)  # the new mail stays once it came
    return _token_of(mailbox.to(email)[-1])


async def test_reset_end_to_end_the_mailed_token_works_once(client, mailbox, session) -> None:
    customer = await create_customer(client)
    email = customer["email"]
    login = await password_login(client, email)

    known = await client.post("/v1/auth/password-reset", json={"email": email})
    unknown = await client.post("/v1/auth/password-reset", json={"email": unique_email()})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()  # no account enumeration

    message = await mailbox.wait_for(email)
    assert message["Subject"] == "Reset your CURE password"
    assert message["From"] == "CURE <noreply@cure.invalid>"
    token = _token_of(message)
    stored = (
        await session.execute(
            select(PasswordResetToken).where(
                PasswordResetToken.customer_id == uuid.UUID(customer["customer_id"])
            )
        )
    ).scalar_one()
    assert token not in stored.token_hash  # stored hashed
    assert timedelta(minutes=29) < stored.expires_at - stored.created_at <= timedelta(minutes=30)

    weak = await client.post(CONFIRM, json={"token": token, "new_password": email})
    assert weak.status_code == 422
    assert weak.json()["error"] == "WeakPassword"  # a weak password does not spend the token

    done = await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 204
    again = await client.post(
        CONFIRM, json={"token": token, "new_password": "yet another passphrase"}
    )
    assert again.status_code == 400
    assert again.json()["error"] == "InvalidResetToken"

    assert (
        await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    ).status_code == 400
    assert (
        await client.post("/v1/auth/login", json={"email": email, "password": NEW_PASSWORD})
    ).status_code == 200
    # The refresh tokens from before the reset (and the access tokens issued with them) are gone.
    refresh = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": login["refresh_token"]},
    )
    assert refresh.json()["error"] == "invalid_grant"
    me = await client.get("/v1/crm/customers/me", headers=bearer(login["access_token"]))
    assert me.status_code == 401
    # Every client's secret was replaced: the old credentials no longer get tokens.
    assert (
        await client.post(
            "/v1/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(customer["client_id"], customer["client_secret"]),
        )
    ).status_code == 401


async def test_a_reset_takes_the_account_back_from_whoever_set_up_clients(client, mailbox) -> None:
    """Someone who knew the password made a client and got tokens; the owner resets the password:
    every token and every client secret of theirs stops working, and the owner gets new ones."""
    customer = await create_customer(client)
    intruder_login = await password_login(client, customer["email"])
    intruder = bearer(intruder_login["access_token"])
    made = await client.post(
        "/v1/crm/customers/me/clients", json={"name": "mine now"}, headers=intruder
    )
    assert made.status_code == 201
    planted = made.json()
    planted_token = await get_token(client, planted)
    script_token = await get_token(client, customer)

    token = await _reset_token(client, mailbox, customer["email"])
    done = await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 204

    for old in (planted_token, script_token, intruder_login["access_token"]):
        assert (await client.get("/v1/crm/customers/me", headers=bearer(old))).status_code == 401
    for credentials in (planted, customer):
        refused = await client.post(
            "/v1/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(credentials["client_id"], credentials["client_secret"]),
        )
        assert refused.status_code == 401
    # The owner signs in with the new password, sees the clients, removes the planted one and
    # gives the script a new secret.
    owner = bearer((await password_login(client, customer["email"], NEW_PASSWORD))["access_token"])
    listed = await client.get("/v1/crm/customers/me/clients", headers=owner)
    assert {c["client_id"] for c in listed.json()} == {customer["client_id"], planted["client_id"]}
    gone = await client.delete(
        f"/v1/crm/customers/me/clients/{planted['client_id']}", headers=owner
    )
    assert gone.status_code == 204
    rotated = await client.post(
        f"/v1/crm/customers/me/clients/{customer['client_id']}/secret", headers=owner
    )
    assert rotated.status_code == 200
    assert await get_token(client, rotated.json())


async def test_unknown_accounts_get_no_email(client, mailbox) -> None:
    email = unique_email()
    response = await client.post("/v1/auth/password-reset", json={"email": email})
    assert response.status_code == 202
    assert mailbox.to(email) == []


async def test_using_one_reset_token_spends_the_others(client, mailbox) -> None:
    customer = await create_customer(client)
    first = await _reset_token(client, mailbox, customer["email"])
    second = await _reset_token(client, mailbox, customer["email"])
    assert first != second
    ok = await client.post(CONFIRM, json={"token": second, "new_password": NEW_PASSWORD})
    assert ok.status_code == 204
    stale = await client.post(
        CONFIRM, json={"token": first, "new_password": "yet another passphrase"}
    )
    assert stale.status_code == 400


async def test_expired_reset_tokens_are_refused(client, mailbox, session) -> None:
    customer = await create_customer(client)
    token = await _reset_token(client, mailbox, customer["email"])
    await session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.customer_id == uuid.UUID(customer["customer_id"]))
        .values(expires_at=PasswordResetToken.created_at - timedelta(seconds=1))
    )
    await session.commit()
    response = await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})
    assert response.status_code == 400
    assert response.json()["error"] == "InvalidResetToken"


async def test_smtp_failure_is_logged_without_the_token_and_answered_the_same(
    settings, caplog
) -> None:
    import httpx

    from tests.conftest import started_app

    broken = settings.model_copy(update={"smtp_port": free_port()})
    async with (
        started_app(broken) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(loopback_address(), 50000)),
            base_url="http://cure.test",
        ) as http,
    ):
        customer = await create_customer(http)
        with caplog.at_level(logging.ERROR, logger="cure.auth.service"):
            response = await http.post("/v1/auth/password-reset", json={"email": customer["email"]})
    assert response.status_code == 202
    assert response.json()["detail"].startswith("if an account has this email")
    records = [r for r in caplog.records if "was not sent" in r.getMessage()]
    assert len(records) == 1
    logged = records[0].getMessage()
    assert customer["customer_id"] in logged
    assert "token" not in logged.lower().replace("reset", "")  # the secret never reaches logs
    assert customer["email"] not in logged


async def test_reset_input_is_validated(client) -> None:
    for body in ({"email": "not-an-email"}, {}, {"email": unique_email(), "extra": 1}):
        response = await client.post("/v1/auth/password-reset", json=body)
        assert response.status_code == 422
    missing = await client.post(CONFIRM, json={"token": "x"})
    assert missing.status_code == 422
