"""`cure ccsi sources add|list|show|enable|disable|remove`: an operator manages sources from the
machine; the running API processes follow at once, and no secret is ever printed."""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from cure.ccsi.sources.dependencies import SOURCES
from cure.kit.state import state_of
from tests.ccsi.sources.conftest import oauth2_document, secret_value, source_name, stac_document
from tests.conftest import ROOT, TEST_DATABASE_URL

DSN = TEST_DATABASE_URL.replace("+asyncpg", "")


def _cure(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cure", "ccsi", "sources", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ.copy(),
        timeout=60,
    )


def _write(tmp_path: Path, document: dict[str, Any]) -> str:
    path = tmp_path / f"{document['name']}.json"
    path.write_text(json.dumps(document))
    return str(path)


async def _row(name: str) -> Any:
    connection = await asyncpg.connect(DSN)
    try:
        return await connection.fetchrow(
            "SELECT document::text AS document, sealed_secrets, enabled, version"
            " FROM catalogue_sources WHERE name = $1",
            name,
        )
    finally:
        await connection.close()


async def test_an_operator_manages_a_source_from_the_command_line(app, tmp_path) -> None:
    secret = secret_value("client-secret")
    document = oauth2_document(secret)
    name = document["name"]
    registry = state_of(app).need(
        SOURCES
    )  # the API process of this run follows the command's changes
    assert await state_of(app).notices.wait_hearing(10)
    outputs: list[str] = []
    try:
        added = _cure("add", _write(tmp_path, document))
        outputs += [added.stdout, added.stderr]
        assert added.returncode == 0, added.stderr
        assert f"source {name} added (version 1, stac, auth oauth2, enabled)" in added.stdout
        row = await _row(name)
        assert row is not None and secret not in row["document"] + row["sealed_secrets"]

        deadline = time.monotonic() + 10
        while (found := await registry.get(name)) is None:
            assert time.monotonic() < deadline, "the API never saw the new source"
            await asyncio.sleep(0.01)
        assert found.document.auth.client_secret.get_secret_value() == secret

        again = _cure("add", _write(tmp_path, document))
        outputs += [again.stdout, again.stderr]
        assert again.returncode == 1 and "exists" in again.stderr

        document["priority"] = 9
        replaced = _cure("add", "--replace", "-", stdin=json.dumps(document))
        outputs += [replaced.stdout, replaced.stderr]
        assert replaced.returncode == 0, replaced.stderr
        assert f"source {name} replaced (version 2" in replaced.stdout

        listed = _cure("list")
        outputs += [listed.stdout, listed.stderr]
        line = next(line for line in listed.stdout.splitlines() if line.startswith(name))
        assert line.split()[1:6] == ["stac", "yes", "9", "2", "oauth2"]
        as_json = _cure("list", "--json")
        outputs.append(as_json.stdout)
        mine = next(s for s in json.loads(as_json.stdout) if s["name"] == name)
        assert mine["auth"]["client_secret"] == "**********"

        shown = _cure("show", name)
        outputs.append(shown.stdout)
        assert json.loads(shown.stdout)["auth"]["client_secret"] == "**********"

        disabled = _cure("disable", name)
        outputs.append(disabled.stdout)
        assert disabled.returncode == 0 and f"source {name} disabled (version 3)" in disabled.stdout
        assert (await _row(name))["enabled"] is False
        enabled = _cure("enable", name)
        assert enabled.returncode == 0 and (await _row(name))["enabled"] is True

        removed = _cure("remove", name)
        outputs.append(removed.stdout)
        assert removed.returncode == 0 and f"source {name} removed" in removed.stdout
        assert await _row(name) is None
        missing = _cure("remove", name)
        assert missing.returncode == 1 and f"no source named {name}" in missing.stderr
    finally:
        _cure("remove", name)
    for output in outputs:
        assert secret not in output


def test_a_bad_document_is_refused_naming_its_problems_not_its_secrets(tmp_path) -> None:
    secret = secret_value("client-secret")
    document = oauth2_document(secret, client_secret_env="SOME_VARIABLE")  # both: refused
    document["collections"]["sentinel2-l2a"]["assets"] = {}
    refused = _cure("add", _write(tmp_path, document))
    assert refused.returncode == 1
    assert "auth.oauth2" in refused.stderr and "not both" in refused.stderr
    assert "collections.sentinel2-l2a.assets" in refused.stderr
    assert secret not in refused.stdout + refused.stderr

    not_json = tmp_path / "broken.json"
    not_json.write_text("{")
    broken = _cure("add", str(not_json))
    assert broken.returncode == 1 and "is not JSON" in broken.stderr
    absent = _cure("add", str(tmp_path / "absent.json"))
    assert absent.returncode == 1 and "cannot read" in absent.stderr
    unknown = _cure("show", source_name())
    assert unknown.returncode == 1 and "no source named" in unknown.stderr


def test_the_shipped_source_documents_can_be_added(tmp_path) -> None:
    """The documents in docs/sources/ go in as they are (their secrets named by *_env)."""
    names = []
    try:
        for path in sorted((ROOT / "docs" / "sources").glob("*.json")):
            document = json.loads(path.read_text())
            document["name"] = source_name()  # the test's own, beside any real one
            added = _cure("add", _write(tmp_path, document))
            assert added.returncode == 0, (path.name, added.stderr)
            names.append(document["name"])
        assert len(names) >= 4
    finally:
        for name in names:
            _cure("remove", name)


def test_a_document_without_secrets_seals_nothing(tmp_path) -> None:
    document = stac_document()
    added = _cure("add", _write(tmp_path, document))
    try:
        assert added.returncode == 0, added.stderr
        row = asyncio.run(_row(document["name"]))
        assert row["sealed_secrets"] is None
    finally:
        _cure("remove", document["name"])
