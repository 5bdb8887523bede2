"""The floor of CURE's own stack for benchmarks 1 and 2: bare Starlette and asyncpg, no auth.

Run by uvicorn exactly as ``cure api`` is (one process, uvloop and httptools, no access log), on
the benchmark's database (``BENCH_DSN``), with the same tables CURE wrote:

- ``GET /orders/{id}``: the order's row joined with its history, the one statement CURE sends,
  outside a transaction, as JSON;
- ``POST /orders``: the order, its RECEIVED event and its task message in the outbox, inserted
  in one transaction, then answered with the order's id (what CURE's submit writes, without its
  validation, limits, idempotency or relay).
"""

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# The order and its history in one read: the statement CURE's ORM sends, with the region as
# GeoJSON from PostGIS instead of WKB decoded in Python.
_ORDER = (
    "SELECT o.id, o.customer_id, o.app_id, o.app_version, o.status, ST_AsGeoJSON(o.roi) AS roi, "
    "o.start_date, o.end_date, o.params, o.message, o.attempt, o.progress, o.result_key, "
    "o.result_size, o.result_media_type, o.result_checksum, o.assets, o.created_at, "
    "o.updated_at, e.status AS e_status, e.attempt AS e_attempt, e.actor AS e_actor, "
    "e.message AS e_message, e.progress AS e_progress, e.occurred_at AS e_occurred_at "
    "FROM orders o LEFT OUTER JOIN order_events e ON e.order_id = o.id "
    "WHERE o.id = $1 AND o.customer_id = $2 ORDER BY e.id"
)
_INSERT_ORDER = (
    "INSERT INTO orders (id, customer_id, app_id, app_version, status, roi, start_date, end_date, "
    "params, attempt, dispatches, notify_email, created_at, updated_at) VALUES ($1, $2, $3, "
    "'1.0.0', 'RECEIVED', ST_SetSRID(ST_GeomFromGeoJSON($4), 4326), $5::text::date, "
    "$6::text::date, $7::jsonb, 1, 1, true, now(), now())"
)
_INSERT_EVENT = (
    "INSERT INTO order_events (event_id, order_id, status, attempt, actor, occurred_at, "
    "recorded_at) VALUES ($1, $2, 'RECEIVED', 1, $3, now(), now())"
)
_INSERT_OUTBOX = (
    "INSERT INTO outbox_messages (kind, subject_id, payload, exchange, routing_key, headers, "
    "properties, created_at, available_at, attempts) VALUES ('bench_run_order', $1, $2::jsonb, "
    "'', 'cure.bench.baseline', '{}'::jsonb, '{}'::jsonb, now(), now(), 0)"
)


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


async def read_order(request: Request) -> Response:
    pool: asyncpg.Pool = request.app.state.pool
    order_id = uuid.UUID(request.path_params["order_id"])
    rows = await pool.fetch(_ORDER, order_id, request.app.state.customer_id)
    if not rows:
        return JSONResponse({"detail": "not found"}, status_code=404)
    body = {key: _plain(value) for key, value in rows[0].items() if not key.startswith("e_")}
    body["roi"] = json.loads(body["roi"])
    body["history"] = [
        {key[2:]: _plain(value) for key, value in row.items() if key.startswith("e_")}
        for row in rows
    ]
    return JSONResponse(body)


async def submit_order(request: Request) -> Response:
    pool: asyncpg.Pool = request.app.state.pool
    data = json.loads(await request.body())
    order_id = uuid.uuid4()
    customer_id = request.app.state.customer_id
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            _INSERT_ORDER,
            order_id,
            customer_id,
            "noop",
            json.dumps(data["roi"]),
            data["start_date"],
            data["end_date"],
            json.dumps(data.get("params", {})),
        )
        await connection.execute(_INSERT_EVENT, uuid.uuid4(), order_id, f"customer:{customer_id}")
        await connection.execute(_INSERT_OUTBOX, order_id, json.dumps([[str(order_id), 1], {}, {}]))
    return JSONResponse({"order_id": str(order_id), "status": "RECEIVED"}, status_code=202)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["BENCH_DSN"], min_size=2, max_size=10)
    app.state.customer_id = uuid.UUID(os.environ["BENCH_CUSTOMER_ID"])
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(
    routes=[
        Route("/orders/{order_id}", read_order, methods=["GET"]),
        Route("/orders", submit_order, methods=["POST"]),
    ],
    lifespan=lifespan,
)
