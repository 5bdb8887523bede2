import uuid

import pytest


@pytest.fixture
def collection() -> str:
    """A collection of the test's own (tests share one database)."""
    return f"test-{uuid.uuid4().hex[:12]}"
