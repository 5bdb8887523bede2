"""The principal cache of each API process (cure.auth.principals): a revoked token, a disabled
customer or a withdrawn scope stops working on every process as soon as the change commits, heard
through PostgreSQL notices; a process that cannot hear them trusts nothing it kept."""

import asyncio
import time
import uuid

import asyncpg
import httpx
import pytest
from jose import jwt

from cure.auth.dependencies import PRINCIPALS
from cure.kit.state import state_of
from tests.auth.spellings import spellings_answered
from tests.conftest import TEST_DATABASE_URL, started_app
from tests.factories import bearer, create_customer, get_token, password_login

DSN = TEST_DATABASE_URL.replace("+asyncpg", "")


async def _hearing(api) -> None:  # type: ignore[no-untyped-def]
    assert await state_of(api).notices.wait_hearing(10), "the notice listener never connected"


def _http(api) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=api, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://cure.test")


async def _refused_within(
    http: httpx.AsyncClient, headers: dict[str, str], seconds: float
) -> float:
    """Wait until the token is refused (401) on ``http``: the process heard the change. The
    deadline only keeps a lost notice from hanging the test; no speed is asserted."""
    started = time.monotonic()
    while True:
        response = await http.get("/v1/orders", headers=headers)
        if response.status_code == 401:
            return time.monotonic() - started
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < seconds, "the change was never heard"
        await asyncio.sleep(0.005)


@pytest.fixture
async def two_processes(settings):  # type: ignore[no-untyped-def]
    """Two API apps with their own engines, caches and listeners, as two processes have."""
    async with started_app(settings) as first, started_app(settings) as second:
        await _hearing(first)
        await _hearing(second)
        async with _http(first) as one, _http(second) as two:
            yield (first, one), (second, two)


async def _customer_on(http: httpx.AsyncClient) -> tuple[dict, dict[str, str], str]:  # type: ignore[type-arg]
    customer = await create_customer(http)
    token = await get_token(http, customer)
    return customer, {"Authorization": f"Bearer {token}"}, token


async def test_a_token_revoked_on_one_process_is_refused_on_another(two_processes) -> None:  # type: ignore[no-untyped-def]
    (first, one), (second, two) = two_processes
    customer, headers, token = await _customer_on(one)
    for http in (one, two):
        assert (await http.get("/v1/orders", headers=headers)).status_code == 200
    assert (
        state_of(second).need(PRINCIPALS).get(token) is not None
    )  # the second process now keeps it
    assert state_of(first).need(PRINCIPALS).get(token) is not None

    revoked = await one.post(
        "/v1/auth/revoke",
        data={"token": token},
        auth=(customer["client_id"], customer["client_secret"]),
    )
    assert revoked.status_code == 200
    # The process that revoked it refuses it at once: it dropped it at its own commit.
    assert state_of(first).need(PRINCIPALS).get(token) is None
    assert (await one.get("/v1/orders", headers=headers)).status_code == 401
    await _refused_within(two, headers, seconds=10)
    assert state_of(second).need(PRINCIPALS).get(token) is None


async def test_a_customer_disabled_in_the_database_is_refused_at_once(two_processes) -> None:  # type: ignore[no-untyped-def]
    (first, one), (second, two) = two_processes
    customer, headers, token = await _customer_on(one)
    for http in (one, two):
        assert (await http.get("/v1/orders", headers=headers)).status_code == 200
    assert state_of(first).need(PRINCIPALS).get(token) is not None
    connection = await asyncpg.connect(DSN)
    try:  # any writer, not only the API: the trigger sends the notice
        await connection.execute(
            "UPDATE customers SET is_active = false WHERE id = $1",
            uuid.UUID(str(customer["customer_id"])),
        )
    finally:
        await connection.close()
    for http in (one, two):
        await _refused_within(http, headers, seconds=10)
    assert (
        state_of(first).need(PRINCIPALS).get(token) is None
        and state_of(second).need(PRINCIPALS).get(token) is None
    )


async def test_a_withdrawn_scope_is_withdrawn_from_a_kept_principal(two_processes) -> None:  # type: ignore[no-untyped-def]
    (_, one), (_, two) = two_processes
    customer, headers, _ = await _customer_on(one)
    assert (await two.get("/v1/orders", headers=headers)).status_code == 200
    connection = await asyncpg.connect(DSN)
    try:
        await connection.execute(
            "UPDATE customers SET scopes = array_remove(scopes, 'orders:read') WHERE id = $1",
            uuid.UUID(str(customer["customer_id"])),
        )
    finally:
        await connection.close()
    deadline = time.monotonic() + 10
    while (response := await two.get("/v1/orders", headers=headers)).status_code == 200:
        assert time.monotonic() < deadline, "the scope was never withdrawn"
        await asyncio.sleep(0.005)
    assert response.status_code == 403, response.text


async def test_a_process_that_cannot_hear_notices_keeps_nothing(two_processes) -> None:  # type: ignore[no-untyped-def]
    (first, one), _ = two_processes
    customer, headers, token = await _customer_on(one)
    assert (await one.get("/v1/orders", headers=headers)).status_code == 200
    cache = state_of(first).need(PRINCIPALS)
    assert cache.get(token) is not None
    connection = await asyncpg.connect(DSN)
    try:  # the listeners' connections go (a restart of the database, say)
        ended = await connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'cure-notices' AND datname = current_database()"
        )
        assert ended >= 2
        deadline = time.monotonic() + 10
        while cache.hearing:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert len(cache) == 0
        # While deaf, a principal is read from the database every time, and never kept.
        assert (await one.get("/v1/orders", headers=headers)).status_code == 200
        if not cache.hearing:
            assert cache.get(token) is None
        # Heard again: a change made meanwhile was read fresh, not from the old cache.
        await _hearing(first)
        await connection.execute(
            "UPDATE customers SET is_active = false WHERE id = $1",
            uuid.UUID(str(customer["customer_id"])),
        )
    finally:
        await connection.close()
    await _refused_within(one, headers, seconds=10)


async def _until_kept(http: httpx.AsyncClient, cache, token: str) -> None:  # type: ignore[no-untyped-def]
    """Ask with ``token`` until ``cache`` keeps its principal (a notice of the customer's creation
    heard during a read keeps that read's answer out); at most 10 s."""
    deadline = time.monotonic() + 10
    while cache.get(token) is None:
        assert (await http.get("/v1/orders", headers=bearer(token))).status_code == 200
        assert time.monotonic() < deadline, "the principal was never kept"
        await asyncio.sleep(0.01)


async def _until_one_is_refused(http: httpx.AsyncClient, tokens: list[str]) -> None:
    """Wait (at most 10 s, not a measure of anything) until a request with one of ``tokens`` is
    refused: the revocation's notice has then been handled, in one step, on that process."""
    deadline = time.monotonic() + 10
    while True:
        for token in tokens:
            if (await http.get("/v1/orders", headers=bearer(token))).status_code == 401:
                return
        assert time.monotonic() < deadline, "the revocation was never heard"
        await asyncio.sleep(0.01)


async def test_no_spelling_of_a_revoked_token_works_on_any_process(two_processes) -> None:  # type: ignore[no-untyped-def]
    (_, one), (second, two) = two_processes
    customer, headers, token = await _customer_on(one)
    for http in (one, two):
        assert (await http.get("/v1/orders", headers=headers)).status_code == 200
        assert await spellings_answered(http, token, "/v1/orders") == {}  # not canonical

    revoked = await one.post(
        "/v1/auth/revoke",
        data={"token": token},
        auth=(customer["client_id"], customer["client_secret"]),
    )
    assert revoked.status_code == 200
    await _until_one_is_refused(two, [token])
    for http in (one, two):
        assert (await http.get("/v1/orders", headers=headers)).status_code == 401
        assert await spellings_answered(http, token, "/v1/orders") == {}


def _same_jti(settings, token: str) -> str:  # type: ignore[no-untyped-def]
    """Another valid token with the jti of ``token`` (signed with the server's key): a second
    entry of one jti in the cache."""
    claims = jwt.get_unverified_claims(token)
    return str(
        jwt.encode(
            {**claims, "iat": claims["iat"] - 1},
            settings.jwt_secret.get_secret_value(),
            algorithm="HS256",
            headers={"typ": "at+jwt"},
        )
    )


async def test_a_revoked_jti_drops_every_token_that_carries_it(two_processes, settings) -> None:  # type: ignore[no-untyped-def]
    (_, one), (second, two) = two_processes
    customer, _, token = await _customer_on(one)
    twin = _same_jti(settings, token)
    assert twin != token
    for kept in (token, twin):
        await _until_kept(two, state_of(second).need(PRINCIPALS), kept)
    revoked = await one.post(
        "/v1/auth/revoke",
        data={"token": token},
        auth=(customer["client_id"], customer["client_secret"]),
    )
    assert revoked.status_code == 200
    await _until_one_is_refused(two, [token, twin])
    for dropped in (token, twin):
        assert state_of(second).need(PRINCIPALS).get(dropped) is None
        assert (await two.get("/v1/orders", headers=bearer(dropped))).status_code == 401


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_kept_principal_is_read_again_after_the_backstop(settings) -> None:  # type: ignore[no-untyped-def]
    """A cache that hears no notice at all (each one lost) keeps an answer for the backstop's
    time (CURE_PRINCIPAL_CACHE_SECONDS), on its own clock, and no longer."""
    from cure.auth.principals import PrincipalCache

    async with started_app(settings.model_copy(update={"principal_cache_seconds": 30})) as api:
        assert state_of(api).need(PRINCIPALS).ttl_seconds == 30
        clock = _Clock()
        cache = state_of(api).put(PRINCIPALS, PrincipalCache(ttl_seconds=30, clock=clock))
        cache.on_hearing(True)  # but subscribed to nothing: every notice is lost to it
        async with _http(api) as http:
            customer, headers, token = await _customer_on(http)
            assert (await http.get("/v1/orders", headers=headers)).status_code == 200
            assert cache.get(token) is not None
            revoked = await http.post(
                "/v1/auth/revoke",
                data={"token": token},
                auth=(customer["client_id"], customer["client_secret"]),
            )
            assert revoked.status_code == 200
            clock.now += 29
            # The kept answer stands as long as the backstop allows ...
            assert (await http.get("/v1/orders", headers=headers)).status_code == 200
            clock.now += 1
            # ... then the principal is read again, and the revocation found.
            assert cache.get(token) is None
            assert (await http.get("/v1/orders", headers=headers)).status_code == 401


async def test_every_revocation_a_process_commits_drops_its_own_entries_at_once(
    settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Notices of auth changes are held back (a loaded machine delivers them late): the process
    that revokes still refuses at once, whichever of its sessions committed the revocation. A
    reused refresh token revokes its family in a session apart from the failing request (CI saw
    the family's access token still accepted right after the replay was refused)."""
    from cure.auth.principals import CHANNEL
    from cure.kit.listen import Listener

    held: list[str] = []
    deliver_now = Listener._notice

    def late(self, subscription):  # type: ignore[no-untyped-def]
        if subscription.channel != CHANNEL:
            return deliver_now(self, subscription)
        return lambda _connection, _pid, _channel, payload: held.append(payload)

    monkeypatch.setattr(Listener, "_notice", late)
    async with started_app(settings) as api:
        await _hearing(api)
        cache = state_of(api).need(PRINCIPALS)
        async with _http(api) as http:
            customer = await create_customer(http)
            first = await password_login(http, customer["email"])
            rotated = await http.post(
                "/v1/auth/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": first["refresh_token"],
                    "client_id": "cure-portal",
                },
            )
            assert rotated.status_code == 200, rotated.text
            access = rotated.json()["access_token"]
            await _until_kept(http, cache, access)

            replayed = await http.post(
                "/v1/auth/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": first["refresh_token"],
                    "client_id": "cure-portal",
                },
            )
            assert replayed.status_code == 400
            assert replayed.json()["error"] == "invalid_grant"
            assert cache.get(access) is None
            assert (await http.get("/v1/orders", headers=bearer(access))).status_code == 401
    assert held, "the notices were not held back: this test proved nothing"


def test_only_verified_tokens_texts_are_kept() -> None:
    from cure.auth.principals import PrincipalCache
    from cure.auth.tokens import token_key

    cache: PrincipalCache[str] = PrincipalCache(max_entries=2, ttl_seconds=60)
    cache.on_hearing(True)

    def unsigned(jti: str) -> str:  # well formed, signed by nobody the server knows
        return str(jwt.encode({"jti": jti, "sub": "x"}, "not the server's key", algorithm="HS256"))

    # Texts nobody verified cost nothing, however many are sent.
    for n in range(50):
        assert cache.get(unsigned(f"stranger-{n}")) is None
    assert cache._texts == {}
    kept = [unsigned(f"kept-{n}") for n in range(3)]
    for n, token in enumerate(kept):
        cache.put(
            token,
            f"principal {n}",
            customer_id=uuid.uuid4(),
            jti=token_key(token).jti,
            expires_at=time.time() + 60,
            read_at_generation=cache.generation,
        )
    # The oldest was evicted (two entries at most), with its text.
    assert [cache.get(token) for token in kept] == [None, "principal 1", "principal 2"]
    assert set(cache._texts) == set(kept[1:])
    cache.on_notice("jti:" + token_key(kept[1]).jti)  # revoked: gone with its text
    assert cache.get(kept[1]) is None and set(cache._texts) == {kept[2]}
