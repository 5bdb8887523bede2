"""Many catalogue products at once, written by one INSERT in the test's own transaction."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_BULK = text(
    """
    INSERT INTO products (id, collection, identifier, product_type, footprint, start_at, end_at,
                          properties, assets, published, created_at)
    SELECT gen_random_uuid(), :collection, 'N' || n, 'T',
           ST_GeomFromText('POLYGON((16.3 48.2,16.4 48.2,16.4 48.3,16.3 48.3,16.3 48.2))', 4326),
           timestamptz '2020-01-01 00:00Z' + n * interval '1 minute',
           timestamptz '2020-01-01 00:00Z' + n * interval '1 minute',
           '{}', '{}', false, now()
    FROM generate_series(1, :count) AS n
    """
)


async def add_many(session: AsyncSession, collection: str, count: int) -> None:
    """``count`` public products N1 .. N<count>, a minute apart (N<count> the newest)."""
    await session.execute(_BULK, {"collection": collection, "count": count})
    await session.commit()
