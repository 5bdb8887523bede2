"""The token endpoint (RFC 6749): grants, client authentication, errors, scopes; and login."""

import uuid

from jose import jwt
from sqlalchemy import select

from tests.factories import (
    PASSWORD,
    bearer,
    create_customer,
    customer_with_token,
    get_token,
    order_body,
    password_login,
)

# The base scopes and app:<id> of every public app.
DEFAULT_SCOPES = {
    "account:read",
    "account:write",
    "app:air_quality",
    "app:flood_susceptibility",
    "app:heat_exposure",
    "app:roi_stats",
    "app:suhi",
    "app:urban_green",
    "orders:read",
    "orders:write",
}
ANY_ORDER = "/v1/orders/00000000-0000-0000-0000-000000000000"


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
        assert set(body["scope"].split()) == DEFAULT_SCOPES
        # RFC 6749 section 4.4.3: no refresh token for client credentials.
        assert "refresh_token" not in body


async def test_token_claims_are_complete(client, settings) -> None:
    customer = await create_customer(client)
    token = await get_token(client, customer)
    claims = jwt.decode(
        token,
        settings.jwt_secret.get_secret_value(),
        algorithms=["HS256"],
        audience="cure-api",
        issuer="cure",
    )
    assert claims["sub"] == customer["customer_id"]
    assert claims["client_id"] == customer["client_id"]
    assert {"exp", "iat", "jti", "iss", "aud", "scope"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"


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
    assert response.headers["cache-control"] == "no-store"


async def test_unknown_client_and_malformed_basic_header_are_invalid_client(client) -> None:
    unknown = await client.post(
        "/v1/auth/token", data={"grant_type": "client_credentials"}, auth=("cure-nobody", "x")
    )
    malformed = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic !!!not-base64"},
    )
    no_client = await client.post("/v1/auth/token", data={"grant_type": "client_credentials"})
    for response in (unknown, malformed, no_client):
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic")


async def test_grant_type_errors_follow_rfc6749(client) -> None:
    customer = await create_customer(client)
    auth = (customer["client_id"], customer["client_secret"])
    missing = await client.post("/v1/auth/token", data={}, auth=auth)
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    unsupported = await client.post("/v1/auth/token", data={"grant_type": "implicit"}, auth=auth)
    assert unsupported.status_code == 400
    assert unsupported.json()["error"] == "unsupported_grant_type"
    as_json = await client.post("/v1/auth/token", json={"grant_type": "client_credentials"})
    assert as_json.status_code == 400
    assert as_json.json()["error"] == "invalid_request"


async def test_repeated_parameters_and_two_auth_methods_are_invalid_request(client) -> None:
    customer = await create_customer(client)
    auth = (customer["client_id"], customer["client_secret"])
    repeated = await client.post(
        "/v1/auth/token",
        content="grant_type=client_credentials&scope=orders:read&scope=admin",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=auth,
    )
    assert repeated.status_code == 400
    assert repeated.json() == {
        "error": "invalid_request",
        "error_description": "repeated parameter: scope",
    }
    both = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": customer["client_id"]},
        auth=auth,
    )
    assert both.status_code == 400
    assert both.json()["error"] == "invalid_request"


async def test_scope_subset_unknown_and_malformed_scope(client) -> None:
    customer = await create_customer(client)
    auth = (customer["client_id"], customer["client_secret"])
    narrow = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials", "scope": "orders:read"},
        auth=auth,
    )
    assert narrow.json()["scope"] == "orders:read"
    for scope in ("admin", "orders:read logs:write", 'orders:read "quoted"'):
        refused = await client.post(
            "/v1/auth/token", data={"grant_type": "client_credentials", "scope": scope}, auth=auth
        )
        assert refused.status_code == 400, scope
        assert refused.json()["error"] == "invalid_scope", scope


async def test_password_grant_with_the_public_client(client) -> None:
    customer = await create_customer(client)
    tokens = await password_login(client, customer["email"])
    assert set(tokens["scope"].split()) == DEFAULT_SCOPES
    assert tokens["refresh_token"]
    claims = jwt.get_unverified_claims(tokens["access_token"])
    assert claims["client_id"] == "cure-portal"
    assert claims["sub"] == customer["customer_id"]
    me = await client.get("/v1/crm/customers/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == customer["email"]


async def test_password_grant_with_the_customers_own_client(client) -> None:
    customer = await create_customer(client)
    other = await create_customer(client)
    form = {"grant_type": "password", "username": customer["email"], "password": PASSWORD}
    own = await client.post(
        "/v1/auth/token", data=form, auth=(customer["client_id"], customer["client_secret"])
    )
    assert own.status_code == 200
    assert (
        jwt.get_unverified_claims(own.json()["access_token"])["client_id"]
        == (customer["client_id"])
    )
    foreign = await client.post(
        "/v1/auth/token", data=form, auth=(other["client_id"], other["client_secret"])
    )
    assert foreign.status_code == 400
    assert foreign.json()["error"] == "invalid_grant"


async def test_password_grant_errors(client) -> None:
    customer = await create_customer(client)
    cases = {
        "wrong password": ({"username": customer["email"], "password": "wrong password!"}, 400),
        "unknown email": ({"username": "nobody@example.org", "password": PASSWORD}, 400),
        "missing password": ({"username": customer["email"]}, 400),
        "public client with a secret": (
            {
                "username": customer["email"],
                "password": PASSWORD,
                "client_id": "cure-portal",
                "client_secret": "guess",
            },
            401,
        ),
    }
    for case, (form, code) in cases.items():
        response = await client.post("/v1/auth/token", data={"grant_type": "password", **form})
        assert response.status_code == code, case
        expected = {400: "invalid_request" if "missing" in case else "invalid_grant"}
        assert response.json()["error"] == expected.get(code, "invalid_client"), case
        assert PASSWORD not in response.text
    wrong = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": customer["email"], "password": "x" * 12},
    )
    unknown = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "password",
            "username": "no-" + customer["email"],
            "password": "x" * 12,
        },
    )
    # The same answer for a wrong password and an unknown account: emails cannot be probed.
    assert wrong.json() == unknown.json()


async def test_public_client_cannot_use_client_credentials(client) -> None:
    response = await client.post(
        "/v1/auth/token", data={"grant_type": "client_credentials", "client_id": "cure-portal"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_login_returns_the_token_response(client) -> None:
    customer = await create_customer(client)
    response = await client.post(
        "/v1/auth/login",
        json={"email": customer["email"].upper(), "password": PASSWORD, "scope": "orders:read"},
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert body["scope"] == "orders:read"
    wrong = await client.post(
        "/v1/auth/login", json={"email": customer["email"], "password": "not it at all"}
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    extra = await client.post(
        "/v1/auth/login",
        json={"email": customer["email"], "password": PASSWORD, "client_id": "cure-x"},
    )
    assert extra.status_code == 422


async def test_disabled_customer_cannot_get_tokens(client, session) -> None:
    from cure.auth.models import Customer

    customer = await create_customer(client)
    row = await session.get(Customer, uuid.UUID(customer["customer_id"]))
    row.is_active = False
    await session.commit()
    by_client = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(customer["client_id"], customer["client_secret"]),
    )
    assert by_client.status_code == 401
    by_password = await client.post(
        "/v1/auth/login", json={"email": customer["email"], "password": PASSWORD}
    )
    assert by_password.status_code == 400
    assert by_password.json()["error"] == "invalid_grant"


async def test_missing_and_garbage_bearer_tokens_are_401(client) -> None:
    _, headers = await customer_with_token(client)
    assert (await client.get(ANY_ORDER, headers=headers)).status_code == 404
    assert (await client.get(ANY_ORDER)).status_code == 401
    for value in ("Bearer not.a.token", "Bearer ", "Basic abc", "Bearer " + "a" * 10000):
        response = await client.get(ANY_ORDER, headers={"Authorization": value})
        assert response.status_code == 401, value[:20]
        assert response.json()["error"] == "InvalidToken"
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_token_without_scope_gets_403_insufficient_scope(client) -> None:
    customer = await create_customer(client)
    read_only = await get_token(client, customer, scope="orders:read")
    response = await client.post(
        "/v1/apps/roi_stats/orders", json=order_body(), headers=bearer(read_only)
    )
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    no_app = await get_token(client, customer, scope="orders:read orders:write")
    response = await client.post(
        "/v1/apps/roi_stats/orders", json=order_body(), headers=bearer(no_app)
    )
    assert response.status_code == 403
    assert "app:roi_stats" in response.json()["detail"]
    no_account = await get_token(client, customer, scope="orders:read")
    me = await client.get("/v1/crm/customers/me", headers=bearer(no_account))
    assert me.status_code == 403
    assert me.json()["error"] == "insufficient_scope"


async def test_disabled_customer_token_stops_working(client, session) -> None:
    from cure.auth.models import Customer

    customer, headers = await customer_with_token(client)
    ok = await client.get(ANY_ORDER, headers=headers)
    assert ok.status_code == 404
    row = await session.get(Customer, uuid.UUID(customer["customer_id"]))
    row.is_active = False
    await session.commit()
    refused = await client.get(ANY_ORDER, headers=headers)
    assert refused.status_code == 401


async def test_every_endpoint_declares_its_scope_in_openapi(client) -> None:
    spec = (await client.get("/openapi.json")).json()
    flows = spec["components"]["securitySchemes"]["OAuth2"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == "/v1/auth/token"
    assert "orders:read" in flows["password"]["scopes"]
    public = {
        ("post", "/v1/crm/customers"),
        ("get", "/v1/apps"),
        ("get", "/v1/apps/{app_id}"),
        ("get", "/health"),
        ("get", "/health/live"),
        ("get", "/health/ready"),
        ("get", "/metrics"),  # for Prometheus; keep it to the operators' network at the proxy
        ("get", "/v1/storage/{key}"),
        ("get", "/v1/auth/jwks.json"),
        ("post", "/v1/auth/login"),
        ("post", "/v1/auth/password-reset"),
        ("post", "/v1/auth/password-reset/confirm"),
        # the catalogue: anyone searches public products; a token adds the caller's own
        ("get", "/v1/ccsi/description.xml"),
        ("get", "/v1/ccsi/search"),
        ("get", "/v1/ccsi/{collection}/search"),
        ("get", "/v1/ccsi/collections"),
        ("get", "/v1/ccsi/{collection}/products/{identifier}"),
        # OGC API - Processes: the documents and process descriptions, like /v1/apps
        ("get", "/ogc"),
        ("get", "/ogc/conformance"),
        ("get", "/ogc/processes"),
        ("get", "/ogc/processes/{process_id}"),
        # the STAC API over the catalogue: public like the CCSI search
        ("get", "/stac"),
        ("get", "/stac/conformance"),
        ("get", "/stac/collections"),
        ("get", "/stac/collections/{collection_id}"),
        ("get", "/stac/collections/{collection_id}/items"),
        ("get", "/stac/collections/{collection_id}/items/{item_id}"),
        ("get", "/stac/search"),
        ("post", "/stac/search"),
        # the portal: its public pages, and its cookie sessions (a login, the refresh cookie)
        ("get", "/v1/portal/config"),
        ("get", "/v1/portal/basemap"),
        ("get", "/v1/portal/storylines"),
        ("get", "/v1/portal/storylines/{slug}"),
        ("get", "/v1/portal/places"),
        ("get", "/v1/portal/apps/{app_id}/dates"),
        ("post", "/v1/portal/session"),
        ("post", "/v1/portal/session/refresh"),
        ("delete", "/v1/portal/session"),
        # quicklooks of catalogue products: public ones for anyone, like the product itself
        ("get", "/v1/ccsi/{collection}/products/{identifier}/assets/{asset}/quicklook"),
        ("get", "/v1/ccsi/{collection}/products/{identifier}/assets/{asset}/quicklook.png"),
    }
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if (method, path) in public or path.startswith("/v1/auth/"):
                continue
            requirements = operation.get("security", [])
            scopes = [s for r in requirements for s in r.get("OAuth2", [])]
            assert scopes, f"{method.upper()} {path} declares no scope"


async def test_stored_refresh_tokens_are_hashed(client, session) -> None:
    from cure.auth.models import RefreshToken

    customer = await create_customer(client)
    tokens = await password_login(client, customer["email"])
    rows = (
        await session.execute(
            select(RefreshToken).where(
                RefreshToken.customer_id == uuid.UUID(customer["customer_id"])
            )
        )
    ).scalars()
    hashes = [row.token_hash for row in rows]
    assert len(hashes) == 1
    assert tokens["refresh_token"] not in hashes[0]


async def test_hostile_input_gets_a_clear_4xx_never_a_500(client) -> None:
    customer = await create_customer(client)
    auth = (customer["client_id"], customer["client_secret"])
    nul = "a\x00b"
    answers = {
        "login email": await client.post("/v1/auth/login", json={"email": nul, "password": "x"}),
        "basic client id": await client.post(
            "/v1/auth/token", data={"grant_type": "client_credentials"}, auth=(nul, "y")
        ),
        "username": await client.post(
            "/v1/auth/token", data={"grant_type": "password", "username": nul, "password": "y"}
        ),
        "refresh token": await client.post(
            "/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": nul, "client_id": "cure-portal"},
        ),
        "registration": await client.post(
            "/v1/crm/customers",
            json={"name": nul, "email": "nul@example.org", "password": PASSWORD},
        ),
        "reset token": await client.post(
            "/v1/auth/password-reset/confirm", json={"token": nul, "new_password": PASSWORD}
        ),
        "introspected token": await client.post(
            "/v1/auth/introspect", data={"token": nul}, auth=auth
        ),
        "revoked token": await client.post("/v1/auth/revoke", data={"token": nul}, auth=auth),
        "huge username": await client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": "é" * 5000, "password": "y"},
        ),
    }
    for case, response in answers.items():
        assert 400 <= response.status_code < 500, (case, response.text)
        assert "error" in response.json(), case
