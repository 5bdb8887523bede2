"""`cure api --workers N`: several API processes share the port; the relay and the consumers run
in one of them (cure.kit.leader), and a token revoked through one process is refused by all."""

import asyncio
import subprocess
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from tests.conftest import TEST_DATABASE_URL, TEST_VHOST, Stack, running_stack
from tests.factories import customer_with_token, order_body, wait_final

DSN = TEST_DATABASE_URL.replace("+asyncpg", "")


async def _connections(application: str) -> list[int]:
    connection = await asyncpg.connect(DSN)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = $1",
            application,
        )
        return [row["pid"] for row in rows]
    finally:
        await connection.close()


async def _advisory_holders(pids: list[int]) -> int:
    connection = await asyncpg.connect(DSN)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = ANY($1::int[])",
                pids,
            )
        )
    finally:
        await connection.close()


def _consumers(queue: str) -> int:
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", TEST_VHOST, "name", "consumers"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in listed.splitlines():
        name, _, count = line.partition("\t")
        if name == queue:
            return int(count)
    raise AssertionError(f"no queue {queue} in {listed!r}")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack("processes", CURE_API_WORKERS="2") as running:
        yield running


async def test_two_api_processes_serve_and_run_the_consumers_once(stack: Stack) -> None:
    deadline = time.monotonic() + 30  # /health answered once the first process was up
    while len(await _connections("cure-leadership")) < 2:  # one per API process
        assert time.monotonic() < deadline, "the second API process never started"
        await asyncio.sleep(0.2)
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:
        customer, headers = await customer_with_token(http)
        ids = []
        for _ in range(6):  # over new connections: both processes take some
            response = await http.post(
                "/v1/apps/roi_stats/orders",
                json=order_body(),
                headers={**headers, "Connection": "close"},
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["order_id"])
        for order_id in ids:
            final = await wait_final(http, order_id, headers)
            assert final["status"] == "SUCCESS", final
            assert [e["status"] for e in final["history"]].count("QUEUED") == 1

        leaders = await _connections("cure-leadership")
        assert len(leaders) == 2
        assert await _advisory_holders(leaders) == 1  # one leader, one follower
        assert _consumers(stack.env.get("CURE_EVENTS_QUEUE", "cure.order_events")) == 1

        # Revoked through whichever process answers: refused by every process, at once.
        token = headers["Authorization"].removeprefix("Bearer ")
        for _ in range(6):  # both processes now keep the principal
            warm = await http.get("/v1/orders", headers={**headers, "Connection": "close"})
            assert warm.status_code == 200
        # Whichever process answers /metrics counts the requests of both.
        scraped = (await http.get("/metrics", headers={"Connection": "close"})).text
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in scraped.splitlines()
            if line.startswith("cure_http_requests_total{")
            and 'route="/v1/orders"' in line
            and 'method="GET"' in line
            and 'status="200"' in line
        )
        assert counted == 6, scraped

        revoked = await http.post(
            "/v1/auth/revoke",
            data={"token": token},
            auth=(customer["client_id"], customer["client_secret"]),
        )
        assert revoked.status_code == 200
        for _ in range(6):
            after = await http.get("/v1/orders", headers={**headers, "Connection": "close"})
            assert after.status_code == 401
