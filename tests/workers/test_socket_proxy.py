"""The Docker socket proxy on the real engine: a hardened app run goes through, and whatever
would give the holder of the socket the host is refused."""

import asyncio
import json
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.errors import APIError

from cure.containers.engine import ContainerLimits, run_hardened
from cure.containers.socket_proxy import DockerSocketProxy
from tests.conftest import PROBE_IMAGE

LIMITS = ContainerLimits(
    memory_mb=96, cpus=0.5, pids=32, timeout_seconds=20, max_output_bytes=1024 * 1024
)
HARDENED = {
    "network_mode": "none",
    "read_only": True,
    "user": "65534:65534",
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "mem_limit": "96m",
    "pids_limit": 32,
}


@pytest.fixture(scope="module")
def proxied(engine) -> Iterator[docker.DockerClient]:  # type: ignore[no-untyped-def]
    """A Docker client that reaches the engine only through the proxy (its own thread)."""
    folder = tempfile.mkdtemp(prefix="cure-proxy-")
    socket_path = str(Path(folder) / "docker.sock")
    proxy = DockerSocketProxy(listen=socket_path, upstream="/var/run/docker.sock")
    loop = asyncio.new_event_loop()
    loop.run_until_complete(proxy.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    client = docker.DockerClient(base_url=f"unix://{socket_path}", timeout=60)
    try:
        yield client
    finally:
        client.close()
        asyncio.run_coroutine_threadsafe(proxy.close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def _refused(call, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(APIError) as caught:
        call(*args, **kwargs)
    assert caught.value.status_code == 403
    return str(caught.value.explanation)


def test_a_hardened_run_goes_through_the_proxy(proxied, engine) -> None:
    order_id = str(uuid.uuid4())
    with tempfile.TemporaryDirectory() as work_dir:
        outcome = run_hardened(
            proxied,
            image=PROBE_IMAGE,
            labels={"cure.order_id": order_id},
            job={"order_id": order_id, "params": {"mode": "report"}},
            limits=LIMITS,
            work_dir=Path(work_dir),
        )
        assert outcome.exit_code == 0, outcome.logs
        report = json.loads((Path(work_dir) / "outputs" / "report.json").read_text())
    assert report["uid"] == 65534 and report["interfaces"] == ["lo"]
    assert "probe ran" in outcome.logs
    label = {"label": f"cure.order_id={order_id}"}
    assert engine.containers.list(all=True, filters=label) == []  # removed, through the proxy


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"privileged": True}, "privileged"),
        ({"network_mode": "host"}, "no network"),
        ({"volumes": {"/": {"bind": "/host", "mode": "rw"}}}, "host path"),
        ({"user": "0"}, "non-root"),
        ({"read_only": False}, "read-only"),
        ({"cap_add": ["SYS_ADMIN"]}, "capabilit"),
        ({"security_opt": ["seccomp=unconfined", "no-new-privileges"]}, "confined"),
        ({"pid_mode": "host"}, "host namespaces"),
        ({"devices": ["/dev/sda:/dev/sda"]}, "devices"),
    ],
)
def test_containers_that_could_reach_the_host_are_refused(proxied, change, reason) -> None:
    explanation = _refused(proxied.containers.create, PROBE_IMAGE, **{**HARDENED, **change})
    assert reason in explanation


def test_calls_a_run_never_makes_are_refused(proxied, engine) -> None:
    assert "not a call" in _refused(proxied.images.pull, "debian", tag="bookworm-slim")
    assert "driver options" in _refused(
        proxied.volumes.create, driver_opts={"type": "none", "o": "bind", "device": "/"}
    )
    container = proxied.containers.create(PROBE_IMAGE, command=["true"], **HARDENED)
    try:
        assert "not a call" in _refused(container.exec_run, ["id"])
        assert "not a call" in _refused(container.update, mem_limit="1g")
    finally:
        engine.containers.get(container.id).remove(force=True)
