"""A filtering proxy in front of the Docker engine's socket, for workers that must not hold root.

Whoever can talk to the Docker socket is root on the host: one ``docker run --privileged -v /:/h``
is enough. With this proxy the worker gets a socket of its own that admits only the calls a run
needs (create, start, wait, logs, archives in and out, kill, stop, remove; volumes; listings), and
only on this deployment's app runs:

- a container is created from CURE's template of a hardened run (no network, read-only root,
  every capability dropped, no-new-privileges, user 65534, memory, CPU and pid limits, a bounded
  log, one named volume at /job), with only its image, command, labels, limits and volume taken
  from the request (``proxy_policy``); a volume is a plain local one with labels only;
- both carry the deployment's labels and ``cure.role=app-run`` (forced by the proxy);
- a call on an existing container or volume is forwarded only if the engine says it carries
  them, and then by its full id (a name or id prefix cannot come to mean another object between
  the check and the call); a mounted volume must carry them too;
- listings get the labels forced into their filters; archives only under /job.

Everything else (exec, build, pull, attach, update, networks, ...) answers 403. The request the
engine gets is written by the proxy (request line, headers, query, and a rebuilt JSON body), on a
connection of its own with ``Connection: close``, so nothing can follow a checked request.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from cure.containers.proxy_policy import (
    ROLE_LABEL,
    RUN_ROLE,
    Refused,
    Request,
    Route,
    Target,
    container_body,
    job_path,
    parse_head,
    route_of,
    scoped_filters,
    strict_json,
    volume_body,
)

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
MAX_CHECKED_BODY = 1024 * 1024
MAX_DISCARD = 64 * 1024 * 1024
CHUNK = 1 << 16
# After refusing a request whose head was refused (so its body's length is unknown), how long
# the proxy reads what its client still sends before it closes (a lingering close).
LINGER_SECONDS = 2.0

__all__ = ["DockerSocketProxy", "Refused"]


class Answered(Exception):
    """The engine's own answer to the proxy's check (e.g. 404 for a container that is gone)."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


async def _respond(writer: asyncio.StreamWriter, status: int, reason: str, body: bytes) -> None:
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Engine Error"


async def _refuse(writer: asyncio.StreamWriter, reason: str) -> None:
    body = json.dumps({"message": f"refused by the CURE Docker proxy: {reason}"}).encode()
    await _respond(writer, 403, "Forbidden", body)


@dataclass(frozen=True)
class Framing:
    kind: Literal["none", "length", "chunked"]
    length: int = 0


NO_BODY = Framing("none")


def _framing(headers: dict[str, str]) -> Framing:
    """How the request's body is framed; Refused if the engine could frame it otherwise."""
    encoding = headers.get("transfer-encoding")
    length_text = headers.get("content-length")
    if length_text is not None and not (length_text.isdigit() and len(length_text) <= 15):
        raise Refused("a malformed Content-Length")
    if encoding is not None and (length_text is not None or encoding.lower() != "chunked"):
        raise Refused("the body must be framed by Content-Length or chunked, not both")
    if encoding is not None:
        return Framing("chunked")
    length = int(length_text or "0")
    return Framing("length", length) if length else NO_BODY


def _fits(framing: Framing, route: Route) -> None:
    """No body where a run sends none, a small JSON document where it is checked."""
    if route.body == "none" and framing != NO_BODY:
        raise Refused("this call takes no body")
    if route.body in ("container", "volume") and (
        framing.kind == "chunked" or framing.length > MAX_CHECKED_BODY
    ):
        raise Refused("the request body must be a small JSON document")


async def _copy_chunked(
    reader: asyncio.StreamReader, sink: Callable[[bytes], Awaitable[None]]
) -> None:
    """Copy a chunked body, framed again by the proxy (sizes strictly hex, no extensions)."""
    while True:
        size_line = (await reader.readuntil(b"\r\n"))[:-2].split(b";", 1)[0].strip()
        if not size_line or len(size_line) > 15 or size_line.strip(b"0123456789abcdefABCDEF"):
            raise ConnectionError("a malformed chunk size")
        size = int(size_line, 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers: dropped
                pass
            await sink(b"0\r\n\r\n")
            return
        data = await reader.readexactly(size + 2)
        if data[-2:] != b"\r\n":
            raise ConnectionError("a malformed chunk")
        await sink(f"{size:x}\r\n".encode() + data)


async def _copy_body(
    reader: asyncio.StreamReader, sink: Callable[[bytes], Awaitable[None]], framing: Framing
) -> None:
    if framing.kind == "chunked":
        await _copy_chunked(reader, sink)
        return
    length = framing.length
    while length > 0:
        chunk = await reader.read(min(length, CHUNK))
        if not chunk:
            raise ConnectionError("the client closed mid-body")
        length -= len(chunk)
        await sink(chunk)


async def _discard(reader: asyncio.StreamReader, framing: Framing) -> None:
    """Read a refused request's body (up to a bound), so that its client, still writing it,
    gets to read the refusal instead of a broken pipe."""
    read = 0

    async def drop(data: bytes) -> None:
        nonlocal read
        read += len(data)
        if read > MAX_DISCARD:
            raise ConnectionError("a refused body too large to read")

    await _copy_body(reader, drop, framing)


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """After refusing a request whose head was refused (its body's length unknown): say no more
    (half-close), then read what the client still sends, up to a bound and for at most
    LINGER_SECONDS, so that a client still writing its body reads the refusal instead of a
    broken pipe. It ends as soon as the client, having read the answer, closes."""
    if writer.can_write_eof():
        writer.write_eof()
    read = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(LINGER_SECONDS):
            while read <= MAX_DISCARD and (data := await reader.read(CHUNK)):
                read += len(data)


class DockerSocketProxy:
    def __init__(self, *, listen: str, upstream: str, scope: dict[str, str]) -> None:
        """``scope``: the labels of this deployment, which everything admitted carries."""
        self.listen = listen  # a unix socket path
        self.upstream = upstream  # the engine's unix socket path
        self.scope = dict(scope)
        self.required = {**scope, ROLE_LABEL: RUN_ROLE}
        self._server: asyncio.AbstractServer | None = None
        self._engine: httpx.AsyncClient | None = None

    async def start(self) -> None:
        transport = httpx.AsyncHTTPTransport(uds=self.upstream)
        self._engine = httpx.AsyncClient(transport=transport, base_url="http://docker", timeout=60)
        self._server = await asyncio.start_unix_server(self._serve, path=self.listen)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._engine is not None:
            await self._engine.aclose()

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._one_request(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            log.info("docker proxy: connection dropped: %s", type(exc).__name__)
        except httpx.HTTPError as exc:
            log.warning("docker proxy: the engine did not answer a check: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        framing: Framing | None = None
        try:
            if len(head) > MAX_HEAD:
                raise Refused("request head too large")
            request = parse_head(head)
            framing = _framing(request.headers)
            route, match = route_of(request)
            _fits(framing, route)
            body = b""
            if route.body in ("container", "volume"):
                body, framing = await reader.readexactly(framing.length), NO_BODY
            path, body = await self._admit(request, route, match, body)
        except Refused as exc:
            log.warning("docker proxy refused %r: %s", head.split(b"\r\n", 1)[0][:200], exc)
            await _refuse(writer, str(exc))
            await (_linger(reader, writer) if framing is None else _discard(reader, framing))
            return
        except Answered as answer:
            await _respond(writer, answer.status, _phrase(answer.status), answer.body)
            await (_linger(reader, writer) if framing is None else _discard(reader, framing))
            return
        await self._forward(request, path, body, framing, reader, writer)

    async def _admit(
        self, request: Request, route: Route, match: Any, body: bytes
    ) -> tuple[str, bytes]:
        """The path to forward (objects by full id) and the body (rebuilt); Refused otherwise."""
        if route.archive:
            request.params["path"] = job_path(request.params.get("path"))
        if route.listing:
            request.params["filters"] = scoped_filters(request.params.get("filters"), self.required)
        path = request.path
        if route.target is not None:
            full = await self._owned(route.target, match["ref"])
            path = path[: match.start("ref")] + full + path[match.end("ref") :]
        if route.body == "container":
            spec, volume = container_body(strict_json(body), self.scope)
            await self._owned("volume", volume, mounted=True)
            body = json.dumps(spec).encode()
        if route.body == "volume":
            body = json.dumps(volume_body(strict_json(body), self.scope)).encode()
        return path, body

    async def _owned(self, kind: Target, ref: str, *, mounted: bool = False) -> str:
        """The full id (a volume: its name) of ``ref`` if it is one of this deployment's runs."""
        assert self._engine is not None
        answer = await self._engine.get(
            f"/containers/{ref}/json" if kind == "container" else f"/volumes/{ref}"
        )
        if answer.status_code == 404 and mounted:
            raise Refused("the volume to mount does not exist (a run's volume is made first)")
        if answer.status_code != 200:
            raise Answered(answer.status_code, answer.content)
        found = answer.json()
        labels = (found["Config"] if kind == "container" else found).get("Labels") or {}
        if not labels.items() >= self.required.items():
            raise Refused(f"the {kind} {ref} is not one of this deployment's app runs")
        return str(found["Id" if kind == "container" else "Name"])

    async def _forward(
        self,
        request: Request,
        path: str,
        body: bytes,
        framing: Framing,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        query = f"?{urlencode(request.params)}" if request.params else ""
        lines = [f"{request.method} {request.version}{path}{query} HTTP/1.1", "Host: docker"]
        for name in ("user-agent", "content-type"):
            if name in request.headers:
                lines.append(f"{name}: {request.headers[name]}")
        if body:
            lines.append(f"Content-Length: {len(body)}")
        elif framing.kind == "chunked":
            lines.append("Transfer-Encoding: chunked")
        elif framing.kind == "length":
            lines.append(f"Content-Length: {framing.length}")
        up_reader, up_writer = await asyncio.open_unix_connection(self.upstream)
        try:
            up_writer.write(("\r\n".join([*lines, "Connection: close"]) + "\r\n\r\n").encode())

            async def send(data: bytes) -> None:
                up_writer.write(data)
                await up_writer.drain()

            await send(body) if body else await _copy_body(reader, send, framing)
            while chunk := await up_reader.read(CHUNK):  # the response, until the engine closes
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()
            with contextlib.suppress(ConnectionError):
                await up_writer.wait_closed()
