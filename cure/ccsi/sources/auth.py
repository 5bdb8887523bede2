"""A source's credentials for remote calls: request headers, signed hrefs, S3 parameters.

One object per source and process (``source_auth``), kept as long as the source's version:

- ``oauth2``: ``headers()`` gives ``Authorization: Bearer <token>``. The token is fetched from the
  document's ``token_url`` when first needed (client credentials, a refresh token, or a user's
  password), kept until shortly before it expires, and fetched again after ``refresh()`` (the
  caller got a 401; concurrent refreshes fetch once). A refresh token the server hands back is
  kept for the process (``RefreshTokens``) and used instead of the configured one, so a server
  that rotates them keeps working; if a kept one is refused, the configured credentials are
  tried once more.
- ``sign``: ``sign(href)`` asks the signing service (``GET {url}?href=<href>`` answering
  ``{"href": <signed>}``) and keeps the signed href until its ``msft:expiry`` or ``expiry`` (less a
  margin), or briefly when it gives none. A signed href must stay on the href's scheme, host and
  port: the service may add a query (a signature), never send the caller elsewhere.
- ``s3``: ``s3()`` gives the endpoint, region, keys and requester-pays flag for ``s3://`` hrefs.

Secrets named by ``*_env`` are read from the environment at use; a variable that is not set is a
``MissingSecret`` naming the variable. Calls go only to the document's ``token_url`` and signing
``url``, without following redirects. Nothing here logs or raises a secret: errors carry the
source's name, the endpoint without its query, a status and an OAuth2 error code at most, and
every repr leaves credentials out.
"""

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus, urlsplit

import httpx
from pydantic import SecretStr

from cure.ccsi.sources.schemas import (
    OAuth2Auth,
    S3Auth,
    SignedUrlAuth,
    SourceDocument,
)

log = logging.getLogger(__name__)

DEFAULT_TOKEN_SECONDS = 300.0  # a token whose answer gives no expires_in
MAX_EARLY_SECONDS = 60.0  # a token is replaced this long (at most) before it expires
SIGNED_DEFAULT_SECONDS = 60.0  # a signed href whose answer gives no expiry is kept this long
SIGNED_MAX_SECONDS = 3600.0
MAX_SIGNED = 4096  # signed hrefs kept per source
MAX_ANSWER_BYTES = 64 * 1024  # a token or signing answer larger than this is refused
_TRANSIENT = {408, 425, 429, 500, 502, 503, 504}
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class SourceAuthError(Exception):
    """A source's credentials could not be had. ``reason`` is safe to log and to show an admin;
    ``transient``: the same call may work later (the endpoint was down, busy or slow)."""

    def __init__(self, reason: str, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


class MissingSecret(SourceAuthError):
    """A secret the document names by ``*_env`` is not in this process's environment."""

    def __init__(self, source: str, variable: str, what: str) -> None:
        super().__init__(
            f"the source {source} needs its {what} from the environment variable {variable}, "
            "which is not set in this process"
        )
        self.variable = variable


@dataclass(frozen=True)
class S3Access:
    """How to reach a source's ``s3://`` hrefs: no keys means anonymous (unsigned) requests."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    requester_pays: bool = False


def read_secret(
    inline: SecretStr | None,
    variable: str | None,
    *,
    source: str,
    what: str,
    environ: Mapping[str, str],
) -> str | None:
    """An inline secret, or the named environment variable's value read now."""
    if inline is not None:
        return inline.get_secret_value()
    if variable is None:
        return None
    value = environ.get(variable)
    if not value:
        raise MissingSecret(source, variable, what)
    return value


def where(url: str) -> str:
    """A URL as errors name it: scheme, host and path, never the query or user info."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "its endpoint"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


class SourceAuth:
    """A source with no credentials (``auth.type`` none): no headers, hrefs as they are."""

    signs_hrefs = False

    def __init__(
        self,
        source: str,
        *,
        timeout: float = 10,
        http: httpx.AsyncClient | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.timeout = timeout
        self._http = http
        self._environ = environ
        self.clock = clock

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def __repr__(self) -> str:
        return f"{type(self).__name__}(source={self.source!r})"

    async def headers(self, *, refresh: bool = False) -> dict[str, str]:
        """Headers for a call to the source's own hosts; ``refresh`` after it answered 401."""
        if refresh:
            await self.refresh()
        return {}

    async def refresh(self) -> None:
        """The source answered 401 to the credentials ``headers`` gave: get new ones."""

    async def sign(self, href: str) -> str:
        """The href to fetch: signed by a source that signs its hrefs, else the href itself."""
        return href

    def s3(self) -> S3Access | None:
        """The S3 access for the source's ``s3://`` hrefs, if it has one."""
        return None

    async def _call(self, request: httpx.Request) -> "_Answer":
        """One call, read whole (bounded), never following a redirect."""
        if self._http is not None:
            return await self._send(self._http, request)
        async with httpx.AsyncClient(follow_redirects=False) as http:
            return await self._send(http, request)

    async def _send(self, http: httpx.AsyncClient, request: httpx.Request) -> "_Answer":
        endpoint = where(str(request.url))
        try:
            response = await http.send(request, stream=True, follow_redirects=False)
        except httpx.TimeoutException:
            raise SourceAuthError(
                f"{endpoint} of the source {self.source} did not answer in time", transient=True
            ) from None
        except httpx.HTTPError as exc:
            raise SourceAuthError(
                f"{endpoint} of the source {self.source} cannot be reached ({type(exc).__name__})",
                transient=True,
            ) from None
        try:
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise SourceAuthError(
                        f"{endpoint} of the source {self.source} answered too much"
                    )
        except httpx.HTTPError as exc:
            raise SourceAuthError(
                f"{endpoint} of the source {self.source} broke off ({type(exc).__name__})",
                transient=True,
            ) from None
        finally:
            await response.aclose()
        return _Answer(response.status_code, body)


@dataclass(frozen=True)
class _Answer:
    status_code: int
    content: bytes = field(repr=False)

    def json_object(self) -> dict[str, Any] | None:
        try:
            body = json.loads(self.content)
        except (ValueError, RecursionError):
            return None
        return body if isinstance(body, dict) else None


# -- OAuth2 --------------------------------------------------------------------------------------


class RefreshTokens:
    """Refresh tokens that token endpoints handed back, kept for the process (never stored): a
    server that rotates them refuses the configured one once it has handed out its successor."""

    def __init__(self) -> None:
        self._kept: dict[tuple[str, ...], str] = {}

    def get(self, key: tuple[str, ...]) -> str | None:
        return self._kept.get(key)

    def keep(self, key: tuple[str, ...], token: str) -> None:
        self._kept[key] = token

    def drop(self, key: tuple[str, ...], token: str) -> None:
        if self._kept.get(key) == token:
            del self._kept[key]

    def __len__(self) -> int:
        return len(self._kept)

    def __repr__(self) -> str:
        return f"RefreshTokens({len(self._kept)} kept)"


PROCESS_REFRESH_TOKENS = RefreshTokens()


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    use_until: float


class TokenRefused(SourceAuthError):
    """The token endpoint refused the grant (400/401): other credentials may still work."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.code = code


class OAuth2SourceAuth(SourceAuth):
    def __init__(
        self,
        source: str,
        config: OAuth2Auth,
        *,
        refresh_tokens: RefreshTokens | None = None,
        **options: Any,
    ) -> None:
        super().__init__(source, **options)
        self.config = config
        self.refresh_tokens = (
            refresh_tokens if refresh_tokens is not None else PROCESS_REFRESH_TOKENS
        )
        self._token: _Token | None = None
        self._generation = 0  # tokens fetched so far: concurrent refreshes fetch one
        self._lock: asyncio.Lock | None = None

    @property
    def token_url(self) -> str:
        return str(self.config.token_url)

    def _locked(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def headers(self, *, refresh: bool = False) -> dict[str, str]:
        if refresh:
            await self.refresh()
        token = self._token
        if token is None or self.clock() >= token.use_until:
            async with self._locked():
                token = self._token
                if token is None or self.clock() >= token.use_until:
                    token = await self._fetch()
        return {"Authorization": f"Bearer {token.value}"}

    async def refresh(self) -> None:
        seen = self._generation
        async with self._locked():
            if self._generation == seen:  # nobody fetched a new token since the 401 was seen
                self._token = None
                await self._fetch()

    # The credentials, read at use.

    def _client_secret(self) -> str | None:
        return read_secret(
            self.config.client_secret,
            self.config.client_secret_env,
            source=self.source,
            what="client secret",
            environ=self.environ,
        )

    def _configured_refresh_token(self) -> str | None:
        return read_secret(
            self.config.refresh_token,
            self.config.refresh_token_env,
            source=self.source,
            what="refresh token",
            environ=self.environ,
        )

    def _password(self) -> str | None:
        return read_secret(
            self.config.password,
            self.config.password_env,
            source=self.source,
            what="password",
            environ=self.environ,
        )

    def _kept_key(self, credential: str) -> tuple[str, ...]:
        """Where this process keeps the refresh token handed back for these credentials: the
        source, endpoint and client, and a digest of the credential it replaces."""
        digest = hashlib.sha256(credential.encode()).hexdigest()
        return (self.source, self.token_url, self.config.client_id, self.config.grant, digest)

    async def _fetch(self) -> _Token:
        """A new token (called under the lock)."""
        grant = self.config.grant
        if grant == "client_credentials":
            token, _ = await self._exchange({"grant_type": "client_credentials"})
        elif grant == "refresh_token":
            configured = self._configured_refresh_token()
            assert configured is not None  # the document's validation
            key = self._kept_key(configured)
            kept = self.refresh_tokens.get(key)
            token = await self._by_refresh_token(
                key, list(dict.fromkeys([kept or configured, configured]))
            )
        else:
            token = await self._by_password()
        self._token = token
        self._generation += 1
        return token

    async def _by_password(self) -> _Token:
        """The refresh token an earlier password grant handed back, else the password."""
        username = self.config.username or ""
        password = self._password()
        assert password is not None  # the document's validation
        key = self._kept_key(f"{username}\n{password}")
        kept = self.refresh_tokens.get(key)
        if kept is not None:
            with contextlib.suppress(TokenRefused):
                return await self._by_refresh_token(key, [kept])
        token, handed = await self._exchange(
            {"grant_type": "password", "username": username, "password": password}
        )
        if handed:
            self.refresh_tokens.keep(key, handed)
        return token

    async def _by_refresh_token(self, key: tuple[str, ...], candidates: list[str]) -> _Token:
        """A token for the first refresh token the endpoint accepts; one it refuses is dropped
        from those kept, and one it hands back is kept for the next time."""
        for number, candidate in enumerate(candidates, start=1):
            try:
                token, handed = await self._exchange(
                    {"grant_type": "refresh_token", "refresh_token": candidate}
                )
            except TokenRefused:
                self.refresh_tokens.drop(key, candidate)
                if number < len(candidates):
                    continue
                raise
            if handed and handed != candidate:
                self.refresh_tokens.keep(key, handed)
            return token
        raise AssertionError("no refresh token to try")

    async def _exchange(self, form: dict[str, str]) -> tuple[_Token, str | None]:
        """POST the grant to the token endpoint: the token and any refresh token handed back."""
        if self.config.scope and form["grant_type"] != "refresh_token":
            form["scope"] = self.config.scope
        headers = {"Accept": "application/json"}
        secret = self._client_secret()
        if secret is not None:  # RFC 6749 2.3.1: form-encoded, then HTTP Basic
            pair = f"{quote_plus(self.config.client_id)}:{quote_plus(secret)}".encode()
            headers["Authorization"] = f"Basic {base64.b64encode(pair).decode('ascii')}"
        else:
            form["client_id"] = self.config.client_id
        request = httpx.Request("POST", self.token_url, data=form, headers=headers)
        request.extensions["timeout"] = httpx.Timeout(self.timeout).as_dict()
        started = self.clock()
        response = await self._call(request)
        endpoint = f"the token endpoint {where(self.token_url)} of the source {self.source}"
        if response.status_code in _TRANSIENT or response.status_code >= 500:
            raise SourceAuthError(f"{endpoint} answered {response.status_code}", transient=True)
        body = response.json_object()
        if response.status_code in (400, 401):
            code = body.get("error") if body else None
            code = code if isinstance(code, str) and _ERROR_CODE.match(code) else "no error code"
            raise TokenRefused(
                f"{endpoint} refused the {form['grant_type']} grant ({response.status_code}, "
                f"{code})",
                code,
            )
        if response.status_code != 200 or body is None:
            raise SourceAuthError(f"{endpoint} answered {response.status_code} without a token")
        value = body.get("access_token")
        kind = body.get("token_type", "bearer")
        if not isinstance(value, str) or not value or any(c in value for c in "\r\n "):
            raise SourceAuthError(f"{endpoint} answered without an access token")
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise SourceAuthError(f"{endpoint} gave a token that is not a bearer token")
        lifetime = _seconds(body.get("expires_in")) or DEFAULT_TOKEN_SECONDS
        early = min(MAX_EARLY_SECONDS, lifetime / 10)
        handed = body.get("refresh_token")
        log.info("token fetched for the source %s (%s grant)", self.source, form["grant_type"])
        return (
            _Token(value, use_until=started + lifetime - early),
            handed if isinstance(handed, str) and handed else None,
        )


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except (ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


# -- signing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Signed:
    href: str = field(repr=False)
    use_until: float


class SigningSourceAuth(SourceAuth):
    signs_hrefs = True

    def __init__(self, source: str, config: SignedUrlAuth, **options: Any) -> None:
        super().__init__(source, **options)
        self.url = str(config.url)
        self._signed: OrderedDict[str, _Signed] = OrderedDict()
        self._wall: Callable[[], float] = time.time  # expiries are wall-clock times

    async def sign(self, href: str) -> str:
        found = self._signed.get(href)
        if found is not None and self.clock() < found.use_until:
            self._signed.move_to_end(href)
            return found.href
        request = httpx.Request(
            "GET", self.url, params={"href": href}, headers={"Accept": "application/json"}
        )
        request.extensions["timeout"] = httpx.Timeout(self.timeout).as_dict()
        response = await self._call(request)
        service = f"the signing service {where(self.url)} of the source {self.source}"
        status = response.status_code
        if status in _TRANSIENT or status >= 500:
            raise SourceAuthError(f"{service} answered {status}", transient=True)
        body = response.json_object()
        signed = body.get("href") if body else None
        if status != 200 or not isinstance(signed, str):
            raise SourceAuthError(f"{service} did not sign {where(href)} ({status})")
        if not _same_place(signed, href):
            raise SourceAuthError(f"{service} answered an href elsewhere than {where(href)}")
        assert body is not None
        lifetime = self._lifetime(body.get("msft:expiry", body.get("expiry")))
        self._signed[href] = _Signed(signed, use_until=self.clock() + lifetime)
        self._signed.move_to_end(href)
        while len(self._signed) > MAX_SIGNED:
            self._signed.popitem(last=False)
        return signed

    def _lifetime(self, expiry: Any) -> float:
        """How long a signed href is used: until a margin before its expiry, within bounds."""
        if not isinstance(expiry, str):
            return SIGNED_DEFAULT_SECONDS
        try:
            moment = datetime.fromisoformat(expiry.strip().replace("Z", "+00:00"))
        except ValueError:
            return SIGNED_DEFAULT_SECONDS
        if moment.tzinfo is None:
            return SIGNED_DEFAULT_SECONDS
        left = moment.timestamp() - self._wall()
        return max(0.0, min(SIGNED_MAX_SECONDS, left - min(MAX_EARLY_SECONDS, left / 10)))


def _same_place(signed: str, href: str) -> bool:
    try:
        one, two = urlsplit(signed), urlsplit(href)
        return (
            one.scheme.lower() in ("http", "https")
            and (one.scheme.lower(), one.hostname, one.port, one.path)
            == (two.scheme.lower(), two.hostname, two.port, two.path)
            and not one.username
            and not one.password
        )
    except ValueError:
        return False


# -- S3 ------------------------------------------------------------------------------------------


class S3SourceAuth(SourceAuth):
    def __init__(self, source: str, config: S3Auth, **options: Any) -> None:
        super().__init__(source, **options)
        self.config = config

    def s3(self) -> S3Access:
        config = self.config
        return S3Access(
            endpoint_url=str(config.endpoint_url).rstrip("/") if config.endpoint_url else None,
            region=config.region,
            access_key_id=read_secret(
                config.access_key_id,
                config.access_key_id_env,
                source=self.source,
                what="S3 access key id",
                environ=self.environ,
            ),
            secret_access_key=read_secret(
                config.secret_access_key,
                config.secret_access_key_env,
                source=self.source,
                what="S3 secret access key",
                environ=self.environ,
            ),
            requester_pays=config.requester_pays,
        )


def source_auth(
    document: SourceDocument,
    *,
    http: httpx.AsyncClient | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    refresh_tokens: RefreshTokens | None = None,
) -> SourceAuth:
    """The credentials object of a source (its document with secrets, as the registry or the
    worker's loader gives it). ``http``: a client to call the token or signing endpoint with
    (default: a short-lived one per call)."""
    options: dict[str, Any] = {
        "timeout": document.timeout_seconds,
        "http": http,
        "environ": environ,
        "clock": clock,
    }
    auth = document.auth
    if isinstance(auth, OAuth2Auth):
        return OAuth2SourceAuth(document.name, auth, refresh_tokens=refresh_tokens, **options)
    if isinstance(auth, SignedUrlAuth):
        return SigningSourceAuth(document.name, auth, **options)
    if isinstance(auth, S3Auth):
        return S3SourceAuth(document.name, auth, **options)
    return SourceAuth(document.name, **options)
