"""Benchmark 6: a customer's order list filtered by a bounding box, over 1,000,000 orders.

What it measures: ``GET /v1/orders?bbox=…`` (the default sort, newest first, one page of 20) as
the customer with the most orders, with a city-sized box (about 0.2-0.4° by 0.15-0.3°, i.e.
15-30 km across) at a different place each request: half around the cities where orders cluster,
half anywhere in Europe (where few orders match). One request at a
time from an httpx client pinned to CPU 1, against one API process pinned to CPU 0, after a
warm-up; every answer must be a 200. Reported: p50, p95, p99 (ms), the API process's CPU time per
request (PostgreSQL's is not in it) and how many of the customer's orders each box matches.

Baseline: the same HTTP requests, the same data, the same API, without any index on
``orders.roi`` (the GiST indexes on the region and on customer and region; measured first, before
they are built): what the list costs when only the b-tree indexes (customer and time) can help.

Data: 1,000,000 orders written in SQL (INSERT … SELECT over generate_series, a fixed seed): 30 %
belong to the customer the benchmark queries as, 60 % to four other large customers and 10 % to
200 small ones. Each region is a small rectangle (0.5-5 km across); 60 % lie within about 20 km
of one of 32 European cities, 40 % anywhere in 10° W-30° E, 36-70° N. Orders were created over
the last two years, all in a final state (so the reconciler leaves them alone). No order_events:
the list does not read them.

A sanity check first: Vienna's box (VIENNA) lists a full page, and its count is in the notes.

Target: CURE's p95 under 20 ms. The ratio is the baseline's p95 over CURE's (the speed-up).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Sequence

import asyncpg
import httpx

from bench.harness import (
    CITIES,
    DSN,
    BBox,
    Report,
    Row,
    build_indexes,
    city_boxes,
    deployment,
    drop_indexes,
    figures,
    indexes_on,
    new_customer,
    require_200,
    timed_gets,
)

ORDERS = 1_000_000
REQUESTS = 300
WARMUP = 30
BASELINE_WARMUP = 5  # each baseline request takes about a second
BASELINE_SECONDS = 45.0  # the baseline stops early (on a random prefix of the same boxes)
TARGET_P95_MS = 20.0
SEED = 6


VIENNA: BBox = (16.2, 48.1, 16.55, 48.35)

FILL_ORDERS = """
WITH drawn AS MATERIALIZED (
    SELECT gen_random_uuid() AS id,
           random() AS who, random() AS which, random() AS clustered,
           1 + floor(random() * cardinality($4::float8[]))::int AS city,
           random() AS x, random() AS y, random() AS w, random() AS h,
           random() AS state, random() AS app, random() AS age, random() AS took,
           random() AS size
    FROM generate_series(1, $1::int)
), placed AS (
    SELECT drawn.*,
           CASE WHEN who < 0.3 THEN $2::uuid
                WHEN who < 0.9 THEN ($3::uuid[])[1 + floor((who - 0.3) / 0.15)::int]
                ELSE ($6::uuid[])[1 + floor(which * cardinality($6::uuid[]))::int]
           END AS customer_id,
           CASE WHEN clustered < 0.6 THEN ($4::float8[])[city] + (x - 0.5) * 0.6
                ELSE -10 + x * 40 END AS lon,
           CASE WHEN clustered < 0.6 THEN ($5::float8[])[city] + (y - 0.5) * 0.4
                ELSE 36 + y * 34 END AS lat,
           CASE WHEN state < 0.85 THEN 'SUCCESS' WHEN state < 0.93 THEN 'FAILED'
                WHEN state < 0.98 THEN 'CANCELLED' ELSE 'INVALID' END AS status,
           now() - age * interval '730 days' AS created_at
    FROM drawn
)
INSERT INTO orders (
    id, customer_id, app_id, app_version, status, roi, start_date, end_date, params, message,
    attempt, dispatches, progress, result_key, result_size, result_media_type, result_checksum,
    notify_email, created_at, updated_at
)
SELECT id, customer_id,
       CASE WHEN app < 0.5 THEN 'roi_stats' WHEN app < 0.8 THEN 'urban_green' ELSE 'suhi' END,
       '1.0.0', status,
       ST_MakeEnvelope(lon, lat, lon + 0.005 + w * 0.05, lat + 0.005 + h * 0.04, 4326),
       (created_at - interval '60 days')::date, (created_at - interval '30 days')::date,
       '{}'::jsonb,
       CASE status WHEN 'SUCCESS' THEN 'done' WHEN 'FAILED' THEN 'the app exited with code 1'
                   WHEN 'CANCELLED' THEN 'cancelled on request'
                   ELSE 'no input covers the region' END,
       1, 1, NULL,
       CASE WHEN status = 'SUCCESS' THEN 'results/' || id || '/result.geojson' END,
       CASE WHEN status = 'SUCCESS' THEN 2048 + floor(size * 200000)::bigint END,
       CASE WHEN status = 'SUCCESS' THEN 'application/geo+json' END,
       CASE WHEN status = 'SUCCESS' THEN 'sha256:' || md5(id::text) || md5(id::text) END,
       true, created_at, created_at + took * interval '20 minutes'
FROM placed
"""

# Customers the benchmark never signs in as (no usable password).
CUSTOMERS = """
INSERT INTO customers (id, name, email, password_hash, is_admin, is_active, created_at,
                       updated_at, scopes, token_generation)
SELECT gen_random_uuid(), $2 || ' ' || g, 'bench-' || $2 || '-' || g || '@example.org', '!',
       false, true, now(), now(), '{}', 0
FROM generate_series(1, $1::int) g
RETURNING id
"""

MATCHING = (
    "SELECT count(*) FROM orders WHERE customer_id = $1 "
    "AND ST_Intersects(roi, ST_MakeEnvelope($2, $3, $4, $5, 4326))"
)


# -- measuring -----------------------------------------------------------------------------------


# -- the data ------------------------------------------------------------------------------------


def listing_path(box: BBox) -> str:
    return "/v1/orders?bbox=" + ",".join(f"{v:g}" for v in box)


async def fill_orders(
    connection: asyncpg.Connection, *, customer_id: uuid.UUID, count: int
) -> list[tuple[str, str]]:
    """``count`` orders (see the module's docstring), written without the indexes on roi;
    returns those indexes (name, definition), to be built afterwards."""
    others = [row["id"] for row in await connection.fetch(CUSTOMERS, 4, "large")]
    small = [row["id"] for row in await connection.fetch(CUSTOMERS, 200, "small")]
    lons = [lon for lon, _ in CITIES]
    lats = [lat for _, lat in CITIES]
    spatial = await indexes_on(connection, "orders", ["roi"])
    await drop_indexes(connection, spatial)
    async with connection.transaction():
        await connection.execute("SELECT setseed($1)", SEED / 100)
        await connection.execute(FILL_ORDERS, count, customer_id, others, lons, lats, small)
    await connection.execute("VACUUM ANALYZE orders")
    return spatial


async def matches(
    connection: asyncpg.Connection, customer_id: uuid.UUID, boxes: Sequence[BBox]
) -> list[int]:
    return [int(await connection.fetchval(MATCHING, customer_id, *box)) for box in boxes]


async def check_listing(url: str, headers: dict[str, str], matching: int) -> None:
    """Vienna's box lists what the database says it should (the benchmark times real pages)."""
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        response = await http.get(listing_path(VIENNA))
    response.raise_for_status()
    listed = len(response.json()["items"])
    if listed != min(matching, 20):
        raise RuntimeError(f"Vienna's box lists {listed} orders; {matching} match in SQL")


# -- the benchmark -------------------------------------------------------------------------------


def run(report: Report, s3_url: str) -> None:
    with deployment(s3_url) as cure:
        cure.start_api()
        customer_id, headers = asyncio.run(new_customer(cure.url))
        report.add(asyncio.run(measure(cure.url, cure.api_pid, customer_id, headers)))


async def measure(
    url: str, server_pid: int, customer_id: uuid.UUID, headers: dict[str, str]
) -> Row:
    rng = random.Random(SEED)
    boxes = city_boxes(REQUESTS, rng)
    paths = [listing_path(box) for box in boxes]
    warmup = [listing_path(box) for box in city_boxes(WARMUP, rng)]
    connection = await asyncpg.connect(DSN)
    try:
        started = time.perf_counter()
        spatial = await fill_orders(connection, customer_id=customer_id, count=ORDERS)
        filled = time.perf_counter() - started

        baseline = await timed_gets(
            url,
            paths,
            headers=headers,
            warmup=warmup[:BASELINE_WARMUP],
            budget_seconds=BASELINE_SECONDS,
            server_pid=server_pid,
        )
        require_200("baseline (no index on orders.roi)", baseline)

        started = time.perf_counter()
        await build_indexes(connection, "orders", spatial)
        indexed = time.perf_counter() - started

        cure = await timed_gets(url, paths, headers=headers, warmup=warmup, server_pid=server_pid)
        require_200("CURE", cure)
        counts = sorted(await matches(connection, customer_id, boxes))
        in_vienna = (await matches(connection, customer_id, [VIENNA]))[0]
        await check_listing(url, headers, in_vienna)
    finally:
        await connection.close()

    cure_figures = figures(cure)
    baseline_figures = figures(baseline)
    ratio = baseline_figures["p95_ms"] / cure_figures["p95_ms"]
    return Row(
        number=6,
        name="spatial order listing (bbox)",
        cure={**cure_figures, "_statuses": cure.statuses},
        baseline={**baseline_figures, "_statuses": baseline.statuses},
        ratio=round(ratio, 2),
        ratio_means="baseline p95 / CURE p95 (speed-up)",
        target=f"CURE p95 < {TARGET_P95_MS:g} ms",
        met=cure_figures["p95_ms"] < TARGET_P95_MS,
        notes=[
            f"{ORDERS:,} orders written in {filled:.1f} s; the indexes on roi "
            f"({', '.join(name for name, _ in spatial)}) built in {indexed:.1f} s",
            f"{len(boxes)} city-sized boxes (baseline: the first {len(baseline.seconds)} of them"
            f" within {BASELINE_SECONDS:g} s); the customer's orders matching a box: min "
            f"{counts[0]}, median {counts[len(counts) // 2]}, max {counts[-1]} (page of 20); "
            f"Vienna's box {listing_path(VIENNA).partition('=')[2]}: {in_vienna} of the "
            f"customer's {ORDERS * 3 // 10:,} or so",
        ],
    )
