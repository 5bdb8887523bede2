"""The Docker socket proxy on the real engine: a hardened app run goes through; whatever would give
the holder of the socket the host, or another container or volume on the engine, is refused."""

import asyncio
import http.client
import io
import json
import os
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.models.volumes import Volume

from cure.containers.engine import ContainerLimits, labelled, remove_labelled, run_hardened
from cure.containers.socket_proxy import DockerSocketProxy
from tests.conftest import PROBE_IMAGE, _spawn, _stop

LIMITS = ContainerLimits(
    memory_mb=96, cpus=0.5, pids=32, timeout_seconds=20, max_output_bytes=1024 * 1024
)
DEPLOYMENT = f"proxy-test-{uuid.uuid4().hex[:8]}"
SCOPE = {"cure.deployment": DEPLOYMENT}
RUN = {**SCOPE, "cure.role": "app-run"}  # what everything the proxy admits carries
MARK = {"cure.test": uuid.uuid4().hex}  # what every container and volume of this module carries
SECRET = "s3cret-" + uuid.uuid4().hex
API = "/v1.41"


@pytest.fixture(scope="module")
def proxy_socket(engine) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The proxy's socket (the proxy runs in a thread of its own), serving DEPLOYMENT."""
    folder = tempfile.mkdtemp(prefix="cure-proxy-")
    socket_path = str(Path(folder) / "docker.sock")
    proxy = DockerSocketProxy(listen=socket_path, upstream="/var/run/docker.sock", scope=SCOPE)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(proxy.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield socket_path
    finally:
        asyncio.run_coroutine_threadsafe(proxy.close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        for labels in (MARK, SCOPE):
            remove_labelled(engine, labels)


@pytest.fixture(scope="module")
def proxied(proxy_socket) -> Iterator[docker.DockerClient]:  # type: ignore[no-untyped-def]
    """A Docker client that reaches the engine only through the proxy."""
    client = docker.DockerClient(base_url=f"unix://{proxy_socket}", timeout=60)
    yield client
    client.close()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("docker", timeout=60)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.socket_path)


def raw(socket_path: str, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One request over the proxy's socket, body exactly as given (no client library between)."""
    connection = _UnixConnection(socket_path)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _refused(call, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(APIError) as caught:
        call(*args, **kwargs)
    assert caught.value.status_code == 403, caught.value
    return str(caught.value.explanation)


def _tar(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def run_volume(proxied) -> Volume:  # type: ignore[no-untyped-def]
    """A volume made through the proxy for a run, as run_hardened makes it."""
    return proxied.volumes.create(labels={"cure.order_id": str(uuid.uuid4()), **MARK})


def hardened(volume: str) -> dict[str, Any]:
    """run_hardened's arguments to containers.create."""
    return {
        "command": [],
        "detach": True,
        "labels": {"cure.order_id": str(uuid.uuid4()), **MARK},
        "network_mode": "none",
        "read_only": True,
        "user": "65534:65534",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": "96m",
        "memswap_limit": "96m",
        "nano_cpus": 500_000_000,
        "pids_limit": 32,
        "tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"},
        "volumes": {volume: {"bind": "/job", "mode": "rw"}},
        "working_dir": "/job",
        "environment": {"PYTHONUNBUFFERED": "1"},
        "log_config": docker.types.LogConfig(
            type="json-file", config={"max-size": "16777216", "max-file": "2"}
        ),
    }


def create_body(volume: str, order_id: str) -> dict[str, Any]:
    """The create body the Docker SDK sends for run_hardened (as docker-py 7 writes it)."""
    return {
        "User": "65534:65534",
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Env": ["PYTHONUNBUFFERED=1"],
        "Cmd": [],
        "Image": PROBE_IMAGE,
        "Volumes": {"/job": {}},
        "NetworkDisabled": False,
        "WorkingDir": "/job",
        "HostConfig": {
            "Memory": 96 * 1024 * 1024,
            "MemorySwap": 96 * 1024 * 1024,
            "ReadonlyRootfs": True,
            "NetworkMode": "none",
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "Binds": [f"{volume}:/job:rw"],
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "16777216", "max-file": "2"}},
            "Tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"},
            "PidsLimit": 32,
            "NanoCpus": 500_000_000,
        },
        "Labels": {"cure.order_id": order_id, **RUN, **MARK},
    }


def _containers_of(engine, order_id: str) -> list[Container]:  # type: ignore[no-untyped-def]
    return engine.containers.list(
        all=True, ignore_removed=True, filters={"label": f"cure.order_id={order_id}"}
    )


# A normal run


@pytest.mark.parametrize(
    "labels",
    [{}, SCOPE],  # the proxy adds the deployment's label; the worker's own labels carry it
    ids=["labels added by the proxy", "labels as the worker sets them"],
)
def test_a_hardened_run_goes_through_the_proxy(proxied, engine, labels) -> None:
    order_id = str(uuid.uuid4())
    with tempfile.TemporaryDirectory() as work_dir:
        outcome = run_hardened(
            proxied,
            image=PROBE_IMAGE,
            labels={"cure.order_id": order_id, **labels},
            job={"order_id": order_id, "params": {"mode": "report"}},
            limits=LIMITS,
            work_dir=Path(work_dir),
        )
        assert outcome.exit_code == 0, outcome.logs
        report = json.loads((Path(work_dir) / "outputs" / "report.json").read_text())
    assert report["uid"] == 65534 and report["interfaces"] == ["lo"]
    assert report["tmp_writable"] is True and report["root_writable"] is False
    if report["pids_max"] is not None:  # cgroup v2
        assert int(report["pids_max"]) == 32
    assert "probe ran" in outcome.logs
    label = {"label": f"cure.order_id={order_id}"}
    assert (
        engine.containers.list(all=True, ignore_removed=True, filters=label) == []
    )  # removed, through the proxy
    assert engine.volumes.list(filters=label) == []


def test_the_engine_gets_the_proxys_template_with_this_deployments_labels(
    proxy_socket, engine, run_volume
) -> None:
    """What is forwarded is rebuilt from the template: options the client left out are there."""
    order_id = str(uuid.uuid4())
    body = create_body(run_volume.name, order_id)
    body["Labels"] = {"cure.order_id": order_id, **MARK}
    for key in ("SecurityOpt", "CapDrop", "ReadonlyRootfs", "Tmpfs", "MemorySwap"):
        del body["HostConfig"][key]
    status, answer = raw(
        proxy_socket, "POST", f"{API}/containers/create", json.dumps(body).encode()
    )
    assert status == 201, answer
    (container,) = _containers_of(engine, order_id)
    host = container.attrs["HostConfig"]
    assert host["SecurityOpt"] == ["no-new-privileges"] and host["CapDrop"] == ["ALL"]
    assert host["ReadonlyRootfs"] is True and host["NetworkMode"] == "none"
    assert host["Tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=64m"}
    assert host["MemorySwap"] == host["Memory"] == 96 * 1024 * 1024
    assert container.labels == {"cure.order_id": order_id, **RUN, **MARK}


# Item 2: the create bodies the engine would read otherwise than a check of exact keys


def _duplicate_host_config(body: dict[str, Any]) -> bytes:
    evil = {"Privileged": True, "NetworkMode": "host", "Binds": ["/:/host"]}
    text = json.dumps(body)
    return (
        text[:-1] + ', "HostConfig": ' + json.dumps({**body["HostConfig"], **evil}) + "}"
    ).encode()


def _with(change: Any) -> Any:
    def apply(body: dict[str, Any]) -> bytes:
        change(body)
        return json.dumps(body).encode()

    return apply


BYPASSES = {
    "duplicate HostConfig": _duplicate_host_config,
    "case-variant hostConfig": _with(
        lambda b: b.update(hostConfig={"Privileged": True, "Binds": ["/:/host"]})
    ),
    "case-variant key inside HostConfig": _with(lambda b: b["HostConfig"].update(privileged=True)),
    "HostConfig again, spelt with a long s": _with(
        lambda b: b.update({"Ho\u017ftConfig": {"Privileged": True, "Binds": ["/:/host"]}})
    ),
    "no-new-privileges:false": _with(
        lambda b: b["HostConfig"].update(SecurityOpt=["no-new-privileges:false"])
    ),
    "inline seccomp profile": _with(
        lambda b: b["HostConfig"].update(
            SecurityOpt=["no-new-privileges", 'seccomp={"defaultAction": "SCMP_ACT_ALLOW"}']
        )
    ),
    "PidsLimit -1": _with(lambda b: b["HostConfig"].update(PidsLimit=-1)),
    "PidsLimit true": _with(lambda b: b["HostConfig"].update(PidsLimit=True)),
    'User "00"': _with(lambda b: b.update(User="00")),
    "empty MaskedPaths": _with(lambda b: b["HostConfig"].update(MaskedPaths=[])),
    "empty ReadonlyPaths": _with(lambda b: b["HostConfig"].update(ReadonlyPaths=[])),
    "another deployment's label": _with(lambda b: b["Labels"].update({"cure.deployment": "other"})),
    "an entrypoint": _with(lambda b: b.update(Entrypoint=["/bin/sh"])),
    "a second mount": _with(lambda b: b["HostConfig"].update(Mounts=[{"Type": "bind"}])),
    "a host path": _with(lambda b: b["HostConfig"].update(Binds=["/etc:/job:rw"])),
    "NaN for a limit": lambda b: (
        json.dumps(b).replace('"Memory": 100663296', '"Memory": NaN').encode()
    ),
}


@pytest.mark.parametrize("mutate", BYPASSES.values(), ids=BYPASSES.keys())
def test_create_bodies_the_engine_would_read_otherwise_are_refused(
    proxy_socket, engine, run_volume, mutate
) -> None:
    order_id = str(uuid.uuid4())
    body = mutate(create_body(run_volume.name, order_id))
    status, answer = raw(proxy_socket, "POST", f"{API}/containers/create", body)
    assert status == 403, answer
    assert b"refused by the CURE Docker proxy" in answer
    assert _containers_of(engine, order_id) == []


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
        ({"pids_limit": 0}, "pid limit"),
    ],
)
def test_containers_that_could_reach_the_host_are_refused(
    proxied, run_volume, change, reason
) -> None:
    kwargs = {**hardened(run_volume.name), **change}
    explanation = _refused(proxied.containers.create, PROBE_IMAGE, **kwargs)
    assert reason in explanation


VOLUME_BYPASSES = {
    "bind driver options": {"DriverOpts": {"type": "none", "o": "bind", "device": "/"}},
    "case-variant driverOpts": {"driverOpts": {"type": "none", "o": "bind", "device": "/"}},
    "a driver": {"Driver": "local"},
    "a name of its own": {"Name": "cure-chosen-name"},
    "another deployment's label": {"Labels": {"cure.deployment": "other"}},
}


@pytest.mark.parametrize("extra", VOLUME_BYPASSES.values(), ids=VOLUME_BYPASSES.keys())
def test_volumes_other_than_a_runs_are_refused(proxy_socket, engine, extra) -> None:
    order_id = str(uuid.uuid4())
    labels = {"cure.order_id": order_id, **MARK, **extra.get("Labels", {})}
    others = {key: value for key, value in extra.items() if key != "Labels"}
    text = json.dumps({"Labels": labels})[:-1] + "".join(
        f", {json.dumps(key)}: {json.dumps(value)}" for key, value in others.items()
    )  # the keys as written, so a case variant reaches the proxy as it is
    text += "}"
    status, answer = raw(proxy_socket, "POST", f"{API}/volumes/create", text.encode())
    assert status == 403, answer
    assert engine.volumes.list(filters={"label": f"cure.order_id={order_id}"}) == []


def test_a_body_on_start_is_refused_in_every_api_version(
    proxy_socket, proxied, engine, run_volume
) -> None:
    """Before API 1.24 the engine applied a HostConfig sent with start."""
    container = proxied.containers.create(PROBE_IMAGE, **hardened(run_volume.name))
    body = json.dumps({"Privileged": True, "Binds": ["/:/host"]}).encode()
    for version in ("/v1.23", API, ""):
        target = f"{version}/containers/{container.id}/start"
        status, answer = raw(proxy_socket, "POST", target, body)
        assert status == 403, (version, answer)
    container = engine.containers.get(container.id)
    assert container.status == "created" and container.attrs["HostConfig"]["Privileged"] is False


def test_a_client_still_sending_a_refused_requests_body_reads_the_refusal(proxy_socket) -> None:
    """A request refused on its head (its body's length never read) gets the 403, and the proxy
    goes on reading what the client still sends (a lingering close) instead of closing the
    socket under it: http.client sends a body after its head and failed with a broken pipe."""
    body = json.dumps({"Privileged": True}).encode()
    head = (
        "POST /v1.23/containers/abc/start HTTP/1.1\r\nHost: docker\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(proxy_socket)
        client.sendall(head.encode())
        answer = b""
        while chunk := client.recv(65536):  # to the proxy's end of its answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 403"), answer
        assert b"API versions before 1.24" in answer
        client.sendall(body)  # the proxy still reads: no broken pipe


def test_calls_a_run_never_makes_are_refused(proxied, engine, run_volume) -> None:
    assert "not a call" in _refused(proxied.images.pull, "debian", tag="bookworm-slim")
    assert "not a call" in _refused(proxied.images.get, PROBE_IMAGE)  # its Env, its layers
    container = proxied.containers.create(PROBE_IMAGE, **hardened(run_volume.name))
    assert "not a call" in _refused(container.exec_run, ["id"])
    assert "not a call" in _refused(container.update, mem_limit="1g")
    assert "not a call" in _refused(container.rename, "a-name")


# Item 3: only this deployment's app runs, and only their job directory


OUTSIDERS = {
    "not CURE's": {},
    "another deployment's run": {"cure.deployment": "someone-else", "cure.role": "app-run"},
    "this deployment's, not a run": SCOPE,
}


@pytest.fixture(scope="module", params=OUTSIDERS.values(), ids=OUTSIDERS.keys())
def outsider(request, engine) -> Iterator[tuple[Container, Volume]]:  # type: ignore[no-untyped-def]
    """A running container (with a secret in its environment) and a volume that the proxy did
    not make for one of this deployment's runs (made on the engine directly)."""
    labels = {**request.param, **MARK}
    container = engine.containers.run(
        PROBE_IMAGE,
        entrypoint=["sleep", "600"],
        detach=True,
        network_mode="none",
        labels=labels,
        environment={"CURE_SECRET": SECRET},
    )
    volume = engine.volumes.create(labels=labels)
    yield container, volume
    for user in engine.containers.list(
        all=True, ignore_removed=True, filters={"volume": volume.name}
    ):
        user.remove(force=True)
    container.remove(force=True)
    volume.remove(force=True)


def test_another_containers_details_files_and_logs_are_refused(proxy_socket, outsider) -> None:
    container, _ = outsider
    for reference in (container.id, container.id[:12], container.name):
        for method, target in [
            ("GET", f"/containers/{reference}/json"),
            ("GET", f"/containers/{reference}/logs?stdout=1&stderr=1"),
            ("GET", f"/containers/{reference}/archive?path=/etc/hostname"),
            ("GET", f"/containers/{reference}/archive?path=/job"),
            ("HEAD", f"/containers/{reference}/archive?path=/job"),
        ]:
            status, answer = raw(proxy_socket, method, API + target)
            assert status == 403, (method, target, answer)
            assert SECRET.encode() not in answer


def test_another_container_cannot_be_written_stopped_or_removed(
    proxy_socket, engine, outsider
) -> None:
    container, _ = outsider
    planted = _tar("planted", b"x")
    status, _ = raw(
        proxy_socket, "PUT", f"{API}/containers/{container.id}/archive?path=/tmp", planted
    )
    assert status == 403
    for call in ("stop", "kill", "wait", "start"):
        status, answer = raw(proxy_socket, "POST", f"{API}/containers/{container.id}/{call}")
        assert status == 403, (call, answer)
    status, _ = raw(proxy_socket, "DELETE", f"{API}/containers/{container.id}?force=1")
    assert status == 403
    container.reload()
    assert container.status == "running"
    with pytest.raises(NotFound):
        container.get_archive("/tmp/planted")


def test_another_volume_cannot_be_mounted_read_or_removed(
    proxy_socket, proxied, engine, outsider
) -> None:
    _, volume = outsider
    order_id = str(uuid.uuid4())
    body = json.dumps(create_body(volume.name, order_id)).encode()
    status, answer = raw(proxy_socket, "POST", f"{API}/containers/create", body)
    assert status == 403, answer
    assert _containers_of(engine, order_id) == []
    assert raw(proxy_socket, "GET", f"{API}/volumes/{volume.name}")[0] == 403
    assert raw(proxy_socket, "DELETE", f"{API}/volumes/{volume.name}?force=1")[0] == 403
    volume.reload()  # still there


def test_a_volume_nobody_made_is_not_mounted(proxy_socket, engine) -> None:
    """The engine would create a missing named volume on create: a name of its choosing."""
    name = f"cure-unmade-{uuid.uuid4().hex}"
    order_id = str(uuid.uuid4())
    body = json.dumps(create_body(name, order_id)).encode()
    assert raw(proxy_socket, "POST", f"{API}/containers/create", body)[0] == 403
    with pytest.raises(NotFound):
        engine.volumes.get(name)


def test_listings_show_only_this_deployments_runs(proxied, engine, outsider, run_volume) -> None:
    container, volume = outsider
    order_id = str(uuid.uuid4())
    kwargs = {**hardened(run_volume.name), "labels": {"cure.order_id": order_id, **MARK}}
    own = proxied.containers.create(PROBE_IMAGE, **kwargs)
    listed = {c.id for c in proxied.containers.list(all=True)}
    assert own.id in listed and container.id not in listed
    assert all(c.labels.items() >= RUN.items() for c in proxied.containers.list(all=True))
    other = {"label": ["cure.deployment=someone-else"]}
    assert proxied.containers.list(all=True, ignore_removed=True, filters=other) == []
    volumes = {v.name for v in proxied.volumes.list()}
    assert run_volume.name in volumes and volume.name not in volumes
    assert proxied.volumes.list(filters=other) == []
    # The worker's clean-up by label, through the proxy, removes its own and nothing else.
    expected = {"cure.order_id": order_id, **RUN, **MARK}
    assert labelled(proxied, {"cure.order_id": order_id}) == [expected]
    outsider_labels = dict(container.labels)
    assert remove_labelled(proxied, MARK) >= 1  # the outsider carries MARK too
    assert _containers_of(engine, order_id) == []
    container.reload()
    assert dict(container.labels) == outsider_labels  # still there
    volume.reload()


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "/", "/tmp", "/job/../etc", "/jobs", "//job", "job", "/job%2F..%2Fetc"],
)
def test_archives_outside_the_job_directory_are_refused(
    proxy_socket, proxied, run_volume, path
) -> None:
    container = proxied.containers.create(PROBE_IMAGE, **hardened(run_volume.name))
    base = f"{API}/containers/{container.id}/archive?path={path}"
    for method, body in [("GET", None), ("HEAD", None), ("PUT", _tar("planted", b"x"))]:
        status, answer = raw(proxy_socket, method, base, body)
        assert status == 403, (method, path, answer)
    twice = f"{API}/containers/{container.id}/archive?path=/job&path={path}"
    assert raw(proxy_socket, "GET", twice)[0] == 403


def test_archives_under_the_job_directory_go_through(proxied, run_volume) -> None:
    container = proxied.containers.create(PROBE_IMAGE, **hardened(run_volume.name))
    assert container.put_archive("/job", _tar("inputs.txt", b"hello"))
    stream, stat = container.get_archive("/job/inputs.txt")
    assert stat["name"] == "inputs.txt"
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile("inputs.txt")
        assert member is not None and member.read() == b"hello"


def test_a_chunked_archive_is_framed_again_and_goes_through(
    proxy_socket, proxied, run_volume
) -> None:
    container = proxied.containers.create(PROBE_IMAGE, **hardened(run_volume.name))
    data = _tar("chunked.txt", b"sent in chunks")
    connection = _UnixConnection(proxy_socket)
    try:
        pieces = (data[i : i + 1000] for i in range(0, len(data), 1000))
        target = f"{API}/containers/{container.id}/archive?path=/job"
        connection.request("PUT", target, body=pieces, encode_chunked=True)
        assert connection.getresponse().status == 200
    finally:
        connection.close()
    stream, _ = container.get_archive("/job/chunked.txt")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile("chunked.txt")
        assert member is not None and member.read() == b"sent in chunks"


def test_a_container_that_is_gone_is_not_found(proxied) -> None:
    """The engine's own 404, which run_hardened reads as a container removed under it."""
    with pytest.raises(NotFound):
        proxied.containers.get(f"cure-gone-{uuid.uuid4().hex}")


def test_the_command_serves_its_deployment_on_a_socket_of_its_mode(engine) -> None:
    socket_path = str(Path(tempfile.mkdtemp(prefix="cure-proxy-")) / "docker.sock")
    command = [sys.executable, "-m", "cure", "docker-proxy", "--socket", socket_path]
    command += ["--mode", "600", "--deployment", DEPLOYMENT]
    process = _spawn(command, "docker-proxy.log", dict(os.environ))
    try:
        client = _served(socket_path, process)
        assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o600
        volume = client.volumes.create(labels=MARK)
        try:
            assert volume.attrs["Labels"] == {**RUN, **MARK}
            listed = client.volumes.list()
            assert volume.name in {v.name for v in listed}
            assert all(v.attrs["Labels"].items() >= RUN.items() for v in listed)
        finally:
            engine.volumes.get(volume.name).remove()
            client.close()
    finally:
        _stop(process)


def _served(socket_path: str, process: subprocess.Popen[bytes]) -> docker.DockerClient:
    """A client of the command's socket, once it serves (it starts in about a second)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "cure docker-proxy exited"
        try:
            return docker.DockerClient(base_url=f"unix://{socket_path}", timeout=10)
        except docker.errors.DockerException:
            time.sleep(0.2)
    raise AssertionError("cure docker-proxy did not come up")
