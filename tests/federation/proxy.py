"""A counting HTTP proxy in front of a real server, on 127.0.0.1, for the federation tests: it
forwards every request as it came (method, path, query, body, Host) and counts them, so a test
observes how many calls a source got; on demand it answers slowly, holds every request until the
test releases it (a source that never answers in time, whatever its deadline), answers with a
status of its own or with garbage instead, or demands a bearer token (401 without it)."""

import http.server
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx


class CountingProxy:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.requests: list[tuple[str, str]] = []  # (method, path with query)
        self.delay = 0.0  # seconds before answering
        self.gate = threading.Event()  # a request waits while it is clear (see hold)
        self.gate.set()
        self.status: int | None = None  # answer this status (with a short body) instead
        self.garbage: bytes | None = None  # answer 200 with these bytes instead
        self.bearer: str | None = None  # when set, a request without this token gets 401
        self.require_token = False  # when set, a request without a bearer token gets 401...
        self.refused: set[str] = set()  # ...and so does one with a token of these (expired)
        self.tokens: list[str] = []  # the bearer token of each request, "" without one
        self.observe: Callable[[], None] | None = None  # called as each answer goes out
        self.lock = threading.Lock()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def count(self, path_part: str = "") -> int:
        with self.lock:
            return sum(1 for _, path in self.requests if path_part in path)

    def hold(self) -> None:
        """Every request from now on waits, unanswered, until release (or close)."""
        self.gate.clear()

    def release(self) -> None:
        """The held requests go on, and later ones are not held."""
        self.gate.set()

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
        self.delay, self.status, self.garbage, self.bearer = 0.0, None, None, None
        self.require_token, self.refused, self.tokens = False, set(), []
        self.release()

    def close(self) -> None:
        self.release()  # no handler thread is left waiting
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                with proxy.lock:
                    proxy.requests.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.gate.wait()
                if proxy.delay:
                    time.sleep(proxy.delay)
                if proxy.observe is not None:
                    proxy.observe()
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                with proxy.lock:
                    proxy.tokens.append(token)
                if (proxy.bearer and token != proxy.bearer) or (
                    proxy.require_token and (not token or token in proxy.refused)
                ):
                    return self._answer(401, b'{"code": "expired"}', "application/json")
                if proxy.status is not None:
                    return self._answer(proxy.status, b'{"code": "busy"}', "application/json")
                if proxy.garbage is not None:
                    return self._answer(200, proxy.garbage, "application/json")
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("content-type", "accept", "host")
                }
                try:
                    answer = httpx.request(
                        self.command,
                        f"{proxy.target}{self.path}",
                        content=body,
                        headers=headers,
                        timeout=30,
                    )
                except httpx.HTTPError:
                    return self._answer(502, b"upstream unreachable", "text/plain")
                media_type = answer.headers.get("content-type", "application/json")
                return self._answer(answer.status_code, answer.content, media_type)

            def _answer(self, status: int, body: bytes, media_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", media_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its deadline): nothing to answer

            do_GET = _forward  # noqa: N815 (the standard library's names)
            do_POST = _forward  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
