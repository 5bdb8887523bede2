"""Each process's registry of enabled sources (SourceRegistry) follows every change made by any
process, without a restart, through the cure_sources notice; the worker loads one source by name
with its secrets."""

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from cure.ccsi.sources import service as source_service
from cure.ccsi.sources.auth import OAuth2SourceAuth
from cure.ccsi.sources.dependencies import SOURCES
from cure.ccsi.sources.schemas import SourceDocument
from cure.kit.state import state_of
from tests.ccsi.sources.conftest import oauth2_document, secret_value, stac_document
from tests.conftest import TEST_DATABASE_URL, started_app
from tests.factories import create_admin

DSN = TEST_DATABASE_URL.replace("+asyncpg", "")
BASE = "/v1/ccsi/sources"


def _http(api) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=api, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://cure.test")


@pytest.fixture
async def two_processes(settings):  # type: ignore[no-untyped-def]
    """Two API apps with their own engines, registries and listeners, as two processes have;
    an admin's headers; the sources the test added are removed at the end."""
    async with started_app(settings) as first, started_app(settings) as second:
        for api in (first, second):
            assert await state_of(api).notices.wait_hearing(10), "the listener never connected"
        async with _http(first) as one, _http(second) as two:
            async with state_of(first).db.sessionmaker() as session:
                _, admin = await create_admin(one, session)
            added: list[str] = []
            yield (first, one), (second, two), admin, added
            for name in added:
                await one.delete(f"{BASE}/{name}", headers=admin)


async def _until(check: Any, seconds: float = 10) -> Any:
    """Poll ``check()`` until it returns something truthy. The deadline only keeps a lost notice
    from hanging the test; no speed is asserted."""
    deadline = time.monotonic() + seconds
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, "the change was never seen"
        await asyncio.sleep(0.01)


async def test_a_source_added_changed_and_removed_elsewhere_is_followed(two_processes) -> None:
    (first, one), (second, _), admin, added = two_processes
    registry = state_of(second).need(SOURCES)
    secret = secret_value("client-secret")
    document = oauth2_document(secret)
    name = document["name"]
    assert await registry.get(name) is None  # read now, and kept: the registry is current
    answer = await one.post(BASE, json=document, headers=admin)
    assert answer.status_code == 201
    added.append(name)

    source = await _until(lambda: registry.get(name))
    assert source.version == 1 and source.document.name == name
    assert isinstance(source.document.auth.client_secret, SecretStr)
    assert source.document.auth.client_secret.get_secret_value() == secret  # decrypted
    assert isinstance(source.auth, OAuth2SourceAuth)
    assert secret not in repr(source)
    assert name in [s.name for s in await registry.enabled()]

    replaced = await one.put(
        f"{BASE}/{name}", json={**document, "priority": 3, "timeout_seconds": 2}, headers=admin
    )
    assert replaced.status_code == 200

    async def new_version() -> Any:
        found = await registry.get(name)
        return found if found is not None and found.version == 2 else None

    changed = await _until(new_version)
    assert changed.document.priority == 3 and changed.document.timeout_seconds == 2
    assert changed.auth is not source.auth  # a new version: new credentials

    # Any writer, not only the API: the trigger sends the notice.
    connection = await asyncpg.connect(DSN)
    try:
        await connection.execute(
            "UPDATE catalogue_sources SET enabled = false, version = version + 1 WHERE name = $1",
            name,
        )
    finally:
        await connection.close()

    async def gone() -> bool:
        return await registry.get(name) is None

    await _until(gone)
    assert (await one.post(f"{BASE}/{name}/enable", headers=admin)).status_code == 200
    await _until(lambda: registry.get(name))
    assert (await one.delete(f"{BASE}/{name}", headers=admin)).status_code == 204
    added.remove(name)
    await _until(gone)


async def test_a_process_sees_its_own_change_at_once_and_keeps_unchanged_sources(
    two_processes,
) -> None:
    (first, one), _, admin, added = two_processes
    registry = state_of(first).need(SOURCES)
    keep, other = stac_document(), stac_document()
    for document in (keep, other):
        assert (await one.post(BASE, json=document, headers=admin)).status_code == 201
        added.append(document["name"])
        # Its own commit made the registry read again: no waiting for the notice.
        assert await registry.get(document["name"]) is not None
    kept = await registry.get(keep["name"])
    replaced = await one.put(
        f"{BASE}/{other['name']}", json={**other, "priority": 1}, headers=admin
    )
    assert replaced.status_code == 200
    assert (await registry.get(other["name"])).version == 2
    # The unchanged source is the same object: its credentials (a token) live on.
    assert await registry.get(keep["name"]) is kept
    ordered = [s.name for s in await registry.enabled() if s.name in (keep["name"], other["name"])]
    assert ordered == [other["name"], keep["name"]]  # by priority


async def test_a_source_whose_secrets_cannot_be_read_is_left_out_and_named(
    two_processes, settings
) -> None:
    (first, _), (second, _), _, added = two_processes
    secret = secret_value("refresh")
    document = SourceDocument.model_validate(oauth2_document(secret))
    elsewhere = settings.model_copy(update={"sources_key": SecretStr("k" * 48)})
    async with state_of(
        first
    ).db.sessionmaker() as session:  # sealed under another deployment's key
        await source_service.add(session, elsewhere, document)
        await session.commit()
    added.append(document.name)
    registry = state_of(second).need(SOURCES)

    async def named() -> Any:
        await registry.enabled()
        return registry.problems.get(document.name)

    problem = await _until(named)
    assert "CURE_SOURCES_KEY" in problem and secret not in problem
    assert await registry.get(document.name) is None


async def test_the_worker_loads_one_enabled_source_with_its_secrets(
    two_processes, settings
) -> None:
    (first, one), _, admin, added = two_processes
    secret = secret_value("client-secret")
    document = oauth2_document(secret)
    assert (await one.post(BASE, json=document, headers=admin)).status_code == 201
    added.append(document["name"])

    loaded = await source_service.load_source_with(
        state_of(first).db.engine, settings, document["name"]
    )
    assert loaded is not None and loaded.version == 1
    assert loaded.document.auth.client_secret.get_secret_value() == secret
    missing = f"t-{uuid.uuid4().hex[:12]}"
    assert (
        await source_service.load_source_with(state_of(first).db.engine, settings, missing) is None
    )

    # From synchronous code with no loop (a Celery task's body runs in a thread of its own).
    found = await asyncio.to_thread(source_service.load_source_sync, settings, document["name"])
    assert found is not None and found.document == loaded.document

    assert (await one.post(f"{BASE}/{document['name']}/disable", headers=admin)).status_code == 200
    assert (
        await source_service.load_source_with(state_of(first).db.engine, settings, document["name"])
        is None
    )
