"""compose.yaml has no credentials of its own: it refuses to run without the ones scripts/secrets
writes into .env; with them, the API reaches storage as a user of its own limited to the results
bucket, and every CURE process starts in production with what compose gives it."""

import json
import os
import stat

import pytest
import yaml

from cure.config import Settings
from tests.conftest import ROOT
from tests.ops.compose import compose_config, write_secrets

REQUIRED = {
    "CURE_POSTGRES_PASSWORD",
    "CURE_RABBITMQ_PASSWORD",
    "CURE_MINIO_ROOT_PASSWORD",
    "CURE_S3_SECRET_ACCESS_KEY",
    "CURE_JWT_SECRET",
    "CURE_CALLBACK_SIGNING_KEY",
    "CURE_SOURCES_KEY",
    "CURE_GRAFANA_PASSWORD",
}
POLICY = ROOT / "deploy" / "minio" / "cure-api-policy.json"


def read_env(path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


def test_compose_refuses_to_run_without_its_credentials(tmp_path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    refused = compose_config(env_file=empty)
    assert refused.returncode != 0
    assert "scripts/secrets" in refused.stderr, refused.stderr


def test_scripts_secrets_writes_random_credentials_readable_by_its_owner_only(tmp_path) -> None:
    path = tmp_path / ".env"
    write_secrets(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = read_env(path)
    assert set(values) == REQUIRED
    assert len(set(values.values())) == len(REQUIRED)
    assert all(len(value) >= 32 and value.isalnum() for value in values.values())
    # Run again (say, after an update named a new variable): what is there stays, what is
    # missing is added.
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items() if k != "CURE_JWT_SECRET"))
    write_secrets(path)
    again = read_env(path)
    assert set(again) == REQUIRED
    assert {k: v for k, v in again.items() if k != "CURE_JWT_SECRET"} == {
        k: v for k, v in values.items() if k != "CURE_JWT_SECRET"
    }
    assert again["CURE_JWT_SECRET"] != values["CURE_JWT_SECRET"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> tuple[dict, dict[str, str], str]:  # type: ignore[type-arg]
    """The rendered stack (monitoring profile included) with credentials from scripts/secrets."""
    path = tmp_path_factory.mktemp("compose") / ".env"
    write_secrets(path)
    rendered = compose_config("--profile=monitoring", env_file=path)
    assert rendered.returncode == 0, rendered.stderr
    return yaml.safe_load(rendered.stdout), read_env(path), rendered.stdout


def test_every_service_takes_its_credentials_from_the_env_file(stack) -> None:
    config, values, text = stack
    services = config["services"]
    assert services["db"]["environment"]["POSTGRES_PASSWORD"] == values["CURE_POSTGRES_PASSWORD"]
    rabbitmq = services["rabbitmq"]["environment"]
    assert rabbitmq["RABBITMQ_DEFAULT_PASS"] == values["CURE_RABBITMQ_PASSWORD"]
    assert (
        services["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
        == (values["CURE_MINIO_ROOT_PASSWORD"])
    )
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == values["CURE_GRAFANA_PASSWORD"]
    api = services["api"]["environment"]
    assert values["CURE_POSTGRES_PASSWORD"] in api["CURE_DATABASE_URL"]
    assert values["CURE_RABBITMQ_PASSWORD"] in api["CURE_BROKER_URL"]
    for default in ("minioadmin", "guest", "cure-minio-secret", "cure-grafana", ":cure@"):
        assert default not in text, default


def test_the_api_uses_a_storage_user_of_its_own_limited_to_the_results_bucket(stack) -> None:
    config, values, _ = stack
    services = config["services"]
    api, minio = services["api"]["environment"], services["minio"]["environment"]
    assert api["CURE_S3_ACCESS_KEY_ID"] != minio["MINIO_ROOT_USER"]
    assert api["CURE_S3_SECRET_ACCESS_KEY"] == values["CURE_S3_SECRET_ACCESS_KEY"]
    assert api["CURE_S3_SECRET_ACCESS_KEY"] != minio["MINIO_ROOT_PASSWORD"]
    # The bucket job makes that user, with the policy below, before the API and worker start.
    job = services["minio-bucket"]
    assert job["image"].startswith("minio/mc")
    assert job["environment"]["CURE_S3_ACCESS_KEY_ID"] == api["CURE_S3_ACCESS_KEY_ID"]
    assert job["environment"]["CURE_S3_SECRET_ACCESS_KEY"] == api["CURE_S3_SECRET_ACCESS_KEY"]
    assert job["environment"]["CURE_S3_BUCKET"] == api["CURE_S3_BUCKET"]
    mounted = " ".join(str(volume) for volume in job["volumes"])
    assert "deploy/minio" in mounted
    for name in ("api", "worker"):
        gate = services[name]["depends_on"]["minio-bucket"]["condition"]
        assert gate == "service_completed_successfully"
    bucket = api["CURE_S3_BUCKET"]
    statements = json.loads(POLICY.read_text())["Statement"]
    resources = {resource for s in statements for resource in s["Resource"]}
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    actions = {action for s in statements for action in s["Action"]}
    assert all(action.startswith("s3:") and "*" not in action for action in actions)
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"} <= actions


@pytest.mark.parametrize("name", ["migrate", "api", "worker", "flower"])
def test_every_cure_process_starts_in_production_with_what_compose_gives_it(
    stack, name, monkeypatch
) -> None:
    config, values, _ = stack
    environment = config["services"][name]["environment"]
    for variable in [v for v in os.environ if v.startswith("CURE_")]:
        monkeypatch.delenv(variable)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, str(value))
    settings = Settings()
    assert settings.environment == "production"
    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() == values["CURE_JWT_SECRET"]
    assert settings.sources_key is not None
    assert settings.sources_key.get_secret_value() == values["CURE_SOURCES_KEY"]
