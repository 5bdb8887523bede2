from pathlib import Path

import docker
import pytest

PROBE_IMAGE = "cure-test-probe:latest"


@pytest.fixture(scope="session")
def engine():
    """The real Docker engine, with the probe app's image built."""
    client = docker.from_env()
    client.images.build(
        path=str(Path(__file__).parent / "probe_app"), tag=PROBE_IMAGE, network_mode="host", rm=True
    )
    yield client
    client.close()
