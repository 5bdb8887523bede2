"""Brute force: guesses are slowed down and refused, without letting anyone lock others out.

The strict app's limits (tests/auth/conftest.py): 3 failures per address and account together,
4 per account, 6 per address, in a window of an hour (so that no count runs out while a test
builds it up on a loaded machine); delays of 0.05 s doubling, at most 0.4 s. A refusal that lifts
with time is tested by moving the test's stored failures back by the window.
"""

import asyncio
import hashlib
import math
import time
from datetime import datetime, timedelta

from sqlalchemy import select, update

from cure.auth.dependencies import PASSWORD_HASHER
from cure.auth.models import AuthFailure
from cure.auth.throttle import Throttle
from cure.kit.db import utcnow
from cure.kit.state import state_of
from tests.auth.conftest import WINDOW_SECONDS, client_from, client_from_new_address
from tests.conftest import loopback_address
from tests.factories import PASSWORD, create_customer, unique_email

WRONG = "wrong password!!"


async def _login(http, email: str, password: str):  # type: ignore[no-untyped-def]
    return await http.post("/v1/auth/login", json={"email": email, "password": password})


async def _token_by_password(http, email: str, password: str):  # type: ignore[no-untyped-def]
    form = {"grant_type": "password", "client_id": "cure-portal", "username": email}
    return await http.post("/v1/auth/token", data={**form, "password": password})


def _key(kind: str, value: str) -> str:
    """The throttle's key (cure.auth.throttle.digest), computed here so that it is checked too."""
    return hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()


def _pair_key(address: str, email: str) -> str:
    return _key("pair", f"{address}\x00user\x00{email.lower()}")


async def _stored(app, key: str) -> list[datetime]:  # type: ignore[no-untyped-def]
    """When the failures stored under ``key`` happened, oldest first."""
    async with state_of(app).db.sessionmaker() as session:
        query = select(AuthFailure.occurred_at).where(AuthFailure.key == key)
        return sorted((await session.execute(query)).scalars().all())


async def _age(app, *keys: str) -> None:  # type: ignore[no-untyped-def]
    """Move the failures stored under ``keys`` back by the window: as if it had passed since."""
    window = timedelta(seconds=WINDOW_SECONDS)
    async with state_of(app).db.sessionmaker() as session, session.begin():
        await session.execute(
            update(AuthFailure)
            .where(AuthFailure.key.in_(keys))
            .values(occurred_at=AuthFailure.occurred_at - window)
        )


def _seconds_until_out(oldest: datetime, now: datetime) -> int:
    """The retry-after the throttle gives at ``now``: until ``oldest`` leaves the window."""
    left = oldest + timedelta(seconds=WINDOW_SECONDS) - now
    return max(1, math.ceil(left.total_seconds()))


async def _wrong_from_new_addresses(app, email: str, count: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(count):
        async with client_from_new_address(app) as elsewhere:
            assert (await _login(elsewhere, email, WRONG)).status_code == 400


async def test_guesses_at_one_account_from_one_address_are_refused(strict_app) -> None:
    address = loopback_address()
    async with client_from(strict_app, address) as http:
        customer = await create_customer(http)
        email = customer["email"]
        for _ in range(3):
            assert (await _login(http, email, WRONG)).status_code == 400
        before = utcnow()
        throttled = await _login(http, email, PASSWORD)  # even the right one
        after = utcnow()
        assert throttled.status_code == 429
        assert throttled.json()["error"] == "temporarily_unavailable"
        # Retry when the oldest of the pair's 3 failures leaves the window, as decided at some
        # moment of the request (the refused attempt itself is not counted).
        pair = _pair_key(address, email)
        stored = await _stored(strict_app, pair)
        assert len(stored) == 3
        retry_after = int(throttled.headers["retry-after"])
        assert _seconds_until_out(stored[0], after) <= retry_after
        assert retry_after <= _seconds_until_out(stored[0], before)
        # The owner, anywhere else, is not locked out by what one address tried.
        async with client_from_new_address(strict_app) as elsewhere:
            assert (await _token_by_password(elsewhere, email, PASSWORD)).status_code == 200
        # Once the window has passed over these failures, the address may try again.
        await _age(strict_app, pair, _key("user", email.lower()), _key("address", address))
        assert (await _login(http, email, PASSWORD)).status_code == 200


async def test_each_earlier_failure_doubles_the_wait_up_to_its_cap(strict_app) -> None:
    state = state_of(strict_app)
    throttle = Throttle(state.settings, "127.0.0.1", state.db.side, state.need(PASSWORD_HASHER))
    under = (-1, -1)  # the account and the address under their limits
    waits = [throttle._delay(n, excess=under) for n in range(6)]
    assert waits == [0.0, 0.05, 0.1, 0.2, 0.4, 0.4]
    # Past the account's or the address's limit, each failure beyond it doubles the wait too.
    assert throttle._delay(0, excess=(0, -1)) == 0.05
    assert throttle._delay(0, excess=(-1, 2)) == 0.2


async def test_guesses_wait_longer_and_longer_before_the_refusal(strict_client) -> None:
    customer = await create_customer(strict_client)
    took = []
    for _ in range(3):
        started = time.perf_counter()
        assert (await _login(strict_client, customer["email"], WRONG)).status_code == 400
        took.append(time.perf_counter() - started)
    # No wait for the first guess, then at least 0.05 s, then at least 0.1 s (besides the hash).
    assert took[1] >= 0.05 and took[2] >= 0.1, took
    refused = await _login(strict_client, customer["email"], WRONG)
    assert refused.status_code == 429  # refused before its hash (and not counted: below)


async def test_an_account_under_attack_still_lets_its_owner_in(strict_app) -> None:
    async with client_from_new_address(strict_app) as owner:
        customer = await create_customer(owner)
        await _wrong_from_new_addresses(strict_app, customer["email"], 5)  # past its limit (4)
        started = time.perf_counter()
        assert (await _login(owner, customer["email"], PASSWORD)).status_code == 200
        assert time.perf_counter() - started >= 0.05  # slowed down, not refused
    # Slowed down because the account was under attack: the 5 wrong guesses are still counted
    # against it (past its limit of 4), the owner's right attempt was taken back.
    assert len(await _stored(strict_app, _key("user", customer["email"].lower()))) == 5


async def test_a_fuzzing_address_still_logs_in_the_others_behind_it(strict_client) -> None:
    for _ in range(7):  # past the address's limit (6), across accounts that do not exist
        assert (await _login(strict_client, unique_email(), WRONG)).status_code == 400
    # Someone else behind the same NAT, with the right password: let in.
    customer = await create_customer(strict_client)
    assert (await _login(strict_client, customer["email"], PASSWORD)).status_code == 200
    assert (await _token_by_password(strict_client, customer["email"], PASSWORD)).status_code == 200


async def test_an_abusive_address_is_refused_for_an_account_under_attack(strict_app) -> None:
    async with client_from_new_address(strict_app) as fuzzer:
        for _ in range(6):
            assert (await _login(fuzzer, unique_email(), WRONG)).status_code == 400
        customer = await create_customer(fuzzer)
        await _wrong_from_new_addresses(strict_app, customer["email"], 4)
        refused = await _login(fuzzer, customer["email"], PASSWORD)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
    async with client_from_new_address(strict_app) as owner:
        assert (await _login(owner, customer["email"], PASSWORD)).status_code == 200


async def test_successful_logins_do_not_count(strict_client) -> None:
    customer = await create_customer(strict_client)
    for _ in range(5):
        assert (await _login(strict_client, customer["email"], PASSWORD)).status_code == 200
    assert (await _login(strict_client, customer["email"], WRONG)).status_code == 400
    assert (await _login(strict_client, customer["email"], PASSWORD)).status_code == 200


async def test_parallel_guesses_are_counted_exactly(strict_app) -> None:
    address = loopback_address()
    async with client_from(strict_app, address) as http:
        customer = await create_customer(http)
        answers = await asyncio.gather(*(_login(http, customer["email"], WRONG) for _ in range(12)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [400] * 3 + [429] * 9  # as many guesses checked as the limit, not more
    assert len(await _stored(strict_app, _pair_key(address, customer["email"]))) == 3


async def test_the_right_client_secret_is_never_refused(strict_app, strict_client) -> None:
    customer = await create_customer(strict_client)
    async with client_from_new_address(strict_app) as attacker:
        codes = []
        for _ in range(5):
            response = await attacker.post(
                "/v1/auth/token",
                data={"grant_type": "client_credentials"},
                auth=(customer["client_id"], "guess"),
            )
            codes.append(response.status_code)
        assert codes == [401] * 3 + [429] * 2
        assert response.json()["error"] == "temporarily_unavailable"
        assert response.headers["cache-control"] == "no-store"
        assert int(response.headers["retry-after"]) >= 1
        # Not even from the attacker's own address is the script locked out.
        right = await attacker.post(
            "/v1/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(customer["client_id"], customer["client_secret"]),
        )
        assert right.status_code == 200
    script = await strict_client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(customer["client_id"], customer["client_secret"]),
    )
    assert script.status_code == 200


async def test_registrations_are_limited_per_address(strict_app) -> None:
    async with client_from_new_address(strict_app) as http:
        first = await create_customer(http)
        taken = await http.post(
            "/v1/crm/customers",
            json={"name": "Again", "email": first["email"], "password": PASSWORD},
        )
        assert taken.status_code == 409  # a product decision (README, Security); it counts too
        await create_customer(http)
        refused = await http.post(
            "/v1/crm/customers",
            json={"name": "Fourth", "email": unique_email(), "password": PASSWORD},
        )
        assert refused.status_code == 429
        assert refused.json()["error"] == "TooManyAttempts"
        assert int(refused.headers["retry-after"]) >= 1
    async with client_from_new_address(strict_app) as other:
        await create_customer(other)  # other addresses register as before


async def test_password_reset_requests_are_throttled_the_same_for_any_email(
    strict_client,
) -> None:
    customer = await create_customer(strict_client)
    for email in (customer["email"], unique_email()):
        answers = [
            await strict_client.post("/v1/auth/password-reset", json={"email": email})
            for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert answers[2].json()["error"] == "TooManyAttempts"
        assert int(answers[2].headers["retry-after"]) >= 1


async def test_bad_reset_tokens_are_throttled(strict_client) -> None:
    codes = []
    for _ in range(7):
        response = await strict_client.post(
            "/v1/auth/password-reset/confirm",
            json={"token": "guessed-token", "new_password": "a brand new passphrase"},
        )
        codes.append(response.status_code)
    assert codes == [400] * 6 + [429]
    assert response.headers["retry-after"]


async def test_throttle_state_holds_no_email_or_address_in_clear(strict_client, session) -> None:
    email = unique_email()
    await _login(strict_client, email, WRONG)
    keys = (await session.execute(select(AuthFailure.key))).scalars().all()
    assert keys and all(len(k) == 64 and email not in k and "127." not in k for k in keys)
