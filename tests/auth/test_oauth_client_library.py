"""A standard OAuth2 client library (Authlib's httpx client, not our code) against the real server
running in uvicorn: obtain, use, refresh and revoke tokens."""

import os
import sys
import warnings
from collections.abc import Iterator

import authlib.deprecate  # noqa: F401 (installs its own "always" filter first, so ours wins)
import pytest

with warnings.catch_warnings():
    # Authlib announces a future move of its httpx integration; the current one is what we test.
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.httpx_client import AsyncOAuth2Client

from tests.conftest import _spawn, _stop, _wait_http, free_port
from tests.factories import PASSWORD, unique_email


@pytest.fixture(scope="module")
def live_api() -> Iterator[str]:
    """The API alone (no relay, no status manager) as a real uvicorn process on 127.0.0.1."""
    port = free_port()
    env = {
        **os.environ,
        "CURE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CURE_RUN_BACKGROUND_SERVICES": "false",
    }
    api = _spawn(
        [sys.executable, "-m", "cure", "api", "--host", "127.0.0.1", "--port", str(port)],
        "test-auth-api.log",
        env,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", api)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(api)


async def _register(api: str) -> dict:
    import httpx

    async with httpx.AsyncClient(base_url=api) as http:
        response = await http.post(
            "/v1/crm/customers",
            json={"name": "Library User", "email": unique_email(), "password": PASSWORD},
        )
        assert response.status_code == 201, response.text
        return response.json()


async def test_client_credentials_with_authlib(live_api) -> None:
    customer = await _register(live_api)
    async with AsyncOAuth2Client(
        client_id=customer["client_id"],
        client_secret=customer["client_secret"],
        scope="account:read orders:read",
        base_url=live_api,
    ) as oauth:
        token = await oauth.fetch_token(
            f"{live_api}/v1/auth/token", grant_type="client_credentials"
        )
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "account:read orders:read"
        me = await oauth.get("/v1/crm/customers/me")
        assert me.status_code == 200
        assert me.json()["customer_id"] == customer["customer_id"]

    # The library's other client authentication method works too.
    async with AsyncOAuth2Client(
        client_id=customer["client_id"],
        client_secret=customer["client_secret"],
        token_endpoint_auth_method="client_secret_post",
    ) as post_auth:
        token = await post_auth.fetch_token(
            f"{live_api}/v1/auth/token", grant_type="client_credentials"
        )
        assert "orders:write" in token["scope"].split()

    async with AsyncOAuth2Client(client_id=customer["client_id"], client_secret="wrong") as wrong:
        with pytest.raises(OAuthError) as refused:
            await wrong.fetch_token(f"{live_api}/v1/auth/token", grant_type="client_credentials")
        assert refused.value.error == "invalid_client"


async def test_password_refresh_and_revoke_with_authlib(live_api) -> None:
    customer = await _register(live_api)
    token_url = f"{live_api}/v1/auth/token"
    async with AsyncOAuth2Client(
        client_id="cure-portal", token_endpoint_auth_method="none", base_url=live_api
    ) as oauth:
        first = await oauth.fetch_token(token_url, username=customer["email"], password=PASSWORD)
        assert first["refresh_token"]
        assert (await oauth.get("/v1/crm/customers/me")).status_code == 200

        second = await oauth.refresh_token(token_url)
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        assert (await oauth.get("/v1/crm/customers/me")).status_code == 200

        # Replaying the rotated refresh token is refused and ends the whole login.
        with pytest.raises(OAuthError) as replay:
            await oauth.refresh_token(token_url, refresh_token=first["refresh_token"])
        assert replay.value.error == "invalid_grant"
        assert (await oauth.get("/v1/crm/customers/me")).status_code == 401

    async with AsyncOAuth2Client(
        client_id="cure-portal", token_endpoint_auth_method="none", base_url=live_api
    ) as oauth:
        await oauth.fetch_token(token_url, username=customer["email"], password=PASSWORD)
        assert (await oauth.get("/v1/crm/customers/me")).status_code == 200
        revoked = await oauth.revoke_token(
            f"{live_api}/v1/auth/revoke",
            token=oauth.token["access_token"],
            token_type_hint="access_token",
        )
        assert revoked.status_code == 200
        assert (await oauth.get("/v1/crm/customers/me")).status_code == 401
        refresh_revoked = await oauth.revoke_token(
            f"{live_api}/v1/auth/revoke",
            token=oauth.token["refresh_token"],
            token_type_hint="refresh_token",
        )
        assert refresh_revoked.status_code == 200
        with pytest.raises(OAuthError) as after:
            await oauth.refresh_token(token_url)
        assert after.value.error == "invalid_grant"
