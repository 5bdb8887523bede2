"""/v1/ccsi/sources: admins add, list, read, replace, enable, disable and remove remote catalogues;
stored secrets are sealed at rest and never come back in an answer."""

import json

from sqlalchemy import text

from cure.ccsi.sources import sealing
from cure.config import Settings
from tests.ccsi.sources.conftest import oauth2_document, secret_value, source_name, stac_document
from tests.factories import customer_with_token

BASE = "/v1/ccsi/sources"


async def test_an_admin_adds_reads_lists_replaces_and_removes_a_source(client, admin) -> None:
    document = stac_document(priority=20)
    added = await client.post(BASE, json=document, headers=admin)
    assert added.status_code == 201, added.text
    body = added.json()
    assert added.headers["Location"] == f"{BASE}/{document['name']}"
    assert body["name"] == document["name"] and body["version"] == 1 and body["enabled"] is True
    assert body["priority"] == 20 and body["auth"] == {"type": "none"}
    assert body["collections"]["sentinel2-l2a"]["assets"] == {
        "red": "red",
        "nir": "nir",
        "scl": "scl",
    }

    read = await client.get(f"{BASE}/{document['name']}", headers=admin)
    assert read.status_code == 200 and read.json() == body
    listed = await client.get(BASE, headers=admin)
    assert listed.status_code == 200
    assert document["name"] in [s["name"] for s in listed.json()["sources"]]

    replaced = await client.put(
        f"{BASE}/{document['name']}", json={**document, "priority": 5}, headers=admin
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["priority"] == 5 and replaced.json()["version"] == 2

    disabled = await client.post(f"{BASE}/{document['name']}/disable", headers=admin)
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False and disabled.json()["version"] == 3
    again = await client.post(f"{BASE}/{document['name']}/disable", headers=admin)
    assert again.json()["version"] == 3  # no change, no new version
    enabled = await client.post(f"{BASE}/{document['name']}/enable", headers=admin)
    assert enabled.json()["enabled"] is True and enabled.json()["version"] == 4

    removed = await client.delete(f"{BASE}/{document['name']}", headers=admin)
    assert removed.status_code == 204
    gone = await client.get(f"{BASE}/{document['name']}", headers=admin)
    assert gone.status_code == 404 and gone.json()["error"] == "SourceNotFound"


async def test_a_put_to_a_new_name_adds_the_source(client, admin) -> None:
    document = stac_document()
    created = await client.put(f"{BASE}/{document['name']}", json=document, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1


async def test_a_second_source_of_the_same_name_is_a_conflict(client, admin) -> None:
    document = stac_document()
    assert (await client.post(BASE, json=document, headers=admin)).status_code == 201
    again = await client.post(BASE, json={**document, "priority": 1}, headers=admin)
    assert again.status_code == 409 and again.json()["error"] == "SourceExists"
    read = await client.get(f"{BASE}/{document['name']}", headers=admin)
    assert read.json()["priority"] == 100  # the first one stands


async def test_unknown_sources_are_404(client, admin) -> None:
    name = source_name()
    for method, path in (
        ("GET", f"{BASE}/{name}"),
        ("DELETE", f"{BASE}/{name}"),
        ("POST", f"{BASE}/{name}/enable"),
        ("POST", f"{BASE}/{name}/disable"),
    ):
        answer = await client.request(method, path, headers=admin)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["error"] == "SourceNotFound"


async def test_bad_documents_are_refused_in_the_error_shape(client, admin) -> None:
    cases = [
        {**stac_document(), "kind": "wms"},
        {**stac_document(), "auth": {"type": "kerberos"}},
        {**stac_document(), "name": "local"},
        {**stac_document(), "name": "Not A Name"},
        {**stac_document(), "collections": {}},
        {**stac_document(), "url": "not a url"},
        {**stac_document(), "status": "trusted"},  # unknown fields are refused
        oauth2_document("s" * 40, client_secret_env="SOME_SECRET"),  # inline and env both
        stac_document(auth={"type": "oauth2", "token_url": "https://x.org/t", "client_id": "c"}),
        stac_document(auth={"type": "s3", "access_key_id": "only-half"}),
    ]
    for document in cases:
        answer = await client.post(BASE, json=document, headers=admin)
        assert answer.status_code == 422, (document, answer.text)
        assert answer.json()["error"] == "ValidationError" and answer.json()["detail"]
    not_json = await client.post(
        BASE, content=b"{", headers={**admin, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 422 and not_json.json()["error"] == "ValidationError"


async def test_a_put_must_name_the_source_of_its_path(client, admin) -> None:
    document = stac_document()
    other = source_name()
    answer = await client.put(f"{BASE}/{other}", json=document, headers=admin)
    assert answer.status_code == 422 and answer.json()["error"] == "InvalidSource"
    assert (await client.get(f"{BASE}/{other}", headers=admin)).status_code == 404


async def test_sources_are_for_admins_only(client, admin) -> None:
    document = stac_document()
    assert (await client.post(BASE, json=document, headers=admin)).status_code == 201
    _, customer = await customer_with_token(client)
    for headers, status, error in (({}, 401, "InvalidToken"), (customer, 403, None)):
        for method, path, body in (
            ("GET", BASE, None),
            ("POST", BASE, stac_document()),
            ("GET", f"{BASE}/{document['name']}", None),
            ("PUT", f"{BASE}/{document['name']}", document),
            ("DELETE", f"{BASE}/{document['name']}", None),
            ("POST", f"{BASE}/{document['name']}/disable", None),
        ):
            answer = await client.request(method, path, json=body, headers=headers)
            assert answer.status_code == status, (method, path, answer.text)
            if error:
                assert answer.json()["error"] == error
    read = await client.get(f"{BASE}/{document['name']}", headers=admin)
    assert read.json()["version"] == 1 and read.json()["enabled"] is True  # nothing changed


async def test_secrets_are_sealed_at_rest_and_never_answered(client, admin, session) -> None:
    secret = secret_value("client-secret")
    document = oauth2_document(secret)
    answers = [await client.post(BASE, json=document, headers=admin)]
    assert answers[0].status_code == 201
    assert answers[0].json()["auth"]["client_secret"] == "**********"
    assert answers[0].json()["auth"]["client_id"] == "cure-client"
    answers.append(await client.get(f"{BASE}/{document['name']}", headers=admin))
    answers.append(await client.get(BASE, headers=admin))
    answers.append(await client.post(BASE, json=document, headers=admin))  # the 409
    for answer in answers:
        assert secret not in answer.text
        assert secret not in json.dumps(dict(answer.headers))

    row = (
        await session.execute(
            text("SELECT document::text, sealed_secrets FROM catalogue_sources WHERE name = :n"),
            {"n": document["name"]},
        )
    ).one()
    assert secret not in row.document and secret not in row.sealed_secrets
    assert json.loads(row.document)["auth"]["client_secret"] == "**********"
    # What is sealed is the secret, for this source only.
    settings = Settings()
    assert sealing.unseal(settings, document["name"], row.sealed_secrets) == {
        "client_secret": secret
    }


async def test_a_masked_secret_sent_back_keeps_the_stored_one(client, admin, session) -> None:
    secret = secret_value("client-secret")
    document = oauth2_document(secret)
    assert (await client.post(BASE, json=document, headers=admin)).status_code == 201
    shown = (await client.get(f"{BASE}/{document['name']}", headers=admin)).json()
    # The answer, edited and sent back as it is: the secret stays.
    edited = {k: v for k, v in shown.items() if k not in ("version", "created_at", "updated_at")}
    edited["priority"] = 7
    replaced = await client.put(f"{BASE}/{document['name']}", json=edited, headers=admin)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["priority"] == 7 and replaced.json()["version"] == 2
    sealed = (
        await session.execute(
            text("SELECT sealed_secrets FROM catalogue_sources WHERE name = :n"),
            {"n": document["name"]},
        )
    ).scalar_one()
    assert sealing.unseal(Settings(), document["name"], sealed) == {"client_secret": secret}

    # A mask with nothing of its kind stored is refused; so is a mask in a new source.
    s3 = {"type": "s3", "access_key_id": "**********", "secret_access_key": "**********"}
    refused = await client.put(
        f"{BASE}/{document['name']}", json={**edited, "auth": s3}, headers=admin
    )
    assert refused.status_code == 422 and refused.json()["error"] == "InvalidSource"
    masked_new = oauth2_document("**********")
    refused = await client.post(BASE, json=masked_new, headers=admin)
    assert refused.status_code == 422 and refused.json()["error"] == "InvalidSource"


async def test_secrets_referenced_from_the_environment_are_stored_as_names(
    client, admin, session
) -> None:
    document = stac_document(
        auth={
            "type": "s3",
            "region": "eu-central-1",
            "access_key_id_env": "CURE_TEST_SOURCE_KEY_ID",
            "secret_access_key_env": "CURE_TEST_SOURCE_SECRET_KEY",
            "requester_pays": True,
        }
    )
    added = await client.post(BASE, json=document, headers=admin)
    assert added.status_code == 201, added.text
    assert added.json()["auth"]["secret_access_key_env"] == "CURE_TEST_SOURCE_SECRET_KEY"
    assert "secret_access_key" not in added.json()["auth"] or (
        added.json()["auth"]["secret_access_key"] is None
    )
    sealed = (
        await session.execute(
            text("SELECT sealed_secrets FROM catalogue_sources WHERE name = :n"),
            {"n": document["name"]},
        )
    ).scalar_one()
    assert sealed is None  # nothing inline, nothing sealed
