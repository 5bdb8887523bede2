"""A customer's extra OAuth2 clients: create (secret shown once), list, rotate, delete."""

from sqlalchemy import select

from cure.auth.models import OAuthClient
from tests.factories import bearer, create_customer, customer_with_token, get_token

CLIENTS = "/v1/crm/customers/me/clients"


async def _token(http, client_id: str, secret: str, scope: str | None = None):  # type: ignore[no-untyped-def]
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    return await http.post("/v1/auth/token", data=form, auth=(client_id, secret))


async def test_create_list_and_use_an_extra_client(client, session) -> None:
    customer, headers = await customer_with_token(client)
    created = await client.post(
        CLIENTS, json={"name": "nightly script", "scopes": ["orders:read"]}, headers=headers
    )
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "nightly script"
    assert body["scopes"] == ["orders:read"]
    assert body["client_secret"]
    row = (
        await session.execute(select(OAuthClient).where(OAuthClient.client_id == body["client_id"]))
    ).scalar_one()
    assert body["client_secret"] not in row.secret_hash

    listed = (await client.get(CLIENTS, headers=headers)).json()
    assert {c["client_id"] for c in listed} == {customer["client_id"], body["client_id"]}
    assert all("client_secret" not in c for c in listed)  # shown once, never again

    token = await _token(client, body["client_id"], body["client_secret"])
    assert token.status_code == 200
    assert token.json()["scope"] == "orders:read"
    wider = await _token(client, body["client_id"], body["client_secret"], "orders:write")
    assert wider.json()["error"] == "invalid_scope"


async def test_a_client_cannot_get_more_than_the_callers_token(client) -> None:
    customer = await create_customer(client)
    narrow = bearer(await get_token(client, customer, scope="account:write orders:read"))
    refused = await client.post(
        CLIENTS, json={"name": "escalate", "scopes": ["orders:write"]}, headers=narrow
    )
    assert refused.status_code == 422
    assert refused.json()["error"] == "ScopeNotHeld"
    admin = await client.post(CLIENTS, json={"name": "x", "scopes": ["admin"]}, headers=narrow)
    assert admin.status_code == 422
    default = await client.post(CLIENTS, json={"name": "same as mine"}, headers=narrow)
    assert default.status_code == 201
    assert default.json()["scopes"] == ["account:write", "orders:read"]
    for body in (
        {"name": "x", "customer_id": customer["customer_id"]},
        {"name": "x", "client_secret": "chosen"},
        {"name": "x", "client_id": "cure-mine"},
        {},
    ):
        assert (await client.post(CLIENTS, json=body, headers=narrow)).status_code == 422


async def test_rotating_a_secret_kills_the_old_secret_and_its_tokens(client, settings) -> None:
    from jose import jwt

    customer, headers = await customer_with_token(client)
    created = (await client.post(CLIENTS, json={"name": "ci"}, headers=headers)).json()
    old_token = (await _token(client, created["client_id"], created["client_secret"])).json()
    # Token times are whole seconds: date this token a second back, as if issued a while ago.
    claims = jwt.get_unverified_claims(old_token["access_token"])
    earlier = jwt.encode(
        {**claims, "iat": claims["iat"] - 1},
        settings.jwt_secret.get_secret_value(),
        algorithm="HS256",
        headers={"typ": "at+jwt"},
    )
    old_headers = bearer(earlier)
    assert (await client.get(CLIENTS, headers=old_headers)).status_code == 200
    rotated = await client.post(f"{CLIENTS}/{created['client_id']}/secret", headers=headers)
    assert rotated.status_code == 200
    new_secret = rotated.json()["client_secret"]
    assert new_secret != created["client_secret"]
    assert rotated.json()["secret_rotated_at"] is not None
    old = await _token(client, created["client_id"], created["client_secret"])
    assert old.status_code == 401
    assert (await client.get(CLIENTS, headers=old_headers)).status_code == 401
    new = await _token(client, created["client_id"], new_secret)
    assert new.status_code == 200
    assert (
        await client.get(CLIENTS, headers=bearer(new.json()["access_token"]))
    ).status_code == 200


async def test_deleting_a_client_ends_its_tokens(client) -> None:
    customer, headers = await customer_with_token(client)
    created = (await client.post(CLIENTS, json={"name": "temp"}, headers=headers)).json()
    token = (await _token(client, created["client_id"], created["client_secret"])).json()
    deleted = await client.delete(f"{CLIENTS}/{created['client_id']}", headers=headers)
    assert deleted.status_code == 204
    assert (await client.get(CLIENTS, headers=bearer(token["access_token"]))).status_code == 401
    again = await _token(client, created["client_id"], created["client_secret"])
    assert again.status_code == 401
    assert created["client_id"] not in {
        c["client_id"] for c in (await client.get(CLIENTS, headers=headers)).json()
    }
    assert (
        await client.delete(f"{CLIENTS}/{created['client_id']}", headers=headers)
    ).status_code == 404
