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
import os
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import httpx

from bench.harness import (
    DSN,
    LOAD_CPU,
    Report,
    Row,
    cpu_seconds,
    deployment,
    latency_summary,
    new_customer,
)

ORDERS = 1_000_000
REQUESTS = 300
WARMUP = 30
BASELINE_WARMUP = 5  # each baseline request takes about a second
BASELINE_SECONDS = 45.0  # the baseline stops early (on a random prefix of the same boxes)
TARGET_P95_MS = 20.0
SEED = 6

# (longitude, latitude) of the cities orders cluster around.
CITIES: tuple[tuple[float, float], ...] = (
    (16.37, 48.21), (13.40, 52.52), (-3.70, 40.42), (2.35, 48.86), (12.50, 41.90),
    (9.19, 45.46), (11.58, 48.14), (9.99, 53.55), (21.01, 52.23), (14.42, 50.08),
    (19.04, 47.50), (4.90, 52.37), (4.35, 50.85), (12.57, 55.68), (18.07, 59.33),
    (10.75, 59.91), (24.94, 60.17), (-9.14, 38.72), (2.17, 41.39), (23.73, 37.98),
    (26.10, 44.43), (23.32, 42.70), (15.98, 45.81), (14.51, 46.06), (17.11, 48.15),
    (8.54, 47.38), (4.84, 45.76), (5.37, 43.30), (-6.26, 53.35), (19.94, 50.06),
    (24.11, 56.95), (25.28, 54.69),
)  # fmt: skip
EUROPE = (-10.0, 36.0, 30.0, 70.0)

BBox = tuple[float, float, float, float]
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

# The indexes of a table that involve some of its columns (as a key or in an expression),
# primary and unique ones aside: those a baseline runs without, read from the database so that
# an index a later migration adds is left out too.
INDEXES_ON = r"""
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
WHERE i.indrelid = $1::regclass AND NOT i.indisprimary AND NOT i.indisunique
  AND EXISTS (
      SELECT FROM pg_attribute a
      WHERE a.attrelid = i.indrelid AND a.attname = ANY($2::text[])
        AND (a.attnum = ANY(i.indkey::int2[])
             OR pg_get_expr(i.indexprs, i.indrelid) ~ ('\m' || a.attname || '\M'))
  )
ORDER BY 1
"""
MATCHING = (
    "SELECT count(*) FROM orders WHERE customer_id = $1 "
    "AND ST_Intersects(roi, ST_MakeEnvelope($2, $3, $4, $5, 4326))"
)


# -- measuring -----------------------------------------------------------------------------------


@dataclass
class Timings:
    seconds: list[float]
    non_200: int
    statuses: dict[int, int]
    server_cpu_seconds: float | None = None  # the server's CPU time over the timed requests


async def timed_gets(
    url: str,
    paths: Sequence[str],
    *,
    headers: dict[str, str] | None = None,
    warmup: Sequence[str] = (),
    budget_seconds: float | None = None,
    server_pid: int | None = None,
) -> Timings:
    """GET each path in turn (one request at a time) from a client pinned to the load CPU, after
    the warm-up paths; stops early once ``budget_seconds`` are spent. With ``server_pid``, also
    the CPU time that process spent on the timed requests."""
    pinned_before = os.sched_getaffinity(0)
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {int(LOAD_CPU)})
    try:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
            for path in warmup:
                await http.get(path)
            seconds: list[float] = []
            statuses: dict[int, int] = {}
            cpu_before = cpu_seconds(server_pid) if server_pid is not None else 0.0
            started = time.perf_counter()
            for path in paths:
                began = time.perf_counter()
                response = await http.get(path)
                seconds.append(time.perf_counter() - began)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if budget_seconds is not None and time.perf_counter() - started > budget_seconds:
                    break
            spent = cpu_seconds(server_pid) - cpu_before if server_pid is not None else None
    finally:
        os.sched_setaffinity(0, pinned_before)
    non_200 = sum(count for status, count in statuses.items() if status != 200)
    return Timings(seconds=seconds, non_200=non_200, statuses=statuses, server_cpu_seconds=spent)


def require_200(label: str, timings: Timings) -> None:
    if timings.non_200:
        raise RuntimeError(f"{label}: {timings.non_200} answers were not 200: {timings.statuses}")


def figures(timings: Timings) -> dict[str, float]:
    shown = {**latency_summary(timings.seconds), "non_200": timings.non_200}
    if timings.server_cpu_seconds is not None:
        per_request = timings.server_cpu_seconds * 1000 / len(timings.seconds)
        shown["server_cpu_ms_per_req"] = round(per_request, 3)
    return shown


# -- the data ------------------------------------------------------------------------------------


def city_boxes(count: int, rng: random.Random) -> list[BBox]:
    """City-sized boxes: half centred near a city where orders cluster, half anywhere."""
    boxes = []
    for n in range(count):
        width, height = rng.uniform(0.2, 0.4), rng.uniform(0.15, 0.3)
        if n % 2 == 0:
            lon, lat = rng.choice(CITIES)
            lon, lat = lon + rng.uniform(-0.1, 0.1), lat + rng.uniform(-0.1, 0.1)
        else:
            lon = rng.uniform(EUROPE[0] + 0.2, EUROPE[2] - 0.2)
            lat = rng.uniform(EUROPE[1] + 0.15, EUROPE[3] - 0.15)
        boxes.append(
            (
                round(lon - width / 2, 4),
                round(lat - height / 2, 4),
                round(lon + width / 2, 4),
                round(lat + height / 2, 4),
            )
        )
    rng.shuffle(boxes)
    return boxes


def listing_path(box: BBox) -> str:
    return "/v1/orders?bbox=" + ",".join(f"{v:g}" for v in box)


async def indexes_on(
    connection: asyncpg.Connection, table: str, columns: Sequence[str]
) -> list[tuple[str, str]]:
    """(name, definition) of the indexes of ``table`` on any of ``columns`` (see INDEXES_ON)."""
    rows = await connection.fetch(INDEXES_ON, table, list(columns))
    return [(row["name"], row["definition"]) for row in rows]


async def drop_indexes(connection: asyncpg.Connection, indexes: Sequence[tuple[str, str]]) -> None:
    for name, _ in indexes:
        await connection.execute(f'DROP INDEX "{name}"')


async def build_indexes(
    connection: asyncpg.Connection, table: str, indexes: Sequence[tuple[str, str]]
) -> None:
    for _, definition in indexes:
        await connection.execute(definition)
    await connection.execute(f"ANALYZE {table}")


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
