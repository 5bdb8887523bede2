"""A filtering proxy in front of the Docker engine's socket, for workers that must not hold root.

Whoever can talk to the Docker socket is root on the host: one ``docker run --privileged -v /:/h``
is enough. With this proxy the worker gets a socket of its own that admits only the calls a run
needs (create, start, wait, logs, archives in and out, kill, remove; volumes; listing by label)
and only hardened containers: no network, read-only root, every capability dropped,
no-new-privileges, a non-root user, memory and pid limits, named volumes only (no host path), no
device, no host namespace. Everything else (exec, build, pull, attach, update, networks, ...)
answers 403. Each request goes upstream on a connection of its own with ``Connection: close``,
so nothing can follow a checked request on the same connection.

It knows nothing about orders: the policy is what ``run_hardened`` asks for.
"""

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
MAX_CHECKED_BODY = 1024 * 1024
ID = r"[A-Za-z0-9_.\-]+"
VERSION_PREFIX = re.compile(r"^/v\d+(\.\d+)*")

# (method, path) pairs a run needs; the two create calls also have their bodies checked.
ALLOWED: list[tuple[str, re.Pattern[str]]] = [
    (method, re.compile(f"^{pattern}$"))
    for method, pattern in [
        ("GET", r"/_ping"),
        ("HEAD", r"/_ping"),
        ("GET", r"/version"),
        ("POST", r"/containers/create"),
        ("GET", r"/containers/json"),
        ("GET", rf"/containers/{ID}/json"),
        ("POST", rf"/containers/{ID}/(start|wait|kill|stop)"),
        ("GET", rf"/containers/{ID}/logs"),
        ("GET", rf"/containers/{ID}/archive"),
        ("HEAD", rf"/containers/{ID}/archive"),
        ("PUT", rf"/containers/{ID}/archive"),
        ("DELETE", rf"/containers/{ID}"),
        ("POST", r"/volumes/create"),
        ("GET", r"/volumes"),
        ("GET", rf"/volumes/{ID}"),
        ("DELETE", rf"/volumes/{ID}"),
        ("GET", rf"/images/{ID}(/{ID})*/json"),
    ]
]
HOST_NAMESPACES = ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode")


class Refused(Exception):
    pass


def route_of(method: str, target: str) -> str:
    """The API path of a request, without the version prefix; Refused if it is not allowed."""
    path = VERSION_PREFIX.sub("", urlsplit(target).path)
    if not any(method == m and pattern.match(path) for m, pattern in ALLOWED):
        raise Refused(f"{method} {path} is not a call an app run needs")
    return path


def check_container(spec: dict[str, Any]) -> None:
    """Refused unless the container is as hardened as ``run_hardened`` makes it."""
    host = spec.get("HostConfig") or {}
    user = str(spec.get("User") or "")
    if user.split(":", 1)[0] in ("", "0", "root"):
        raise Refused("the container must run as a non-root user")
    if host.get("Privileged"):
        raise Refused("privileged containers are not allowed")
    if host.get("NetworkMode") != "none":
        raise Refused('the container must have no network (NetworkMode "none")')
    if not host.get("ReadonlyRootfs"):
        raise Refused("the container's root file system must be read-only")
    if host.get("CapAdd") or "ALL" not in (host.get("CapDrop") or []):
        raise Refused("every capability must be dropped, none added")
    options = [str(o) for o in host.get("SecurityOpt") or []]
    if not any(o.startswith("no-new-privileges") for o in options):
        raise Refused("no-new-privileges must be set")
    if any("unconfined" in o for o in options):
        raise Refused("seccomp and AppArmor must stay confined")
    if any(str(host.get(mode) or "").startswith("host") for mode in HOST_NAMESPACES):
        raise Refused("host namespaces are not allowed")
    if host.get("Devices") or host.get("DeviceRequests") or host.get("VolumesFrom"):
        raise Refused("devices and other containers' volumes are not allowed")
    if host.get("Sysctls") or (host.get("Runtime") or "runc") != "runc":
        raise Refused("sysctls and other runtimes are not allowed")
    if not host.get("Memory") or not host.get("PidsLimit"):
        raise Refused("memory and pid limits must be set")
    for bind in host.get("Binds") or []:
        source = str(bind).split(":", 1)[0]
        if "/" in source or source.startswith("."):
            raise Refused("only named volumes may be mounted, never a host path")
    for mount in host.get("Mounts") or []:
        if mount.get("Type") not in ("volume", "tmpfs"):
            raise Refused("only named volumes and tmpfs may be mounted")
        if (mount.get("VolumeOptions") or {}).get("DriverConfig"):
            raise Refused("volume driver options are not allowed")


def check_volume(spec: dict[str, Any]) -> None:
    if (spec.get("Driver") or "local") != "local" or spec.get("DriverOpts"):
        raise Refused("only plain local volumes (no driver options, so no host path)")


def check_body(path: str, body: bytes) -> None:
    try:
        spec = json.loads(body or b"{}")
    except ValueError as exc:
        raise Refused("the request body is not JSON") from exc
    if not isinstance(spec, dict):
        raise Refused("the request body is not a JSON object")
    (check_container if path == "/containers/create" else check_volume)(spec)


async def _refuse(writer: asyncio.StreamWriter, reason: str) -> None:
    body = json.dumps({"message": f"refused by the CURE Docker proxy: {reason}"}).encode()
    writer.write(
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()


async def _copy_body(
    reader: asyncio.StreamReader, sink: Callable[[bytes], Awaitable[None]], headers: dict[str, str]
) -> None:
    """Copy exactly the request's body (by Content-Length or chunked framing) and no more."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size_line = await reader.readuntil(b"\r\n")
            await sink(size_line)
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = await reader.readuntil(b"\r\n")
                    await sink(line)
                    if line == b"\r\n":
                        return
            await sink(await reader.readexactly(size + 2))
    remaining = int(headers.get("content-length", "0"))
    while remaining > 0:
        chunk = await reader.read(min(remaining, 1 << 16))
        if not chunk:
            raise ConnectionError("the client closed mid-body")
        remaining -= len(chunk)
        await sink(chunk)


class DockerSocketProxy:
    def __init__(self, *, listen: str, upstream: str) -> None:
        self.listen = listen  # a unix socket path
        self.upstream = upstream  # the engine's unix socket path
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=self.listen)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._one_request(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            log.info("docker proxy: connection dropped: %s", type(exc).__name__)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD:
            await _refuse(writer, "request head too large")
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        try:
            if "upgrade" in headers:
                raise Refused("connection upgrades (attach) are not allowed")
            path = route_of(method, target)
            body = b""
            checked = method == "POST" and path in ("/containers/create", "/volumes/create")
            if checked:
                length = int(headers.get("content-length", "0"))
                if length > MAX_CHECKED_BODY or "transfer-encoding" in headers:
                    raise Refused("the request body must be a small JSON document")
                body = await reader.readexactly(length)
                check_body(path, body)
        except Refused as exc:
            log.warning("docker proxy refused %s %s: %s", method, target, exc)
            await _refuse(writer, str(exc))
            return
        up_reader, up_writer = await asyncio.open_unix_connection(self.upstream)
        try:
            kept = [
                line
                for line in lines[1:]
                if line
                and line.split(":", 1)[0].strip().lower() not in ("connection", "keep-alive")
            ]
            up_writer.write(
                ("\r\n".join([lines[0], *kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1")
            )

            async def forward(data: bytes) -> None:
                up_writer.write(data)
                await up_writer.drain()

            if checked:
                await forward(body)
            else:
                await _copy_body(reader, forward, headers)
            while chunk := await up_reader.read(1 << 16):  # the response, until the engine closes
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()
            with contextlib.suppress(ConnectionError):
                await up_writer.wait_closed()
