"""The source document's reference: docs/sources.schema.json is what the model generates, and
every ready document in docs/sources/ is valid (by the model and by the JSON Schema) and named in
docs/sources.md."""

import json

import jsonschema
import pytest

from cure.ccsi.sources.schemas import SourceDocument, json_schema
from tests.conftest import ROOT

DOCS = ROOT / "docs"
SHIPPED = sorted((DOCS / "sources").glob("*.json"))


def test_the_committed_json_schema_is_the_models() -> None:
    committed = json.loads((DOCS / "sources.schema.json").read_text())
    assert committed == json_schema(), (
        "docs/sources.schema.json is out of date: cure ccsi sources schema > "
        "docs/sources.schema.json"
    )


def test_ready_documents_are_shipped_for_the_public_catalogues() -> None:
    names = {path.stem for path in SHIPPED}
    assert {
        "earth-search",
        "earth-search-landsat",
        "cdse-stac",
        "cdse-opensearch",
        "planetary-computer",
    } <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[path.name for path in SHIPPED])
def test_a_shipped_document_is_valid_and_documented(path) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(path.read_text())
    document = SourceDocument.model_validate(data)
    assert document.name == path.stem
    jsonschema.validate(data, json_schema())
    # Shipped documents hold no secret: each is named by *_env, set where CURE runs.
    auth = data.get("auth", {})
    for field in ("client_secret", "refresh_token", "password", "access_key_id"):
        assert field not in auth, (path.name, field)
    assert "secret_access_key" not in auth
    assert f"docs/sources/{path.name}" in (DOCS / "sources.md").read_text()


def test_the_json_schema_refuses_what_the_model_refuses() -> None:
    schema = json_schema()
    good = json.loads((DOCS / "sources" / "earth-search.json").read_text())
    for bad in (
        {**good, "kind": "wms"},
        {**good, "auth": {"type": "kerberos"}},
        {**good, "surprise": True},
        {**good, "collections": {"Not An Id": good["collections"]["sentinel2-l2a"]}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
        with pytest.raises(ValueError):
            SourceDocument.model_validate(bad)
