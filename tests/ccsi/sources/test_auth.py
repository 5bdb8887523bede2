"""A source's credentials for remote calls (cure.ccsi.sources.auth), against real servers: a CURE
API process is the OAuth2 token endpoint (client credentials, password and rotating refresh
tokens, revocation for a real 401), a small HTTP signing service signs hrefs."""

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cure.ccsi.sources.auth import (
    MissingSecret,
    RefreshTokens,
    S3Access,
    SourceAuthError,
    source_auth,
)
from cure.ccsi.sources.schemas import SourceDocument
from tests.ccsi.sources.conftest import source_name, stac_document
from tests.conftest import Stack
from tests.factories import PASSWORD, bearer, create_customer


@pytest.fixture(scope="module")
def token_server() -> Iterator[str]:
    """A real CURE API process (HTTP only, no background services) as the token endpoint."""
    stack = Stack("sources-token", {"CURE_RUN_BACKGROUND_SERVICES": "false"})
    try:
        stack.start_api()
        yield stack.url
    finally:
        stack.stop()


@pytest.fixture
async def cure_http(token_server: str) -> Any:
    async with httpx.AsyncClient(base_url=token_server, timeout=15) as http:
        yield http


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def oauth2(token_server: str, **auth: Any) -> SourceDocument:
    return SourceDocument.model_validate(
        stac_document(auth={"type": "oauth2", "token_url": f"{token_server}/v1/auth/token", **auth})
    )


async def _me(http: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await http.get("/v1/crm/customers/me", headers=headers)).status_code


async def test_client_credentials_give_a_bearer_token_kept_until_shortly_before_it_expires(
    token_server, cure_http
) -> None:
    customer = await create_customer(cure_http)
    clock = Clock()
    auth = source_auth(
        oauth2(
            token_server,
            client_id=customer["client_id"],
            client_secret=customer["client_secret"],
        ),
        clock=clock,
    )
    first = await auth.headers()
    assert first["Authorization"].startswith("Bearer ")
    assert await _me(cure_http, first) == 200  # the token works at the source
    assert await auth.headers() == first  # kept, not fetched again

    clock.now += 3600 - 70  # CURE's tokens live an hour: still a minute and more to go
    assert await auth.headers() == first
    clock.now += 20  # within the last minute: replaced before it expires
    second = await auth.headers()
    assert second != first and await _me(cure_http, second) == 200


async def test_a_401_refreshes_the_token_once_for_all_who_saw_it(
    token_server, cure_http, caplog
) -> None:
    customer = await create_customer(cure_http)
    auth = source_auth(
        oauth2(
            token_server,
            client_id=customer["client_id"],
            client_secret=customer["client_secret"],
        )
    )
    headers = await auth.headers()
    token = headers["Authorization"].removeprefix("Bearer ")
    revoked = await cure_http.post(
        "/v1/auth/revoke",
        data={"token": token},
        auth=(customer["client_id"], customer["client_secret"]),
    )
    assert revoked.status_code == 200
    assert await _me(cure_http, headers) == 401  # the source refuses the token it gave

    # Several calls saw the 401 at once: one new token for all of them.
    caplog.set_level("INFO", logger="cure.ccsi.sources.auth")
    await asyncio.gather(*(auth.refresh() for _ in range(5)))
    fetched = [r for r in caplog.records if r.getMessage().startswith("token fetched")]
    assert len(fetched) == 1
    renewed = [await auth.headers() for _ in range(3)]
    assert renewed[0] != headers and renewed.count(renewed[0]) == 3
    assert await _me(cure_http, renewed[0]) == 200
    # The caller's shortcut: headers(refresh=True) after its own 401.
    again = await auth.headers(refresh=True)
    assert again != renewed[0] and await _me(cure_http, again) == 200


async def test_a_rotated_refresh_token_is_kept_for_the_process(token_server, cure_http) -> None:
    customer = await create_customer(cure_http)
    login = await cure_http.post(
        "/v1/auth/token",
        data={
            "grant_type": "password",
            "username": customer["email"],
            "password": PASSWORD,
            "client_id": "cure-portal",
        },
    )
    assert login.status_code == 200
    configured = login.json()["refresh_token"]
    kept = RefreshTokens()
    clock = Clock()
    document = oauth2(
        token_server, grant="refresh_token", client_id="cure-portal", refresh_token=configured
    )
    auth = source_auth(document, clock=clock, refresh_tokens=kept)
    first = await auth.headers()
    assert await _me(cure_http, first) == 200
    # CURE rotates refresh tokens and revokes the whole family when an old one comes back: the
    # next fetches work only if each uses the token the last answer handed back.
    for _ in range(2):
        clock.now += 3600
        following = await auth.headers()
        assert following != first and await _me(cure_http, following) == 200
        first = following
    # Another auth object of the same source in this process (a new version, say) uses the
    # kept token too, not the configured one that CURE would take for a replay.
    again = source_auth(document, clock=clock, refresh_tokens=kept)
    assert await _me(cure_http, await again.headers()) == 200
    assert await _me(cure_http, await auth.headers(refresh=True)) == 200


async def test_the_password_grant_then_its_refresh_token(token_server, cure_http) -> None:
    customer = await create_customer(cure_http)
    clock = Clock()
    kept = RefreshTokens()
    auth = source_auth(
        oauth2(
            token_server,
            grant="password",
            client_id="cure-portal",
            username=customer["email"],
            password_env="CURE_TEST_SOURCE_PASSWORD",
        ),
        clock=clock,
        refresh_tokens=kept,
        environ={"CURE_TEST_SOURCE_PASSWORD": PASSWORD},
    )
    first = await auth.headers()
    assert await _me(cure_http, first) == 200
    clock.now += 3600
    second = await auth.headers()  # by the refresh token the password grant handed back
    assert second != first and await _me(cure_http, second) == 200
    assert len(kept) == 1  # the refresh token the password grant handed back


async def test_refused_credentials_are_an_error_that_names_no_secret(
    token_server, cure_http
) -> None:
    customer = await create_customer(cure_http)
    wrong = f"wrong-{uuid.uuid4().hex}"
    auth = source_auth(oauth2(token_server, client_id=customer["client_id"], client_secret=wrong))
    with pytest.raises(SourceAuthError) as refused:
        await auth.headers()
    message = str(refused.value)
    assert "invalid_client" in message and refused.value.transient is False
    assert wrong not in message and wrong not in repr(auth)
    assert refused.value.__cause__ is None  # no chained error carries the request


async def test_an_unreachable_token_endpoint_is_a_transient_error() -> None:
    from tests.conftest import free_port

    auth = source_auth(
        oauth2(
            f"http://127.0.0.1:{free_port()}",
            client_id="cure-client",
            client_secret="s" * 40,
        )
    )
    with pytest.raises(SourceAuthError) as failed:
        await auth.headers()
    assert failed.value.transient is True and "cannot be reached" in str(failed.value)


async def test_env_secrets_are_read_at_use_and_a_missing_one_is_named(
    token_server, cure_http
) -> None:
    customer = await create_customer(cure_http)
    variable = f"CURE_TEST_SECRET_{uuid.uuid4().hex[:8].upper()}"
    environ: dict[str, str] = {}
    auth = source_auth(
        oauth2(token_server, client_id=customer["client_id"], client_secret_env=variable),
        environ=environ,
    )
    with pytest.raises(MissingSecret) as missing:
        await auth.headers()
    assert missing.value.variable == variable and variable in str(missing.value)
    environ[variable] = customer["client_secret"]  # set later: read at use, no restart
    assert await _me(cure_http, await auth.headers()) == 200
    assert customer["client_secret"] not in repr(auth)


def test_s3_parameters_from_inline_or_environment_keys() -> None:
    key_id, secret = f"AKIA{uuid.uuid4().hex[:16].upper()}", uuid.uuid4().hex * 2
    inline = source_auth(
        SourceDocument.model_validate(
            stac_document(
                auth={
                    "type": "s3",
                    "endpoint_url": "https://eodata.example.org",
                    "region": "default",
                    "access_key_id": key_id,
                    "secret_access_key": secret,
                }
            )
        )
    )
    access = inline.s3()
    assert access == S3Access(
        endpoint_url="https://eodata.example.org",
        region="default",
        access_key_id=key_id,
        secret_access_key=secret,
        requester_pays=False,
    )
    assert secret not in repr(access) and key_id not in repr(access)

    environ = {"CURE_TEST_KEY_ID": key_id}
    from_env = source_auth(
        SourceDocument.model_validate(
            stac_document(
                auth={
                    "type": "s3",
                    "region": "us-west-2",
                    "access_key_id_env": "CURE_TEST_KEY_ID",
                    "secret_access_key_env": "CURE_TEST_SECRET_KEY",
                    "requester_pays": True,
                }
            )
        ),
        environ=environ,
    )
    with pytest.raises(MissingSecret, match="CURE_TEST_SECRET_KEY"):
        from_env.s3()
    environ["CURE_TEST_SECRET_KEY"] = secret
    access = from_env.s3()
    assert (access.access_key_id, access.secret_access_key) == (key_id, secret)
    assert access.requester_pays and access.endpoint_url is None and access.region == "us-west-2"
    # A source with other credentials has none for S3, and signs nothing.
    plain = source_auth(SourceDocument.model_validate(stac_document()))
    assert plain.s3() is None and plain.signs_hrefs is False


# -- signing -------------------------------------------------------------------------------------


class SigningService:
    """A signing service as Microsoft's Planetary Computer's: GET ?href= answers the href with a
    signature and its expiry. ``mode`` makes it answer 503 or an href elsewhere."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.mode = "sign"
        self.expiry: str | None = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                href = parse_qs(urlsplit(self.path).query).get("href", [""])[0]
                service.calls.append(href)
                if service.mode == "busy":
                    self.send_response(503)
                    self.end_headers()
                    return
                signed = f"{href}?sig={len(service.calls)}"
                if service.mode == "elsewhere":
                    signed = f"https://other.example.org/x?sig={len(service.calls)}"
                body = {"href": signed}
                if service.expiry is not None:
                    body["msft:expiry"] = service.expiry
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/sas/v1/sign"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def signing() -> Iterator[SigningService]:
    service = SigningService()
    yield service
    service.stop()


def signing_auth(service: SigningService, clock: Clock) -> Any:
    document = SourceDocument.model_validate(
        stac_document(source_name(), auth={"type": "sign", "url": service.url})
    )
    return source_auth(document, clock=clock)


async def test_hrefs_are_signed_and_kept_until_their_expiry(signing) -> None:
    clock = Clock()
    auth = signing_auth(signing, clock)
    assert auth.signs_hrefs is True
    href = "https://account.blob.example.net/container/B04.tif"
    first = await auth.sign(href)
    assert first == f"{href}?sig=1"
    assert await auth.sign(href) == first and signing.calls == [href]  # kept
    other = await auth.sign(href.replace("B04", "B08"))
    assert other.endswith("?sig=2")
    clock.now += 3600  # past its expiry (less the margin): signed again
    assert await auth.sign(href) == f"{href}?sig=3"
    assert await auth.headers() == {}  # signing adds no header


async def test_a_signature_without_expiry_is_kept_briefly(signing) -> None:
    signing.expiry = None
    clock = Clock()
    auth = signing_auth(signing, clock)
    href = "https://account.blob.example.net/container/SCL.tif"
    await auth.sign(href)
    clock.now += 30
    await auth.sign(href)
    assert len(signing.calls) == 1
    clock.now += 60
    await auth.sign(href)
    assert len(signing.calls) == 2


async def test_a_signing_service_that_fails_or_points_elsewhere_is_refused(signing) -> None:
    auth = signing_auth(signing, Clock())
    signing.mode = "busy"
    with pytest.raises(SourceAuthError) as busy:
        await auth.sign("https://account.blob.example.net/c/a.tif")
    assert busy.value.transient and "503" in str(busy.value)
    signing.mode = "elsewhere"
    with pytest.raises(SourceAuthError) as elsewhere:
        await auth.sign("https://account.blob.example.net/c/b.tif")
    assert not elsewhere.value.transient and "elsewhere" in str(elsewhere.value)


async def test_a_secret_in_a_bearer_header_never_reaches_a_repr(token_server, cure_http) -> None:
    customer = await create_customer(cure_http)
    auth = source_auth(
        oauth2(
            token_server,
            client_id=customer["client_id"],
            client_secret=customer["client_secret"],
        )
    )
    token = (await auth.headers())["Authorization"].removeprefix("Bearer ")
    for shown in (repr(auth), str(auth), repr(auth._token), repr(auth.config)):  # type: ignore[attr-defined]
        assert token not in shown and customer["client_secret"] not in shown
    assert await _me(cure_http, bearer(token)) == 200
