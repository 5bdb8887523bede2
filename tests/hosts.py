"""More worker hosts on this one machine, for tests and benchmarks.

A ``Lan`` is a Linux bridge with an address of this machine on it (10.231.N.1/24, a range of
its own); it carries relays bound to that address which forward to the services that listen on
127.0.0.1 only (PostgreSQL, RabbitMQ, the S3 test server, the API). A ``Host`` is a network
namespace plugged into the bridge by a veth pair, with an address of its own, a PID, UTS and
mount namespace (so its own hostname, and every one of its processes dies with it), a Docker
engine of its own (own data root, exec root, socket, pid file and cgroup parent) and the
processes a test starts in it, such as ``cure worker``. From inside, the machine's loopback
services are reachable only through the relays on the bridge.

Everything made here is removed by ``close()``, whatever state it is in: processes by PID (the
host's PID namespace init, whose death takes every process of the namespace with it), the
namespace, the bridge, the relays, leftover mounts and cgroups, the temp folders.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "10.231"  # an unusual private range: 10.231.N.0/24, N picked free at random
TOOLS = ("ip", "unshare", "nsenter", "dockerd", "docker")


def unavailable() -> str | None:
    """Why hosts cannot be made on this machine, or None when they can."""
    if sys.platform != "linux":
        return "network namespaces exist on Linux only"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed"
    return None


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _quietly(*args: str) -> None:
    subprocess.run(args, capture_output=True, check=False)


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {seconds:.0f}s")
        time.sleep(0.2)


class Relay:
    """Listens on ``host`` (a free port) and relays every connection to ``target``, both ways,
    half-closes included, so a peer that goes away is seen going away on the other side."""

    def __init__(self, host: str, target: tuple[str, int]) -> None:
        self.target = target
        self._server = socket.create_server((host, 0), backlog=256)
        self.host = host
        self.port = int(self._server.getsockname()[1])
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name=f"relay-{self.port}", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            pair = (client, upstream)
            for one in pair:
                one.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._open.update(pair)
            left = [2]
            for source, sink in (pair, pair[::-1]):
                threading.Thread(
                    target=self._pump, args=(source, sink, pair, left), daemon=True
                ).start()

    def _pump(
        self,
        source: socket.socket,
        sink: socket.socket,
        pair: tuple[socket.socket, socket.socket],
        left: list[int],
    ) -> None:
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:  # a reset: pass it on by closing both ends
            for one in pair:
                with contextlib.suppress(OSError):
                    one.shutdown(socket.SHUT_RDWR)
        with self._lock:
            left[0] -= 1
            if left[0] == 0:
                for one in pair:
                    one.close()
                    self._open.discard(one)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._server.close()
        with self._lock:
            for one in self._open:
                with contextlib.suppress(OSError):
                    one.shutdown(socket.SHUT_RDWR)
                one.close()
            self._open.clear()


def _free_subnet() -> str:
    used = _run("ip", "-o", "-4", "addr", "show")
    candidates = list(range(1, 255))
    random.shuffle(candidates)
    for n in candidates:
        if f" {PREFIX}.{n}." not in used:
            return f"{PREFIX}.{n}"
    raise RuntimeError(f"no free {PREFIX}.N.0/24 on this machine")


class Lan:
    """A bridge on this machine that hosts plug into, and relays from its address to services
    on 127.0.0.1."""

    def __init__(self) -> None:
        self.tag = f"{os.getpid() % 100000}"
        self.bridge = f"cbr{self.tag}"
        self.subnet = _free_subnet()
        self.address = f"{self.subnet}.1"
        self.relays: list[Relay] = []
        self.hosts: list[Host] = []
        _run("ip", "link", "add", "name", self.bridge, "type", "bridge")
        try:
            _run("ip", "addr", "add", f"{self.address}/24", "dev", self.bridge)
            _run("ip", "link", "set", self.bridge, "up")
        except Exception:
            self.close()
            raise

    def relay(self, port: int) -> Relay:
        """A relay from this LAN's address to 127.0.0.1:``port``."""
        relay = Relay(self.address, ("127.0.0.1", port))
        self.relays.append(relay)
        return relay

    def host(self, name: str, scratch: Path | None = None) -> Host:
        """A new host on this LAN, its namespaces made (no engine or process started yet)."""
        host = Host(self, name, f"{self.subnet}.{10 + len(self.hosts)}", len(self.hosts))
        self.hosts.append(host)
        host.start()
        return host

    def close(self) -> None:
        for host in self.hosts:
            host.close()
        for relay in self.relays:
            relay.close()
        _quietly("ip", "link", "del", self.bridge)


class Host:
    """A worker host: a network, PID, UTS and mount namespace of its own on the LAN."""

    def __init__(self, lan: Lan, name: str, address: str, index: int) -> None:
        self.lan = lan
        self.name = name  # also its hostname
        self.address = address
        self.netns = f"{name}-{lan.tag}"
        self.outer = f"ch{lan.tag}h{index}"  # veth end on the bridge
        self.inner = f"ch{lan.tag}n{index}"  # veth end in the namespace
        self.dir = Path(tempfile.mkdtemp(prefix=f"{name}-"))  # short: socket paths are bounded
        self.docker_url = f"unix://{self.dir}/docker.sock"
        self.cgroup_parent = f"/{self.netns}"
        self.init: subprocess.Popen[bytes] | None = None
        self.init_pid: int | None = None  # PID 1 of its PID namespace, as this machine sees it
        self.processes: list[subprocess.Popen[bytes]] = []
        self.engine_process: subprocess.Popen[bytes] | None = None
        self.lost = False

    # -- making it -------------------------------------------------------------------------------

    def start(self) -> None:
        _run("ip", "netns", "add", self.netns)
        _run("ip", "link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
        _run("ip", "link", "set", self.inner, "netns", self.netns)
        _run("ip", "link", "set", self.outer, "master", self.lan.bridge)
        _run("ip", "link", "set", self.outer, "up")
        _run("ip", "-n", self.netns, "addr", "add", f"{self.address}/24", "dev", self.inner)
        _run("ip", "-n", self.netns, "link", "set", self.inner, "up")
        _run("ip", "-n", self.netns, "link", "set", "lo", "up")
        # PID 1 of the host: sets the hostname, then sleeps. Its death ends every process of the
        # namespace, as a machine's power cut would. nsenter, not `ip netns exec`: that one mounts
        # a new /sys without the cgroup hierarchy a Docker engine needs.
        self.init = subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{self.netns}",
                "unshare",
                "--pid",
                "--fork",
                "--uts",
                "--mount",
                "--mount-proc",
                "--propagation",
                "private",
                "sh",
                "-c",
                f"hostname {self.name} && exec sleep infinity",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # unshare's complaint as its child is killed
            start_new_session=True,
        )
        wait_until(self._found_init, 10, f"{self.name}'s init")

    def _found_init(self) -> bool:
        assert self.init is not None
        if self.init.poll() is not None:
            raise RuntimeError(f"{self.name}'s init exited with {self.init.returncode}")
        # nsenter execs unshare, which forks PID 1 of the namespace: sh, then sleep
        children = Path(f"/proc/{self.init.pid}/task/{self.init.pid}/children")
        with contextlib.suppress(OSError):
            for pid in children.read_text().split():
                if Path(f"/proc/{pid}/comm").read_text().strip() == "sleep":
                    self.init_pid = int(pid)
                    return True
        return False

    def spawn(
        self, args: list[str], *, log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a process inside the host (all its namespaces), output appended to ``log``."""
        assert self.init_pid is not None and not self.lost
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as sink:
            process = subprocess.Popen(
                [
                    "nsenter",
                    f"--target={self.init_pid}",
                    "--net",
                    "--pid",
                    "--uts",
                    "--mount",
                    f"--wd={ROOT}",
                    "--",
                    *args,
                ],
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=sink,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def start_engine(self, log: Path, seconds: float = 60) -> None:
        """The host's own Docker engine, as scripts/lib.sh starts one: no bridge, no iptables."""
        self.engine_process = self.spawn(
            [
                "dockerd",
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                f"--data-root={self.dir}/data",
                f"--exec-root={self.dir}/exec",
                f"--pidfile={self.dir}/docker.pid",
                f"--cgroup-parent={self.cgroup_parent}",
                f"--host={self.docker_url}",
            ],
            log=log,
        )

        def answers() -> bool:
            if self.engine_process is not None and self.engine_process.poll() is not None:
                raise RuntimeError(f"{self.name}'s dockerd exited; see {log}")
            try:
                with contextlib.closing(self.client()) as client:
                    return bool(client.ping())
            except Exception:
                return False

        wait_until(answers, seconds, f"{self.name}'s Docker engine")

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.docker_url, timeout=60)

    def load_images(self, *images: str) -> None:
        """Copy images from this machine's engine into the host's (docker save | docker load)."""
        save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
        assert save.stdout is not None
        try:
            load = subprocess.run(
                ["docker", "-H", self.docker_url, "load", "-q"],
                stdin=save.stdout,
                capture_output=True,
                check=False,
            )
        finally:
            save.stdout.close()
            save.wait()
        if save.returncode or load.returncode:
            raise RuntimeError(f"loading {images} into {self.name} failed: {load.stderr!r}")

    # -- losing and removing it ------------------------------------------------------------------

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.processes if p.poll() is None]

    def lose(self) -> None:
        """The host is gone at once: SIGKILL to its PID 1 kills every process in it (its worker,
        its engine, containerd, the app containers' processes), with no chance to clean up."""
        if self.init_pid is not None and not self.lost:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.init_pid, signal.SIGKILL)
            self.lost = True
        if self.init is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.init.wait(timeout=20)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)

    def close(self) -> None:
        self.lose()
        for process in [*self.processes, *([self.init] if self.init else [])]:
            if process.poll() is None:  # an nsenter that outlived its child: ours, by PID
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # Mounts live in the host's own mount namespace and go with it; any that leaked out:
        for mount in reversed(self._mounts_under()):
            _quietly("umount", "-l", mount)
        _quietly("ip", "netns", "del", self.netns)  # takes the veth pair with it
        _quietly("ip", "link", "del", self.outer)
        for cgroups in Path("/sys/fs/cgroup").glob(f"*{self.cgroup_parent}"):
            for folder in sorted(cgroups.rglob("*"), key=lambda p: -len(p.parts)):
                if folder.is_dir():
                    with contextlib.suppress(OSError):
                        folder.rmdir()
            with contextlib.suppress(OSError):
                cgroups.rmdir()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _mounts_under(self) -> list[str]:
        with contextlib.suppress(OSError):
            lines = Path("/proc/self/mountinfo").read_text().splitlines()
            return [line.split()[4] for line in lines if line.split()[4].startswith(str(self.dir))]
        return []


@contextlib.contextmanager
def lan() -> Iterator[Lan]:
    """A LAN for hosts, removed with all its hosts at the end, whatever happened."""
    made = Lan()
    try:
        yield made
    finally:
        made.close()


def worker_env(
    host: Host,
    base: dict[str, str],
    *,
    database: Relay,
    broker: Relay,
    broker_vhost: str,
    database_name: str,
    **settings: str,
) -> dict[str, str]:
    """Settings of a ``cure worker`` in ``host``: the database and broker through the LAN's
    relays, its own engine, its own cache, work and metrics folders; ``settings`` on top."""
    own = host.dir / "cure"
    return {
        **base,
        "CURE_DATABASE_URL": f"postgresql+asyncpg://postgres@{database.host}:{database.port}/"
        f"{database_name}",
        "CURE_BROKER_URL": f"amqp://guest:guest@{broker.host}:{broker.port}/{broker_vhost}",
        "CURE_DOCKER_URL": host.docker_url,
        "DOCKER_HOST": host.docker_url,
        "CURE_INPUT_CACHE_DIR": str(own / "input-cache"),
        "CURE_WORK_DIR": str(own / "work"),
        "CURE_METRICS_DIR": str(own / "metrics"),
        "CURE_WORKER_METRICS_PORT": "0",
        **settings,
    }
