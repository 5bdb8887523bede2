"""An access token has one spelling: each of its three segments must be the unpadded base64url
that its bytes encode to. Other texts that lenient decoders read as the same bytes (spare bits of a
last character, '=' padding, '+' and '/', stray characters) are refused like any invalid token,
wherever a token is accepted."""

from tests.auth.spellings import other_spellings, spellings_answered
from tests.factories import bearer, create_customer, get_token

ME = "/v1/crm/customers/me"


async def test_other_spellings_of_a_token_are_refused(client) -> None:
    customer = await create_customer(client)
    token = await get_token(client, customer)
    assert (await client.get(ME, headers=bearer(token))).status_code == 200
    spellings = other_spellings(token)
    assert any(name.startswith("signature: spare bits") for name in spellings)
    assert "signature: padded" in spellings
    assert await spellings_answered(client, token, ME) == {}
    # The token itself still works: refusing its spellings did not revoke it.
    assert (await client.get(ME, headers=bearer(token))).status_code == 200


async def test_introspection_knows_only_the_token_itself(client) -> None:
    customer = await create_customer(client)
    auth = (customer["client_id"], customer["client_secret"])
    token = await get_token(client, customer)
    for name, spelled in other_spellings(token).items():
        answer = await client.post("/v1/auth/introspect", data={"token": spelled}, auth=auth)
        assert answer.status_code == 200, name
        assert answer.json() == {"active": False}, name
        # Nor does another spelling authenticate the caller of introspection.
        as_bearer = await client.post(
            "/v1/auth/introspect", data={"token": token}, headers=bearer(spelled)
        )
        assert as_bearer.status_code == 401, name
    active = await client.post("/v1/auth/introspect", data={"token": token}, auth=auth)
    assert active.json()["active"] is True
