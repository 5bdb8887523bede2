"""Password and client-secret hashing, and the password policy."""

import asyncio
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

from passlib.context import CryptContext

from cure.config import AuthSettings

# Longer passwords are refused before any lookup or hash, the same way for every email: a hash of
# megabytes costs time, and passlib refuses anything over 4096 bytes with an error of its own.
MAX_PASSWORD_LENGTH = 256

# Some passwords that pass every length rule but are among the first any attacker tries.
_COMMON = frozenset(
    {
        "password123",
        "password1234",
        "passw0rd123",
        "1234567890",
        "12345678910",
        "123456789012",
        "qwertyuiop",
        "qwertyuiop123",
        "1q2w3e4r5t",
        "iloveyou123",
        "letmein12345",
        "welcome12345",
        "administrator",
        "changeme123",
        "copernicus",
        "copernicus123",
    }
)


@lru_cache
def _context(memory_kib: int, time_cost: int) -> CryptContext:
    # argon2id only (no bcrypt, nothing legacy); p = 1 as OWASP recommends for these costs.
    return CryptContext(
        schemes=["argon2"],
        argon2__type="ID",
        argon2__memory_cost=memory_kib,
        argon2__time_cost=time_cost,
        argon2__parallelism=1,
    )


def _context_for(settings: AuthSettings) -> CryptContext:
    return _context(settings.argon2_memory_kib, settings.argon2_time_cost)


def hash_password(settings: AuthSettings, password: str) -> str:
    return _context_for(settings).hash(password)


def verify_password(
    settings: AuthSettings, password: str, password_hash: str
) -> tuple[bool, str | None]:
    """Whether the password matches, and a new hash when the stored one uses outdated parameters."""
    try:
        return _context_for(settings).verify_and_update(password, password_hash)
    except ValueError:  # not a hash this context knows: never a match
        return False, None


@lru_cache
def _dummy_hash(memory_kib: int, time_cost: int) -> str:
    return _context(memory_kib, time_cost).hash(secrets.token_urlsafe(16))


def burn_verification(settings: AuthSettings, password: str) -> None:
    """Spend the time of one verification, so an unknown account answers as slowly as a known one."""
    _context_for(settings).verify(
        password, _dummy_hash(settings.argon2_memory_kib, settings.argon2_time_cost)
    )


T = TypeVar("T")


def hash_threads(settings: AuthSettings) -> int:
    """How many threads hash passwords: configured, or one less than the CPUs (at least one)."""
    return settings.password_hash_threads or max(1, (os.cpu_count() or 2) - 1)


class PasswordHasher:
    """Runs the slow password hash on a bounded pool of threads of its own.

    A burst of logins queues here rather than taking every core (argon2 releases the GIL, so the
    event loop keeps serving other requests meanwhile) or the threads that other work shares.
    """

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.threads = hash_threads(settings)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="cure-hash")

    async def _run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    async def hash(self, password: str) -> str:
        return await self._run(lambda: hash_password(self.settings, password))

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        return await self._run(lambda: verify_password(self.settings, password, password_hash))

    async def burn(self, password: str) -> None:
        await self._run(lambda: burn_verification(self.settings, password))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def policy_violations(
    settings: AuthSettings, password: str, *, email: str, name: str | None = None
) -> list[str]:
    """What is wrong with a new password, in words a person can act on; empty when it is fine.

    Length and obvious guesses only, as NIST SP 800-63B advises: no composition rules.
    """
    problems: list[str] = []
    lowered = password.strip().lower()
    local_part = email.lower().split("@", 1)[0]
    if len(password) < settings.password_min_length:
        problems.append(
            f"the password must have at least {settings.password_min_length} characters"
        )
    if lowered == email.lower():
        problems.append("the password must not be the email address")
    elif len(local_part) >= 4 and local_part in lowered and len(lowered) - len(local_part) < 6:
        problems.append("the password must not be built from the email address")
    if name and lowered == name.strip().lower():
        problems.append("the password must not be the name")
    if len(set(password)) < 4:
        problems.append("the password must use at least 4 different characters")
    if lowered in _COMMON:
        problems.append("the password is too common")
    return problems


def new_client_secret() -> str:
    """256 random bits, URL-safe; never starting with "-", which a command line would read as
    an option (``cure-client login --client-secret -x...`` fails): one draw in 64 is drawn again."""
    while True:
        secret = secrets.token_urlsafe(32)
        if not secret.startswith("-"):
            return secret


def hash_client_secret(secret: str) -> str:
    # Client secrets are 256 random bits, not human passwords: a fast hash is enough and keeps
    # every token request cheap; a slow password hash would add nothing against guessing.
    return hashlib.sha256(secret.encode()).hexdigest()


def verify_client_secret(secret: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_client_secret(secret), secret_hash)


def new_opaque_token() -> tuple[str, str]:
    """A random 256-bit token (refresh or reset) and the SHA-256 digest that is stored instead."""
    token = secrets.token_urlsafe(32)
    return token, hash_opaque_token(token)


def hash_opaque_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
