"""Small helpers that make catalogue products for tests."""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cure.ccsi import service as ccsi_service
from cure.ccsi.models import Product
from cure.ccsi.schemas import ProductCreate


def box(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> dict[str, Any]:
    ring = [
        [min_lon, min_lat],
        [max_lon, min_lat],
        [max_lon, max_lat],
        [min_lon, max_lat],
        [min_lon, min_lat],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


VIENNA = box(16.3, 48.2, 16.4, 48.3)


def product_body(**overrides: Any) -> dict[str, Any]:
    """A registration body for POST /v1/ccsi/{collection}/products."""
    return {
        "identifier": f"P-{uuid.uuid4().hex[:12]}",
        "product_type": "S2MSI2A",
        "footprint": VIENNA,
        "start": "2024-07-01T10:00:00Z",
        "properties": {"cloudCover": 12.5},
        **overrides,
    }


async def add_product(
    session: AsyncSession,
    collection: str,
    *,
    owner_id: uuid.UUID | None = None,
    published: bool = False,
    **overrides: Any,
) -> Product:
    """A product straight through the service (the caller commits)."""
    data = ProductCreate.model_validate(product_body(**overrides))
    product = await ccsi_service.register(
        session, collection=collection, data=data, owner_id=owner_id
    )
    product.published = published
    await session.flush()
    return product


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
