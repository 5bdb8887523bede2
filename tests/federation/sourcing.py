"""Catalogue sources for the federation tests: registered as an admin's ``cure ccsi sources add``
does (committed, so the API's registry reads them), removed when the test ends."""

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from cure.ccsi.sources import service as source_service
from cure.ccsi.sources.dependencies import SOURCES
from cure.ccsi.sources.schemas import SourceDocument
from cure.kit.state import state_of


def source_name(label: str = "src") -> str:
    """A source name of the test's own (the test database is shared)."""
    return f"{label}-{uuid.uuid4().hex[:10]}"


def stac_source(url: str, *, name: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Earth Search's Sentinel-2 L2A and Landsat C2 L2 as CURE's collections, as the README's
    source document maps them."""
    return {
        "name": name or source_name("stac"),
        "kind": "stac",
        "url": url,
        "auth": {"type": "none"},
        # Roomy: a good source answers within it even on a loaded machine (a test that needs
        # one to miss its deadline holds its requests: see CountingProxy.hold).
        "timeout_seconds": 30,
        "collections": {
            "sentinel2-l2a": {
                "remote": "sentinel-2-l2a",
                "product_type": "S2MSI2A",
                "assets": {"red": "red", "nir": "nir", "scl": "scl"},
            },
            "landsat-c2-l2": {
                "remote": "landsat-c2-l2",
                "product_type": "L2SP",
                "assets": {"lst": "lwir11", "qa": "qa_pixel"},
            },
        },
        **overrides,
    }


@contextlib.asynccontextmanager
async def registered(
    app: Any, sessionmaker: Any, *documents: dict[str, Any]
) -> AsyncIterator[list[str]]:
    """The sources added (and committed) for the test's length; the API's registry reads them
    at its next use."""
    settings = state_of(app).settings
    names = []
    async with sessionmaker() as session:
        for document in documents:
            checked = SourceDocument.model_validate(document)
            await source_service.add(session, settings, checked)
            names.append(checked.name)
        await session.commit()
    state_of(app).need(SOURCES).invalidate()
    try:
        yield names
    finally:
        async with sessionmaker() as session:
            for name in names:
                with contextlib.suppress(source_service.SourceNotFound):
                    await source_service.remove(session, name)
            await session.commit()
        state_of(app).need(SOURCES).invalidate()
