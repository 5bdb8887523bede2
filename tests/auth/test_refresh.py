"""Refresh tokens rotate on every use; a reused one revokes its whole family."""

import asyncio
import uuid

from sqlalchemy import select

from cure.auth.models import RefreshToken
from tests.factories import PASSWORD, bearer, create_customer, password_login

ME = "/v1/crm/customers/me"


async def _refresh(http, refresh_token: str, **extra: str):  # type: ignore[no-untyped-def]
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    form.setdefault("client_id", "cure-portal")
    return await http.post("/v1/auth/token", data=form)


async def test_each_refresh_returns_a_new_refresh_token(client) -> None:
    customer = await create_customer(client)
    first = await password_login(client, customer["email"])
    second = await _refresh(client, first["refresh_token"])
    assert second.status_code == 200
    assert second.headers["cache-control"] == "no-store"
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    assert body["scope"] == first["scope"]
    third = await _refresh(client, body["refresh_token"])
    assert third.status_code == 200
    assert (await client.get(ME, headers=bearer(third.json()["access_token"]))).status_code == 200


async def test_reusing_a_rotated_refresh_token_revokes_the_family(
    committing_client, committing_session
) -> None:
    # The revocation is committed apart from the failing request: it must really commit.
    client, session = committing_client, committing_session
    customer = await create_customer(client)
    first = await password_login(client, customer["email"])
    second = (await _refresh(client, first["refresh_token"])).json()
    other_login = await password_login(client, customer["email"])  # another family

    reused = await _refresh(client, first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # The legitimate holder's newest refresh token and its access token die with the family...
    after = await _refresh(client, second["refresh_token"])
    assert after.status_code == 400
    assert after.json()["error"] == "invalid_grant"
    assert (await client.get(ME, headers=bearer(second["access_token"]))).status_code == 401
    assert (await client.get(ME, headers=bearer(first["access_token"]))).status_code == 401
    # ...while another login of the same customer is untouched.
    assert (await _refresh(client, other_login["refresh_token"])).status_code == 200
    family = (
        await session.execute(
            select(RefreshToken).where(
                RefreshToken.customer_id == uuid.UUID(customer["customer_id"])
            )
        )
    ).scalars()
    by_family: dict[uuid.UUID, list[RefreshToken]] = {}
    for row in family:
        by_family.setdefault(row.family_id, []).append(row)
    revoked = [rows for rows in by_family.values() if all(r.revoked_at for r in rows)]
    assert len(revoked) == 1 and len(revoked[0]) == 2
    first_row = next(r for r in revoked[0] if r.used_at is not None)
    assert first_row.replaced_by_id is not None  # the rotation chain is recorded


async def test_concurrent_use_of_one_refresh_token_lets_one_win(committing_client) -> None:
    client = committing_client  # concurrent requests: each needs a connection of its own
    customer = await create_customer(client)
    tokens = await password_login(client, customer["email"])
    answers = await asyncio.gather(*(_refresh(client, tokens["refresh_token"]) for _ in range(3)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 400, 400]
    # The others were replays of a rotated token: the winner's new refresh token dies with them.
    winner = next(a for a in answers if a.status_code == 200).json()
    assert (await _refresh(client, winner["refresh_token"])).json()["error"] == "invalid_grant"


async def test_refresh_errors(client) -> None:
    customer = await create_customer(client)
    tokens = await password_login(client, customer["email"])
    missing = await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "client_id": "cure-portal"}
    )
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    unknown = await _refresh(client, "not-a-refresh-token")
    assert unknown.json()["error"] == "invalid_grant"
    # An access token is not a refresh token.
    assert (await _refresh(client, tokens["access_token"])).json()["error"] == "invalid_grant"
    # Bound to the client it was issued to.
    other = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(customer["client_id"], customer["client_secret"]),
    )
    assert other.status_code == 400
    assert other.json()["error"] == "invalid_grant"
    # No scope beyond the original grant.
    narrow = await password_login(client, customer["email"], scope="orders:read")
    wider = await _refresh(client, narrow["refresh_token"], scope="orders:read orders:write")
    assert wider.status_code == 400
    assert wider.json()["error"] == "invalid_scope"
    # A narrower one is fine.
    ok = await _refresh(client, tokens["refresh_token"], scope="orders:read")
    assert ok.status_code == 200
    assert ok.json()["scope"] == "orders:read"


async def test_refresh_of_a_confidential_client_needs_its_secret(client) -> None:
    customer = await create_customer(client)
    auth = (customer["client_id"], customer["client_secret"])
    tokens = (
        await client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": customer["email"], "password": PASSWORD},
            auth=auth,
        )
    ).json()
    without_secret = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": customer["client_id"],
        },
    )
    assert without_secret.status_code == 401
    assert without_secret.json()["error"] == "invalid_client"
    with_secret = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=auth,
    )
    assert with_secret.status_code == 200


async def test_disabled_customer_cannot_refresh(client, session) -> None:
    from cure.auth.models import Customer

    customer = await create_customer(client)
    tokens = await password_login(client, customer["email"])
    row = await session.get(Customer, uuid.UUID(customer["customer_id"]))
    row.is_active = False
    await session.commit()
    refused = await _refresh(client, tokens["refresh_token"])
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
