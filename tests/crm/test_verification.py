"""Email verification: a single-use mailed token; under CURE_REQUIRE_EMAIL_VERIFICATION an
unverified account logs in but cannot order."""

import re

import httpx
import pytest

from tests.conftest import loopback_address, started_app
from tests.factories import bearer, create_customer, get_token, order_body

VERIFY = "/v1/crm/customers/me/verify"
RESEND = "/v1/crm/customers/me/verification-email"


def _token_of(message) -> str:  # type: ignore[no-untyped-def]
    match = re.search(r'"token": "([A-Za-z0-9_-]+)"', message.get_content())
    assert match, message.get_content()
    return match.group(1)


@pytest.fixture(scope="module")
async def verifying_app(settings):  # type: ignore[no-untyped-def]
    async with started_app(settings.model_copy(update={"require_email_verification": True})) as app:
        yield app


@pytest.fixture
async def verifying_client(verifying_app):  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=verifying_app, client=(loopback_address(), 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
        yield http


async def test_by_default_registration_works_at_once_and_verification_is_on_request(
    client, mailbox
) -> None:
    customer = await create_customer(client)
    headers = bearer(await get_token(client, customer))
    assert mailbox.to(customer["email"]) == []  # the original flow: no mail at registration
    ordered = await client.post("/v1/apps/roi_stats/orders", json=order_body(), headers=headers)
    assert ordered.status_code == 202
    asked = await client.post(RESEND, headers=headers)
    assert asked.status_code == 202
    token = _token_of(await mailbox.wait_for(customer["email"]))
    verified = await client.post(VERIFY, json={"token": token}, headers=headers)
    assert verified.status_code == 200
    assert verified.json()["email_verified_at"] is not None
    again = await client.post(RESEND, headers=headers)
    assert again.json()["detail"] == "your email is verified already"


async def test_an_unverified_account_logs_in_but_cannot_order(verifying_client, mailbox) -> None:
    customer = await create_customer(verifying_client)
    headers = bearer(await get_token(verifying_client, customer))  # logging in works
    me = await verifying_client.get("/v1/crm/customers/me", headers=headers)
    assert me.status_code == 200 and me.json()["email_verified_at"] is None
    refused = await verifying_client.post(
        "/v1/apps/roi_stats/orders", json=order_body(), headers=headers
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "EmailNotVerified"

    message = await mailbox.wait_for(customer["email"])  # mailed at registration
    assert message["Subject"] == "Confirm your CURE email address"
    token = _token_of(message)
    assert (
        await verifying_client.post(VERIFY, json={"token": token}, headers=headers)
    ).status_code == 200
    ordered = await verifying_client.post(
        "/v1/apps/roi_stats/orders", json=order_body(), headers=headers
    )
    assert ordered.status_code == 202
    reused = await verifying_client.post(VERIFY, json={"token": token}, headers=headers)
    assert reused.status_code == 400
    assert reused.json()["error"] == "InvalidVerificationToken"


async def test_a_token_works_only_for_the_account_it_was_mailed_to(
    verifying_client, mailbox
) -> None:
    owner = await create_customer(verifying_client)
    token = _token_of(await mailbox.wait_for(owner["email"]))
    other = await create_customer(verifying_client)
    other_headers = bearer(await get_token(verifying_client, other))
    stolen = await verifying_client.post(VERIFY, json={"token": token}, headers=other_headers)
    assert stolen.status_code == 400
    guessed = await verifying_client.post(
        VERIFY, json={"token": "a-guessed-token"}, headers=other_headers
    )
    assert guessed.status_code == 400
    assert (await verifying_client.post(VERIFY, json={"token": token})).status_code == 401
