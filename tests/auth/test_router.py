import base64
import json
import time
import uuid

from jose import jwt

from tests.factories import create_customer, customer_with_token, get_token, order_body


async def test_token_by_basic_auth_and_by_form_fields(client) -> None:
    customer = await create_customer(client)
    by_basic = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(customer["client_id"], customer["client_secret"]),
    )
    by_form = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": customer["client_id"],
            "client_secret": customer["client_secret"],
        },
    )
    for response in (by_basic, by_form):
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 3600
        assert set(body["scope"].split()) == {"app:roi_stats", "orders:read", "orders:write"}


async def test_token_claims_are_complete(client, settings) -> None:
    customer = await create_customer(client)
    token = await get_token(client, customer)
    claims = jwt.decode(
        token, settings.jwt_secret, algorithms=["HS256"], audience="cure-api", issuer="cure"
    )
    assert claims["sub"] == customer["customer_id"]
    assert claims["client_id"] == customer["client_id"]
    assert {"exp", "iat", "jti", "iss", "aud", "scope"} <= set(claims)


async def test_wrong_secret_is_invalid_client(client) -> None:
    customer = await create_customer(client)
    response = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(customer["client_id"], "not-the-secret"),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "error_description" in response.json()
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_unknown_client_is_invalid_client(client) -> None:
    response = await client.post(
        "/v1/auth/token", data={"grant_type": "client_credentials"}, auth=("cure-nobody", "x")
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_grant_type_errors_follow_rfc6749(client) -> None:
    customer = await create_customer(client)
    auth = (customer["client_id"], customer["client_secret"])
    missing = await client.post("/v1/auth/token", data={}, auth=auth)
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    unsupported = await client.post("/v1/auth/token", data={"grant_type": "implicit"}, auth=auth)
    assert unsupported.status_code == 400
    assert unsupported.json()["error"] == "unsupported_grant_type"


async def test_scope_subset_and_unknown_scope(client) -> None:
    customer = await create_customer(client)
    auth = (customer["client_id"], customer["client_secret"])
    narrow = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials", "scope": "orders:read"},
        auth=auth,
    )
    assert narrow.json()["scope"] == "orders:read"
    too_much = await client.post(
        "/v1/auth/token", data={"grant_type": "client_credentials", "scope": "admin"}, auth=auth
    )
    assert too_much.status_code == 400
    assert too_much.json()["error"] == "invalid_scope"


async def test_missing_and_garbage_bearer_tokens_are_401(client) -> None:
    customer, headers = await customer_with_token(client)
    assert (await client.get("/v1/orders/00000000-0000-0000-0000-000000000000")).status_code == 401
    response = await client.get(
        "/v1/orders/00000000-0000-0000-0000-000000000000",
        headers={"Authorization": "Bearer not.a.token"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "InvalidToken"
    assert response.headers["www-authenticate"].startswith("Bearer")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def test_forged_tokens_are_refused(client, settings) -> None:
    customer = await create_customer(client)
    token = await get_token(client, customer)
    claims = jwt.get_unverified_claims(token)
    now = int(time.time())
    forged = {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "wrong key": jwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256"),
        "expired": jwt.encode(
            {**claims, "iat": now - 7200, "exp": now - 3600}, settings.jwt_secret, algorithm="HS256"
        ),
        "wrong audience": jwt.encode(
            {**claims, "aud": "other"}, settings.jwt_secret, algorithm="HS256"
        ),
        "wrong issuer": jwt.encode(
            {**claims, "iss": "other"}, settings.jwt_secret, algorithm="HS256"
        ),
        "other algorithm": jwt.encode(claims, settings.jwt_secret, algorithm="HS512"),
        "tampered payload": ".".join(
            [
                token.split(".")[0],
                _b64({**claims, "scope": "admin orders:read"}),
                token.split(".")[2],
            ]
        ),
    }
    for name, bad in forged.items():
        response = await client.get(
            "/v1/orders/00000000-0000-0000-0000-000000000000",
            headers={"Authorization": f"Bearer {bad}"},
        )
        assert response.status_code == 401, name


async def test_token_without_scope_gets_403_insufficient_scope(client) -> None:
    customer = await create_customer(client)
    read_only = await get_token(client, customer, scope="orders:read")
    response = await client.post(
        "/v1/apps/roi_stats/orders",
        json=order_body(),
        headers={"Authorization": f"Bearer {read_only}"},
    )
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    no_app = await get_token(client, customer, scope="orders:read orders:write")
    response = await client.post(
        "/v1/apps/roi_stats/orders",
        json=order_body(),
        headers={"Authorization": f"Bearer {no_app}"},
    )
    assert response.status_code == 403
    assert "app:roi_stats" in response.json()["detail"]


async def test_disabled_customer_token_stops_working(client, session) -> None:
    from cure.crm.models import Customer

    customer, headers = await customer_with_token(client)
    ok = await client.get("/v1/orders/00000000-0000-0000-0000-000000000000", headers=headers)
    assert ok.status_code == 404
    row = await session.get(Customer, uuid.UUID(customer["customer_id"]))
    row.is_active = False
    await session.commit()
    refused = await client.get("/v1/orders/00000000-0000-0000-0000-000000000000", headers=headers)
    assert refused.status_code == 401
