"""``cure check --url URL``: checks a running deployment end to end, the way a customer uses it:
readiness, a token, a small order to SUCCESS, and its download. Made to run on a schedule: it
exits non-zero with a message naming the step that failed."""

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

STEPS = ("health", "token", "order", "download")
ROI = {  # 0.01 x 0.01 degrees in Vienna: roi_stats answers in well under a second
    "type": "Polygon",
    "coordinates": [[[16.37, 48.2], [16.38, 48.2], [16.38, 48.21], [16.37, 48.21], [16.37, 48.2]]],
}
FINAL = {"SUCCESS", "FAILED", "INVALID", "CANCELLED"}


class CheckFailed(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


@dataclass
class CheckRun:
    url: str
    client_id: str | None = None
    client_secret: str | None = None
    app_id: str = "roi_stats"
    timeout: float = 120
    out: TextIO | None = None
    headers: dict[str, str] = field(default_factory=dict)
    order: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str) -> None:
        if self.out is not None:
            print(text, file=self.out, flush=True)

    def step(self, name: str, action: Callable[[httpx.Client], str]) -> None:
        started = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=15) as http:
            try:
                note = action(http)
            except CheckFailed:
                raise
            except httpx.HTTPError as exc:
                raise CheckFailed(name, f"{type(exc).__name__}: {exc}") from exc
        self.say(f"ok    {name:<9} {time.monotonic() - started:6.2f}s  {note}")

    def health(self, http: httpx.Client) -> str:
        response = http.get("/health/ready")
        if response.status_code != 200:
            down = _down(response)
            raise CheckFailed("health", f"not ready ({response.status_code}): {down}")
        return "database, broker, storage and engine reachable"

    def token(self, http: httpx.Client) -> str:
        note = "with the given client"
        if not self.client_id:
            # No credentials given: register a customer of the check's own.
            email = f"cure-check-{uuid.uuid4().hex[:12]}@example.org"
            registered = http.post(
                "/v1/crm/customers",
                json={"name": "CURE check", "email": email, "password": uuid.uuid4().hex},
            )
            if registered.status_code != 201:
                raise CheckFailed("token", f"registration answered {registered.status_code}")
            self.client_id = registered.json()["client_id"]
            self.client_secret = registered.json()["client_secret"]
            note = f"as a new customer {email}"
        response = http.post(
            "/v1/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(self.client_id or "", self.client_secret or ""),
        )
        if response.status_code != 200:
            raise CheckFailed("token", f"the token endpoint answered {response.status_code}")
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return note

    def place_order(self, http: httpx.Client) -> str:
        body = {"roi": ROI, "start_date": "2024-07-15", "params": {}, "notify_email": False}
        response = http.post(f"/v1/apps/{self.app_id}/orders", json=body, headers=self.headers)
        if response.status_code != 202:
            raise CheckFailed("order", f"submit answered {response.status_code}: {response.text}")
        order_id = response.json()["order_id"]
        deadline = time.monotonic() + self.timeout
        order: dict[str, Any] = response.json()
        while order["status"] not in FINAL:
            if time.monotonic() > deadline:
                hint = " (is a worker running?)" if order["status"] == "QUEUED" else ""
                raise CheckFailed(
                    "order",
                    f"order {order_id} still {order['status']} after {self.timeout:.0f}s{hint}",
                )
            time.sleep(0.5)
            order = http.get(f"/v1/orders/{order_id}", headers=self.headers).json()
        if order["status"] != "SUCCESS":
            raise CheckFailed(
                "order", f"order {order_id} ended {order['status']}: {order.get('message')}"
            )
        self.order = order
        return f"order {order_id} SUCCESS"

    def download(self, http: httpx.Client) -> str:
        order_id = self.order["order_id"]
        link = http.get(f"/v1/orders/{order_id}/result", headers=self.headers)
        if link.status_code != 307:
            raise CheckFailed("download", f"the result link answered {link.status_code}")
        data = httpx.get(link.headers["Location"], timeout=30)
        if data.status_code != 200:
            raise CheckFailed("download", f"the result answered {data.status_code}")
        expected = self.order["result"]
        checksum = f"sha256:{hashlib.sha256(data.content).hexdigest()}"
        if checksum != expected["checksum"] or len(data.content) != expected["size"]:
            raise CheckFailed("download", "the result differs from its size and checksum")
        return f"{len(data.content)} bytes, checksum matches"


def _down(response: httpx.Response) -> str:
    try:
        checks = response.json()["checks"]
        return ", ".join(
            f"{name}: {c['detail']}" for name, c in checks.items() if c and not c["ok"]
        )
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def run_check(run: CheckRun) -> None:
    """Every step in turn; raises CheckFailed naming the first that failed."""
    run.step("health", run.health)
    run.step("token", run.token)
    run.step("order", run.place_order)
    run.step("download", run.download)
