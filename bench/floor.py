"""The baseline app of benchmarks 1 and 2 (``bench/baseline_app.py``) as a process, and checks."""

import asyncio
import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from bench.harness import DSN, SERVER_CPU, Processes, free_port, pinned, wait_http


@contextlib.contextmanager
def baseline_app(customer_id: uuid.UUID) -> Iterator[tuple[str, int]]:
    """The baseline app, served by uvicorn like ``cure api`` (one process, no access log): its
    URL and its process id."""
    port = free_port()
    processes = Processes(Path(tempfile.gettempdir()))
    argv = [
        sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--host", "127.0.0.1",
        "--port", str(port), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    env = {**os.environ, "BENCH_DSN": DSN, "BENCH_CUSTOMER_ID": str(customer_id)}
    process = processes.start("baseline-app", pinned(SERVER_CPU, argv), env)
    try:
        wait_http(f"http://127.0.0.1:{port}/orders/{uuid.uuid4()}")
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        processes.stop(process)
        asyncio.run(_forget_baseline_rows())


async def _forget_baseline_rows() -> None:
    connection = await asyncpg.connect(DSN)
    try:
        await connection.execute("DELETE FROM outbox_messages WHERE kind = 'bench_run_order'")
    finally:
        await connection.close()


def unsent_outbox() -> int:
    async def count() -> int:
        connection = await asyncpg.connect(DSN)
        try:
            return int(
                await connection.fetchval(
                    "SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL "
                    "AND routing_key IS NOT NULL"
                )
            )
        finally:
            await connection.close()

    return asyncio.run(count())


def check_answers(*sides: dict[str, float]) -> None:
    """Every request of a load answered 2xx, or the figures mean nothing."""
    for side in sides:
        if side["non_2xx"] or side["errors"]:
            raise RuntimeError(f"requests failed under load: {side}")
