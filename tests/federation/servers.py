"""The servers a federation test talks to, all on 127.0.0.1: a real STAC API (stac-fastapi with
its pgstac backend, from its own virtualenv, in a database of its own), a static file server for
the scenes' assets that honours range requests and counts what it sends, and objects on the S3
test server (moto's server mode).
"""

import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx

ROOT = Path(__file__).resolve().parents[2]
STAC_VENV = ROOT / "var" / "stac-server"
STAC_LOCK = Path(__file__).with_name("stac-server.lock")


# -- the scene server: static files with ranges, counters and failures on demand -------------


@dataclass
class Failure:
    """One answer the scene server gives instead of the file: a status with headers, "drop"
    (close the connection without a word) or "cut" (half the body, then close). ``path``, when
    set, limits it to requests for paths that start with it."""

    answer: tuple[int, dict[str, str]] | str
    path: str | None = None


class SceneState:
    """What the scene server's process keeps: the HTTP server over ``root`` and its counts,
    queued failures, bearer token and whether it listens."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = 0
        self.served: Counter[str] = Counter()  # body bytes sent, by URL path
        self.requests: Counter[str] = Counter()  # requests answered (any status), by URL path
        self.ranges: list[tuple[str, str]] = []  # (path, Range header or "") of each GET
        self.failures: list[Failure] = []
        self.bearer: str | None = None  # when set, requests without it get 401
        self.in_flight = 0
        self.most_at_once = 0
        self.lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    def up(self) -> None:
        if self._server is not None:
            return
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self.lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:  # keep-alive connections would go on being served
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def reset(self) -> None:
        with self.lock:
            self.served.clear()
            self.requests.clear()
            self.ranges.clear()
            self.failures.clear()
            self.bearer = None
            self.most_at_once = 0

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "served": dict(self.served),
                "requests": dict(self.requests),
                "ranges": list(self.ranges),
                "failures": [[f.answer, f.path] for f in self.failures],
                "bearer": self.bearer,
                "most_at_once": self.most_at_once,
                "up": self._server is not None,
            }

    def _next_failure(self, path: str) -> Failure | None:
        for index, failure in enumerate(self.failures):
            if failure.path is None or path.startswith(failure.path):
                return self.failures.pop(index)
        return None


def _control_handler(state: SceneState) -> type[http.server.BaseHTTPRequestHandler]:
    """The scene server's own controls, on a port of their own (so ``down`` leaves them up)."""

    class Control(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:
            pass

        def _reply(self, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply(state.snapshot())

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            asked = json.loads(self.rfile.read(length) or b"{}")
            if self.path == "/fail":
                answer = (
                    asked["answer"] if isinstance(asked["answer"], str) else tuple(asked["answer"])
                )
                with state.lock:
                    state.failures.extend(
                        Failure(answer, asked.get("path")) for _ in range(int(asked["times"]))
                    )
            elif self.path == "/bearer":
                with state.lock:
                    state.bearer = asked.get("token")
            elif self.path == "/reset":
                state.reset()
            elif self.path == "/down":
                state.down()
            elif self.path == "/up":
                state.up()
            self._reply(state.snapshot())

    return Control


def _serve_scenes(root: Path) -> None:
    """The scene server's process: serve ``root``, print the two ports, run until terminated."""
    _die_with_parent()
    state = SceneState(root)
    state.up()
    control = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _control_handler(state))
    control.daemon_threads = True
    print(json.dumps({"port": state.port, "control": control.server_address[1]}), flush=True)
    control.serve_forever()


def _die_with_parent() -> None:
    """Be sent SIGTERM when the process that started this one dies, so a test run that is
    killed leaves no server behind (Linux's PR_SET_PDEATHSIG)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


class SceneServer:
    """A threaded HTTP/1.1 file server over ``root``, in a process of its own (a test's GDAL
    may hold the GIL while it waits for the server): GET and HEAD, ``Range: bytes=a-b`` (and
    ``a-``, ``-n``) answered 206 with Content-Range, ETag and Last-Modified. It counts the body
    bytes it sent and the requests it answered per path, and can fail on demand: queued failures
    (``fail``), a bearer token it requires (``bearer``), or down altogether (``down``/``up``,
    the same port again). Counts are read from the server when asked for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = 0
        self._control = ""
        self._process: subprocess.Popen[bytes] | None = None

    # -- life ----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._process is not None:
            return
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "tests.federation.servers", "scene-server", str(self.root)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=10)
            raise RuntimeError(f"the scene server did not start ({process.returncode})")
        ports = json.loads(line)
        self.port, self._control = ports["port"], f"http://127.0.0.1:{ports['control']}"
        self._process = process

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def _ask(self, what: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._process is None:
            raise RuntimeError("the scene server is not running")
        if body is None and what == "":
            answer = httpx.get(self._control, timeout=30)
        else:
            answer = httpx.post(f"{self._control}/{what}", json=body or {}, timeout=30)
        answer.raise_for_status()
        return dict(answer.json())

    def down(self) -> None:
        """Refuse connections (nothing listens on the port) until ``up``."""
        self._ask("down")

    def up(self) -> None:
        """Listen again, on the same port."""
        self._ask("up")

    @property
    def is_up(self) -> bool:
        return bool(self._ask("")["up"])

    # -- what a test asks of it ----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        """The URL of ``name`` (a path under ``root``; characters a path may not hold quoted)."""
        return f"{self.base_url}/{quote(name.lstrip('/'), safe='/()$,;=@+')}"

    def publish(self, file: Path, name: str) -> str:
        """Serve ``file`` as ``name`` (a hard link or copy under root); its URL."""
        target = self.root / name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.unlink()
        try:
            os.link(file, target)
        except OSError:
            shutil.copyfile(file, target)
        return self.url(name)

    def fail(
        self,
        status: int | str,
        times: int = 1,
        *,
        retry_after: int | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests (for paths under ``path``, if given) with ``status``
        (e.g. 503 or 429, with Retry-After when given), or "drop" / "cut"."""
        answer: list[Any] | str
        if isinstance(status, str):
            answer = status
        else:
            answer = [status, {"Retry-After": str(retry_after)} if retry_after is not None else {}]
        self._ask(
            "fail", {"answer": answer, "times": times, "path": url_path(path) if path else None}
        )

    @property
    def bearer(self) -> str | None:
        """The token requests must carry (``Authorization: Bearer ...``), or None."""
        token = self._ask("")["bearer"]
        return None if token is None else str(token)

    @bearer.setter
    def bearer(self, token: str | None) -> None:
        self._ask("bearer", {"token": token})

    @property
    def served(self) -> Counter[str]:
        """Body bytes sent, by URL path (a snapshot)."""
        return Counter(self._ask("")["served"])

    @property
    def requests(self) -> Counter[str]:
        """Requests answered (any status), by URL path (a snapshot)."""
        return Counter(self._ask("")["requests"])

    @property
    def ranges(self) -> list[tuple[str, str]]:
        """The path and Range header (or "") of each GET, in order (a snapshot)."""
        return [(path, header) for path, header in self._ask("")["ranges"]]

    @property
    def failures(self) -> list[Failure]:
        """The failures still queued."""
        return [
            Failure(answer if isinstance(answer, str) else tuple(answer), path)
            for answer, path in self._ask("")["failures"]
        ]

    @property
    def most_at_once(self) -> int:
        """The most requests it was answering at the same time."""
        return int(self._ask("")["most_at_once"])

    def bytes_served(self, name_or_url: str) -> int:
        """Body bytes sent for one file (a name under root, its URL path or its URL)."""
        return self.served[url_path(name_or_url)]

    def requests_for(self, name_or_url: str) -> int:
        return self.requests[url_path(name_or_url)]

    def reset(self) -> None:
        """Forget the counts and any queued failures; drop the bearer token."""
        self._ask("reset")


def url_path(name_or_url: str) -> str:
    """The URL path of a name under root, a URL path or a whole URL (percent-decoded)."""
    text = re.sub(r"^[a-z]+://[^/]+", "", name_or_url)
    return "/" + unquote(text.split("?", 1)[0]).lstrip("/")


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def _handler(server: SceneState) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            with server.lock:
                server._connections.add(self.connection)

        def finish(self) -> None:
            with server.lock:
                server._connections.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            path = url_path(self.path)
            with server.lock:
                server.requests[path] += 1
                server.in_flight += 1
                server.most_at_once = max(server.most_at_once, server.in_flight)
                failure = server._next_failure(path)
                if body:
                    server.ranges.append((path, self.headers.get("Range") or ""))
            try:
                self._serve(path, failure.answer if failure else None, body=body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                with server.lock:
                    server.in_flight -= 1

        def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _serve(
            self, path: str, failure: tuple[int, dict[str, str]] | str | None, *, body: bool
        ) -> None:
            if failure == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if isinstance(failure, tuple):
                self._empty(*failure)
                return
            if server.bearer and self.headers.get("Authorization") != f"Bearer {server.bearer}":
                self._empty(401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
                return
            file = (server.root / path.lstrip("/")).resolve()
            if not file.is_file() or server.root.resolve() not in file.parents:
                self._empty(404)
                return
            stat = file.stat()
            size = stat.st_size
            headers = {
                "Accept-Ranges": "bytes",
                "ETag": f'"{stat.st_mtime_ns:x}-{size:x}"',
                "Last-Modified": self.date_time_string(int(stat.st_mtime)),
                "Content-Type": _media_type(file),
            }
            start, end, status = 0, size - 1, 200
            asked = _RANGE.fullmatch((self.headers.get("Range") or "").strip())
            if asked and (asked.group(1) or asked.group(2)):
                first, last = asked.group(1), asked.group(2)
                if first:
                    start, end = int(first), min(int(last), size - 1) if last else size - 1
                else:  # the last n bytes
                    start = max(size - int(last), 0)
                if start >= size or start > end:
                    self._empty(416, {"Content-Range": f"bytes */{size}"})
                    return
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            length = end - start + 1
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if not body:
                return
            if failure == "cut":  # half the body, then the connection breaks
                length //= 2
            sent = 0
            with file.open("rb") as data:
                data.seek(start)
                while sent < length:
                    chunk = data.read(min(1 << 16, length - sent))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    with server.lock:
                        server.served[path] += len(chunk)
            self.wfile.flush()
            if failure == "cut":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler


def _media_type(file: Path) -> str:
    return {
        ".tif": "image/tiff",
        ".TIF": "image/tiff",
        ".json": "application/json",
        ".xml": "application/xml",
        ".jpg": "image/jpeg",
    }.get(file.suffix, "application/octet-stream")


# -- the S3 test server ------------------------------------------------------------------------


def s3_client(moto_url: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 (moto takes any keys)
        region_name="us-east-1",
    )


def put_s3_object(moto_url: str, href: str, file: Path) -> str:
    """Put ``file`` at ``href`` (``s3://bucket/key``) on the moto server, making the bucket when
    missing; the href."""
    bucket, _, key = href.removeprefix("s3://").partition("/")
    client = s3_client(moto_url)
    try:
        client.create_bucket(Bucket=bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    client.upload_file(str(file), bucket, key)
    return href


# -- the STAC API server -----------------------------------------------------------------------


# Runs a module (argv[1], its arguments after it) as ``python -m`` would, once the process has
# asked to be sent SIGTERM when its parent dies: a killed test run leaves no server behind.
_DIE_WITH_PARENT_THEN_RUN = (
    "import ctypes, runpy, signal, sys; "
    "ctypes.CDLL('libc.so.6').prctl(1, signal.SIGTERM); "
    "sys.argv = sys.argv[1:]; "
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)"
)


class StacServerMissing(RuntimeError):
    """The STAC server's virtualenv is missing or older than its lock file."""


def lock_digest() -> str:
    return hashlib.sha256(STAC_LOCK.read_bytes()).hexdigest()


def check_installed() -> Path:
    """The STAC server's python, or a clear reason why the server cannot start."""
    python = STAC_VENV / "bin" / "python"
    stamp = STAC_VENV / ".installed"
    where = STAC_VENV.relative_to(ROOT) if STAC_VENV.is_relative_to(ROOT) else STAC_VENV
    if not python.exists() or not stamp.exists():
        raise StacServerMissing(
            f"the STAC API test server is not installed in {where}: "
            "scripts/test installs it (from tests/federation/stac-server.lock)"
        )
    if stamp.read_text().strip() != lock_digest():
        raise StacServerMissing(
            f"the STAC API test server in {where} was installed from an "
            "older tests/federation/stac-server.lock: scripts/test installs it anew"
        )
    return python


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StacServer:
    """stac-fastapi-pgstac under uvicorn on 127.0.0.1, over a database of its own made anew by
    ``start`` (``pypgstac migrate``), with collections and items loaded by ``pypgstac load``.
    ``stop`` and ``start`` again keep the port and the data (a source that is down, then back).
    """

    def __init__(self, database: str, workdir: Path, *, log: Path | None = None) -> None:
        self.database = database
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = log or workdir / "stac-server.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.python = check_installed()
        self.process: subprocess.Popen[bytes] | None = None
        self._created = False
        self._loads = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:5432/{self.database}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "POSTGRES_"))}
        env.update(
            PGUSER="postgres",
            PGPASSWORD="",
            PGHOST="127.0.0.1",
            PGPORT="5432",
            PGDATABASE=self.database,
            STAC_FASTAPI_TITLE="CURE test STAC API",
            STAC_FASTAPI_DESCRIPTION="stac-fastapi-pgstac over the federation tests' scenes",
            STAC_FASTAPI_LANDING_ID="cure-test-stac",
            DB_MIN_CONN_SIZE="1",
            DB_MAX_CONN_SIZE="4",
        )
        return env

    def _tool(self, *args: str) -> None:
        """Runs pypgstac from the server's virtualenv; fails with its output."""
        command = [str(self.python), "-m", "pypgstac.pypgstac", *args, "--dsn", self.dsn]
        done = subprocess.run(  # noqa: S603
            command, cwd=self.workdir, env=self._env(), capture_output=True, timeout=300
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")[-3000:]
            raise RuntimeError(
                f"pypgstac {' '.join(args[:2])} failed ({done.returncode}):\n{output}"
            )

    def create_database(self) -> None:
        import asyncio

        import asyncpg

        async def recreate() -> None:
            admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
                await admin.execute(f'CREATE DATABASE "{self.database}"')
            finally:
                await admin.close()

        asyncio.run(recreate())
        try:
            self._tool("migrate")
        except RuntimeError:
            # pgstac's roles are the cluster's: another run migrating at the same moment may
            # have made them between its check and its CREATE ROLE. Once more finds them.
            self._tool("migrate")
        self._created = True

    def load(
        self, collections: Iterable[dict[str, Any]] = (), items: Iterable[dict[str, Any]] = ()
    ) -> None:
        """Add (or replace) collections, then items, as pgstac's loader does for a catalogue."""
        self._loads += 1
        for kind, records in (("collections", list(collections)), ("items", list(items))):
            if not records:
                continue
            file = self.workdir / f"{kind}-{self._loads}.ndjson"
            file.write_text("".join(json.dumps(record) + "\n" for record in records))
            self._tool("load", kind, str(file), "--method", "upsert")

    def start(self) -> None:
        if not self._created:
            self.create_database()
        if self.process is not None and self.process.poll() is None:
            return
        log = self.log.open("ab")
        # cwd is the work dir: stac-fastapi reads a .env from its working directory.
        self.process = subprocess.Popen(  # noqa: S603
            [
                str(self.python),
                "-c",
                _DIE_WITH_PARENT_THEN_RUN,
                "uvicorn",
                "stac_fastapi.pgstac.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
            ],
            cwd=self.workdir,
            env=self._env(),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        self._wait_ready()

    def _wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the STAC server exited ({self.process.returncode}):\n{tail}")
            try:
                if httpx.get(f"{self.url}/_mgmt/ping", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the STAC server did not answer within {seconds}s; see {self.log}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def drop_database(self) -> None:
        import asyncio

        import asyncpg

        async def drop() -> None:
            admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            finally:
                await admin.close()

        asyncio.run(drop())
        self._created = False


if __name__ == "__main__":
    if sys.argv[1:2] == ["scene-server"]:
        _serve_scenes(Path(sys.argv[2]))
