"""Compose on compose.yaml for tests: `docker compose` or docker-compose, reading its variables
from the env file given and never from the test run's own CURE_* environment."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is None:
        pytest.fail(
            "neither `docker compose` nor docker-compose is installed (scripts/test installs it)"
        )
    return [legacy]


def write_secrets(path: Path) -> subprocess.CompletedProcess[str]:
    """scripts/secrets, as an operator runs it before the first `docker compose up`."""
    return subprocess.run(
        [str(ROOT / "scripts" / "secrets"), str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )


def compose_config(*args: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    """`compose [ARGS] config` of compose.yaml with the variables of ``env_file`` only."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CURE_")}
    return subprocess.run(
        [
            *compose_command(),
            *("--env-file", str(env_file), "-f", str(ROOT / "compose.yaml")),
            *args,
            "config",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
