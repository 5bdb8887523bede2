import uuid

import pytest


@pytest.fixture(scope="session")
async def app(app):  # type: ignore[no-untyped-def]
    """The API, with the catalogue's routes added if create_app does not include them yet."""
    from cure.ccsi.router import router

    if not any(getattr(route, "path", "").startswith(router.prefix) for route in app.routes):
        app.include_router(router)
    return app


@pytest.fixture
def collection() -> str:
    """A collection of the test's own (tests share one database)."""
    return f"test-{uuid.uuid4().hex[:12]}"
