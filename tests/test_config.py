"""Secrets fail closed: placeholders are refused everywhere, a local install generates its own."""

import stat
import threading
import time
import typing

import pytest
from jose import jwt
from pydantic import SecretStr, ValidationError

from cure.config import Settings, local_secrets
from tests.factories import bearer, create_customer

FORMER_PLACEHOLDERS = {
    "jwt_secret": "dev-only-insecure-jwt-secret-change-me",
    "storage_secret": "dev-only-insecure-storage-secret-change-me",
    "callback_signing_key": "dev-only-insecure-callback-key-change-me",
}
UNSET = {name: None for name in FORMER_PLACEHOLDERS}


# (not named "environment": that is the session fixture that sets the test run's variables)
@pytest.mark.parametrize("stage", ["development", "test", "production"])
@pytest.mark.parametrize("name", sorted(FORMER_PLACEHOLDERS))
def test_the_former_public_placeholders_are_refused_everywhere(stage, name, tmp_path) -> None:
    with pytest.raises(ValidationError, match="known placeholder"):
        Settings(
            environment=stage,
            secrets_file=tmp_path / "secrets.json",
            **{name: FORMER_PLACEHOLDERS[name]},
        )


def test_short_secrets_are_refused(tmp_path) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(jwt_secret="too-short-to-be-a-key", secrets_file=tmp_path / "s.json")


def test_a_local_install_generates_its_secrets_once_readable_by_its_owner_only(tmp_path) -> None:
    path = tmp_path / "var" / "secrets.json"
    first = Settings(environment="development", secrets_file=path, **UNSET)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = {name: getattr(first, name) for name in FORMER_PLACEHOLDERS}
    assert all(isinstance(value, SecretStr) for value in values.values())
    plain = {name: value.get_secret_value() for name, value in values.items()}
    assert len(set(plain.values())) == 3 and all(len(v) >= 48 for v in plain.values())
    for value in plain.values():
        assert value not in repr(first) and value not in str(first.model_dump())
    again = Settings(environment="development", secrets_file=path, **UNSET)  # the worker, say
    assert {name: getattr(again, name).get_secret_value() for name in plain} == plain
    # A configured secret wins over the file.
    configured = "c" * 40
    assert Settings(secrets_file=path, jwt_secret=configured).jwt_secret.get_secret_value() == (
        configured
    )


def test_a_secrets_file_others_can_read_is_refused(tmp_path) -> None:
    path = tmp_path / "secrets.json"
    local_secrets(path)
    path.chmod(0o644)
    with pytest.raises(ValidationError, match="chmod 600"):
        Settings(secrets_file=path, **UNSET)


def test_processes_starting_together_share_one_set_of_secrets(tmp_path) -> None:
    path = tmp_path / "secrets.json"
    found: list[dict[str, str]] = []
    start = threading.Barrier(8)

    def read() -> None:
        start.wait()
        found.append(local_secrets(path))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and all(f == found[0] for f in found)
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.json"]  # no temporary file left


def test_production_needs_every_secret_it_uses(tmp_path) -> None:
    with pytest.raises(ValidationError, match="CURE_JWT_SECRET must be set in production"):
        Settings(environment="production", secrets_file=tmp_path / "s.json", **UNSET)
    assert not (tmp_path / "s.json").exists()  # nothing generated in production
    enough = Settings(**{**PRODUCTION, "storage_secret": None}, secrets_file=tmp_path / "s.json")
    assert enough.storage_secret is None  # not used with S3: not needed


# A production configuration with credentials of its own (as scripts/secrets writes for compose).
PRODUCTION = {
    "environment": "production",
    "jwt_secret": "j" * 40,
    "callback_signing_key": "k" * 40,
    "database_url": "postgresql+asyncpg://cure:9f86d081884c7d659a2feaa0c55ad015@db:5432/cure",
    "broker_url": "amqp://cure:3c59dc048e8850243be8079a5c74d079@rabbitmq:5672/",
    "storage_backend": "s3",
    "s3_access_key_id": "cure-api",
    "s3_secret_access_key": "b6d767d2f8ed5d21a44b0e5886680cb9",
}
# Each well-known default credential of the services CURE uses, with the setting that carries it.
DEFAULT_CREDENTIALS = [
    # the local default: PostgreSQL's superuser without a password (trust authentication)
    ("CURE_DATABASE_URL", {"database_url": "postgresql+asyncpg://postgres@127.0.0.1:5432/cure"}),
    ("CURE_DATABASE_URL", {"database_url": "postgresql+asyncpg://cure:cure@db:5432/cure"}),
    ("CURE_DATABASE_URL", {"database_url": "postgresql+asyncpg://postgres:postgres@db/cure"}),
    ("CURE_DATABASE_URL", {"database_url": "postgresql+asyncpg://app:changeme@db/cure"}),
    ("CURE_BROKER_URL", {"broker_url": "amqp://guest:guest@127.0.0.1:5672/"}),
    ("CURE_BROKER_URL", {"broker_url": "amqp://rabbitmq:5672/"}),  # no account: guest
    ("CURE_BROKER_URL", {"broker_url": "amqp://cure:cure@rabbitmq:5672/"}),
    ("CURE_S3_ACCESS_KEY_ID", {"s3_access_key_id": "minioadmin"}),
    ("CURE_S3_SECRET_ACCESS_KEY", {"s3_secret_access_key": "minioadmin"}),
    ("CURE_S3_SECRET_ACCESS_KEY", {"s3_secret_access_key": "cure-minio-secret"}),
    ("CURE_SMTP_PASSWORD", {"smtp_user": "cure", "smtp_password": "password"}),
]


def test_a_production_configuration_with_its_own_credentials_starts(tmp_path) -> None:
    settings = Settings(**PRODUCTION, secrets_file=tmp_path / "s.json")
    assert settings.environment == "production"


@pytest.mark.parametrize(("variable", "values"), DEFAULT_CREDENTIALS)
def test_production_refuses_the_well_known_default_credentials(variable, values, tmp_path) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(**{**PRODUCTION, **values}, secrets_file=tmp_path / "s.json")
    (error,) = refused.value.errors()
    assert error["msg"].startswith(f"Value error, {variable} ") and "default" in error["msg"]


@pytest.mark.parametrize("stage", ["development", "test"])
@pytest.mark.parametrize(("variable", "values"), DEFAULT_CREDENTIALS)
def test_local_installs_keep_their_default_credentials(stage, variable, values, tmp_path) -> None:
    settings = Settings(
        **{**PRODUCTION, **values, "environment": stage}, secrets_file=tmp_path / "s"
    )
    assert settings.environment == stage


async def test_a_token_signed_with_the_former_placeholder_is_refused(client) -> None:
    customer = await create_customer(client)
    now = int(time.time())
    claims = {
        "sub": customer["customer_id"],
        "client_id": customer["client_id"],
        "scope": "account:read orders:read",
        "iat": now,
        "exp": now + 600,
        "jti": "forged",
        "iss": "cure",
        "aud": "cure-api",
    }
    forged = jwt.encode(
        claims, FORMER_PLACEHOLDERS["jwt_secret"], algorithm="HS256", headers={"typ": "at+jwt"}
    )
    answer = await client.get("/v1/crm/customers/me", headers=bearer(forged))
    assert answer.status_code == 401


def test_every_secret_setting_is_a_secretstr() -> None:
    from cure.config import Settings

    secret_like = [
        name
        for name in Settings.model_fields
        if any(word in name for word in ("secret", "password", "signing_key", "private_key"))
        and not name.endswith(("_file", "_ttl_seconds", "_url", "_min_length", "_threads"))
        and name not in ("secrets_file",)
    ]
    assert {"jwt_secret", "storage_secret", "callback_signing_key", "s3_secret_access_key"} <= set(
        secret_like
    )
    for name in secret_like:
        annotation = str(Settings.model_fields[name].annotation)
        assert "SecretStr" in annotation, (name, annotation)


GROUPS = {
    "operations": "database_pool_size",
    "auth": "access_token_ttl_seconds",
    "orders": "max_attempts",
    "notifications": "smtp_port",
    "worker": "container_memory_mb",
    "storage": "result_link_ttl_seconds",
    "catalogue": "anonymous_reads_per_minute",
    "portal": "quicklook_concurrency",
}


def test_every_setting_is_in_exactly_one_group() -> None:
    """Settings is its groups and nothing else: a new field must be given a concern."""
    groups = [base for base in Settings.__bases__]
    assert len(groups) == len(GROUPS)
    seen: dict[str, str] = {}
    for group in groups:
        for name in group.model_fields:
            assert name not in seen, f"{name} is in {seen.get(name)} and {group.__name__}"
            seen[name] = group.__name__
    assert set(seen) == set(Settings.model_fields)
    # and each field is read from CURE_ and its own name: no alias, the same prefix everywhere
    for group in (*groups, Settings):
        assert group.model_config.get("env_prefix") == "CURE_", group
    for name, field in Settings.model_fields.items():
        assert field.alias is None and field.validation_alias is None, name


def test_each_group_reads_the_same_environment_variables(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The grouping changed no variable's name: CURE_ and the field's name, read through the
    group's view as through the flat name."""
    monkeypatch.setenv("CURE_SECRETS_FILE", str(tmp_path / "secrets.json"))
    for name in GROUPS.values():
        monkeypatch.setenv(f"CURE_{name.upper()}", "7")
    settings = Settings()
    for group, name in GROUPS.items():
        view = getattr(Settings, group).fget
        assert name in typing.get_type_hints(view)["return"].model_fields, (group, name)
        assert getattr(getattr(settings, group), name) == getattr(settings, name) == 7, name
