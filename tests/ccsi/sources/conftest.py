import uuid
from typing import Any

import pytest

from tests.factories import create_admin


def source_name() -> str:
    """A source name of the test's own (tests share one database)."""
    return f"t-{uuid.uuid4().hex[:12]}"


def secret_value(label: str) -> str:
    """A secret no other test and no fixture text contains, easy to grep for."""
    return f"{label}-{uuid.uuid4().hex}{uuid.uuid4().hex}"


def stac_document(name: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A source document as an operator writes one (earth-search's shape)."""
    return {
        "name": name or source_name(),
        "kind": "stac",
        "url": "https://stac.example.org/v1",
        "auth": {"type": "none"},
        "collections": {
            "sentinel2-l2a": {
                "remote": "sentinel-2-l2a",
                "product_type": "S2MSI2A",
                "assets": {"red": "red", "nir": "nir", "scl": "scl"},
            }
        },
        **overrides,
    }


def oauth2_document(secret: str, name: str | None = None, **auth: Any) -> dict[str, Any]:
    return stac_document(
        name,
        auth={
            "type": "oauth2",
            "token_url": "https://identity.example.org/token",
            "client_id": "cure-client",
            "client_secret": secret,
            **auth,
        },
    )


@pytest.fixture
async def admin(client, session) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """An admin's Authorization header, inside the test's rolled-back transaction."""
    _, headers = await create_admin(client, session)
    return headers
