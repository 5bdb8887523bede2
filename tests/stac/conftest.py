import uuid
from typing import Any

import pytest
from pystac import STACObjectType
from pystac.validation import validate_dict
from pystac.validation.stac_validator import JsonSchemaSTACValidator


@pytest.fixture
def collection() -> str:
    """A collection of the test's own (tests share one database)."""
    return f"stac-{uuid.uuid4().hex[:12]}"


def validate_item(item: dict[str, Any]) -> None:
    """The STAC JSON schemas that pystac ships (core 1.1.0, offline). Items that declare the
    processing extension are checked against core only: its schema is not available offline."""
    if item["stac_extensions"]:
        JsonSchemaSTACValidator().validate_core(item, STACObjectType.ITEM, item["stac_version"])
    else:
        validate_dict(item, STACObjectType.ITEM)


def validate_collection(collection: dict[str, Any]) -> None:
    validate_dict(collection, STACObjectType.COLLECTION)
