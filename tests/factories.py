"""Small helpers that make test data through the public API."""

import asyncio
import time
import uuid
from typing import Any

import httpx

PASSWORD = "a long enough passphrase"

VIENNA = {
    "type": "Polygon",
    "coordinates": [[[16.3, 48.2], [16.4, 48.2], [16.4, 48.3], [16.3, 48.3], [16.3, 48.2]]],
}


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.org"


async def create_customer(http: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Test Customer", "email": unique_email(), "password": PASSWORD, **overrides}
    response = await http.post("/v1/crm/customers", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def get_token(
    http: httpx.AsyncClient, customer: dict[str, Any], scope: str | None = None
) -> str:
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    response = await http.post(
        "/v1/auth/token", data=form, auth=(customer["client_id"], customer["client_secret"])
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def customer_with_token(http: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, str]]:
    customer = await create_customer(http)
    token = await get_token(http, customer)
    return customer, {"Authorization": f"Bearer {token}"}


def problems(body: dict[str, Any]) -> list[str]:
    """What a 422's ``detail`` says, problem by problem (each has loc, msg and type)."""
    return [problem["msg"] for problem in body["detail"]]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def password_login(
    http: httpx.AsyncClient, email: str, password: str = PASSWORD, scope: str | None = None
) -> dict[str, Any]:
    """The password grant through the first-party public client: access and refresh token."""
    form = {"grant_type": "password", "username": email, "password": password}
    if scope is not None:
        form["scope"] = scope
    form["client_id"] = "cure-portal"
    response = await http.post("/v1/auth/token", data=form)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def create_admin(
    http: httpx.AsyncClient, session: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """An admin made the way `cure admin create` makes one (no endpoint can), with a token;
    ``session`` is the test's (the admin goes where the test's requests look)."""
    from cure.config import Settings
    from cure.crm import service as crm_service
    from cure.crm.schemas import CustomerCreate

    email = unique_email()
    data = CustomerCreate(name="Test Admin", email=email, password=PASSWORD)
    admin = await crm_service.create_admin(session, Settings(), data)
    await session.commit()
    tokens = await password_login(http, email)
    return {"customer_id": str(admin.id), "email": email}, bearer(tokens["access_token"])


def order_body(**overrides: Any) -> dict[str, Any]:
    return {
        "roi": VIENNA,
        "start_date": "2024-07-01",
        "end_date": "2024-07-31",
        "params": {},
        **overrides,
    }


TERMINAL = {"SUCCESS", "FAILED", "INVALID", "CANCELLED"}


async def wait_final(
    http: httpx.AsyncClient, order_id: str, headers: dict[str, str], seconds: float = 60
) -> dict[str, Any]:
    """Poll the order until it reaches a final state; fails the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = (await http.get(f"/v1/orders/{order_id}", headers=headers)).json()
        if body["status"] in TERMINAL:
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"order {order_id} did not finish: {body}")
