"""A source's secrets never come out: not in an API answer (success or error), not in a log
record, not in an error's message, not in a repr, whatever the path."""

import logging

import pytest
from sqlalchemy import text

from cure.ccsi.sources import service as source_service
from cure.ccsi.sources.auth import SourceAuthError
from cure.ccsi.sources.exceptions import SecretsUnreadable, StoredSourceInvalid
from cure.ccsi.sources.schemas import SourceDocument
from cure.config import Settings
from tests.ccsi.sources.conftest import oauth2_document, secret_value, stac_document
from tests.conftest import free_port

BASE = "/v1/ccsi/sources"


async def test_no_path_lets_a_secret_out(client, admin, session, caplog) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    secrets = [secret_value(label) for label in ("client", "key-id", "secret-key", "password")]
    client_secret, key_id, secret_key, password = secrets
    oauth = oauth2_document(client_secret)
    oauth["auth"]["token_url"] = f"http://127.0.0.1:{free_port()}/token"  # nobody answers
    s3 = stac_document(
        auth={"type": "s3", "access_key_id": key_id, "secret_access_key": secret_key}
    )
    login = stac_document(
        auth={
            "type": "oauth2",
            "token_url": "https://identity.example.org/token",
            "grant": "password",
            "client_id": "public",
            "username": "someone@example.org",
            "password": password,
        }
    )
    seen: list[str] = []

    def answered(response) -> None:  # type: ignore[no-untyped-def]
        seen.append(response.text)
        seen.extend(f"{k}: {v}" for k, v in response.headers.items())

    for document in (oauth, s3, login):
        answered(await client.post(BASE, json=document, headers=admin))
        answered(await client.post(BASE, json=document, headers=admin))  # 409
        answered(await client.get(f"{BASE}/{document['name']}", headers=admin))
        answered(await client.put(f"{BASE}/{document['name']}", json=document, headers=admin))
    answered(await client.get(BASE, headers=admin))
    # Refused documents: a validation error quotes no value.
    both = oauth2_document(client_secret, client_secret_env="ALSO_FROM_ENV")
    answered(await client.post(BASE, json=both, headers=admin))
    answered(await client.post(BASE, json={**s3, "priority": -1}, headers=admin))
    answered(await client.put(f"{BASE}/{oauth['name']}", json=s3, headers=admin))  # 422
    assert all(secret not in text for text in seen for secret in secrets)

    errors: list[BaseException] = []
    settings = Settings()
    loaded = await source_service.load_source(session, settings, oauth["name"])
    assert loaded is not None
    shown = [repr(loaded), str(loaded), repr(loaded.document), str(loaded.document.auth)]
    shown += [repr(loaded.auth), repr(loaded.document.model_dump())]
    with pytest.raises(SourceAuthError) as unreachable:
        await loaded.auth.headers()  # the token endpoint is down
    errors.append(unreachable.value)
    s3_source = await source_service.load_source(session, settings, s3["name"])
    assert s3_source is not None
    shown.append(repr(s3_source.auth.s3()))
    assert s3_source.auth.s3().secret_access_key == secret_key  # there, where it is needed

    # Stored secrets this deployment cannot read, and a stored document no longer valid.
    other = Settings(sources_key="another-key-" + "q" * 40)
    with pytest.raises(SecretsUnreadable) as unreadable:
        await source_service.load_source(session, other, oauth["name"])
    errors.append(unreadable.value)
    await session.execute(
        text(
            "UPDATE catalogue_sources SET document = jsonb_set(document, '{priority}', '-5')"
            " WHERE name = :name"
        ),
        {"name": login["name"]},
    )
    with pytest.raises(StoredSourceInvalid) as invalid:
        await source_service.load_source(session, settings, login["name"])
    errors.append(invalid.value)
    assert "priority" in str(invalid.value)
    assert invalid.value.__cause__ is None and invalid.value.__suppress_context__

    texts = shown + [str(error) for error in errors] + [repr(error) for error in errors]
    texts += [record.getMessage() for record in caplog.records]
    texts += [record.exc_text or "" for record in caplog.records]
    texts.append(caplog.text)
    assert len(caplog.records) > 0  # the paths above did log
    for secret in secrets:
        assert all(secret not in text for text in texts), secret


def test_a_document_repr_and_dump_hide_its_secrets() -> None:
    secret = secret_value("client")
    document = SourceDocument.model_validate(oauth2_document(secret))
    assert secret not in repr(document) and secret not in str(document)
    assert secret not in str(document.model_dump()) and secret not in document.model_dump_json()
