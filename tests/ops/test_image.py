"""The CURE image builds here (from the local Debian base when no registry has one) with the
same script operators use, and its `cure` command runs. Later runs hit the layer cache."""

import subprocess

from tests.conftest import ROOT

TAG = "cure-test-image:latest"


def test_the_cure_image_builds_and_runs_cure() -> None:
    built = subprocess.run(
        ["bash", str(ROOT / "scripts" / "image"), TAG],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,  # the first build installs every dependency; later ones take seconds
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "run", "--rm", "--network", "none", TAG, *command],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    helped = run("cure", "--help")
    assert helped.returncode == 0, helped.stderr
    for command in ("api", "worker", "log-saver", "mail", "check"):
        assert command in helped.stdout
    # every dependency is in: the API, the worker and the migrations import
    imported = run(
        "python3",
        "-c",
        "import cure.main, cure.workers.celery_app, cure.kit.provision as p, os;"
        "print(os.getuid(), p.ALEMBIC_INI.exists())",
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == ["10001", "True"]
