"""OGC API - Processes in-process: documents, conformance, and every error as an OGC exception
(application/problem+json with its type), while the rest of the API keeps CURE's shape."""

import uuid

from tests.factories import VIENNA, create_customer, customer_with_token, get_token

OGC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
PROBLEM = "application/problem+json"


def assert_problem(response, status: int, type_uri: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == type_uri and body["status"] == status
    assert body["instance"] == response.request.url.path
    return body


async def test_the_landing_page_links_what_the_standard_asks(client) -> None:
    body = (await client.get("/ogc")).json()
    rels = {link["rel"] for link in body["links"]}
    assert {"self", "service-desc", "service-doc"} <= rels
    assert {
        "http://www.opengis.net/def/rel/ogc/1.0/conformance",
        "http://www.opengis.net/def/rel/ogc/1.0/processes",
        "http://www.opengis.net/def/rel/ogc/1.0/job-list",
    } <= rels
    assert (await client.get("/ogc/")).json() == body


async def test_conformance_claims_exactly_the_implemented_classes(client) -> None:
    body = (await client.get("/ogc/conformance")).json()
    base = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/"
    assert sorted(body["conformsTo"]) == sorted(
        base + name for name in ("core", "ogc-process-description", "json", "job-list", "dismiss")
    )


async def test_a_process_describes_the_apps_parameters_and_the_region_and_dates(client) -> None:
    listed = (await client.get("/ogc/processes")).json()["processes"]
    assert {"roi_stats", "suhi", "urban_green"} <= {p["id"] for p in listed}
    suhi = (await client.get("/ogc/processes/suhi")).json()
    assert suhi["jobControlOptions"] == ["async-execute", "dismiss"]
    assert {"roi", "start_date", "end_date", "urban_threshold", "rural_threshold"} <= set(
        suhi["inputs"]
    )
    assert suhi["inputs"]["end_date"]["minOccurs"] == 0
    assert suhi["inputs"]["urban_threshold"]["schema"]["maximum"] == 100
    assert suhi["outputs"]["data"]["schema"]["contentMediaType"].startswith("image/tiff")


async def test_an_unknown_process_is_no_such_process(client) -> None:
    assert_problem(await client.get("/ogc/processes/nope"), 404, OGC + "no-such-process")
    _, headers = await customer_with_token(client)
    response = await client.post(
        "/ogc/processes/nope/execution", json={"inputs": {}}, headers=headers
    )
    assert_problem(response, 404, OGC + "no-such-process")


async def test_unknown_foreign_and_malformed_jobs_are_no_such_job(client) -> None:
    _, owner = await customer_with_token(client)
    _, stranger = await customer_with_token(client)
    body = {"inputs": {"roi": VIENNA, "start_date": "2024-07-01"}}
    created = await client.post(
        "/ogc/processes/roi_stats/execution",
        json=body,
        headers={**owner, "Prefer": "respond-async"},
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["jobID"]
    for path in (f"/ogc/jobs/{job_id}", f"/ogc/jobs/{job_id}/results"):
        assert_problem(await client.get(path, headers=stranger), 404, OGC + "no-such-job")
    assert_problem(
        await client.delete(f"/ogc/jobs/{job_id}", headers=stranger), 404, OGC + "no-such-job"
    )
    for path in (f"/ogc/jobs/{uuid.uuid4()}", "/ogc/jobs/not-a-uuid"):
        assert_problem(await client.get(path, headers=owner), 404, OGC + "no-such-job")
    not_ready = await client.get(f"/ogc/jobs/{job_id}/results", headers=owner)
    assert_problem(not_ready, 404, OGC + "result-not-ready")


async def test_synchronous_execution_is_refused(client) -> None:
    _, headers = await customer_with_token(client)
    body = {"inputs": {"roi": VIENNA, "start_date": "2024-07-01"}}
    for extra, payload in (
        ({"Prefer": "respond-sync"}, body),
        ({}, {**body, "mode": "sync"}),
    ):
        response = await client.post(
            "/ogc/processes/roi_stats/execution", json=payload, headers={**headers, **extra}
        )
        problem = assert_problem(response, 400, "OptionNotSupported")
        assert "asynchronously" in problem["detail"]
    listed = (await client.get("/ogc/jobs", headers=headers)).json()["jobs"]
    assert listed == []  # nothing was submitted


async def test_without_a_preference_the_async_only_process_runs_asynchronously(client) -> None:
    _, headers = await customer_with_token(client)
    body = {"inputs": {"roi": VIENNA, "start_date": "2024-07-01"}}
    response = await client.post("/ogc/processes/roi_stats/execution", json=body, headers=headers)
    assert response.status_code == 201
    assert "Preference-Applied" not in response.headers
    assert response.headers["location"].endswith(f"/ogc/jobs/{response.json()['jobID']}")
    assert response.json()["status"] == "accepted"


async def test_bad_inputs_are_named_in_the_exception(client) -> None:
    _, headers = await customer_with_token(client)
    url = "/ogc/processes/roi_stats/execution"
    cases = [
        ({"start_date": "2024-07-01"}, 400, "MissingParameterValue", "roi"),
        ({"roi": VIENNA}, 400, "MissingParameterValue", "start_date"),
        (
            {"roi": VIENNA, "start_date": "2024-07-01", "colour": 1},
            400,
            "InvalidParameterValue",
            "colour",
        ),
        (
            {"roi": {"type": "Point", "coordinates": [1, 2]}, "start_date": "2024-07-01"},
            400,
            "InvalidParameterValue",
            "roi",
        ),
        (
            {"roi": VIENNA, "start_date": "2024-07-01", "precision": 99},
            400,
            "InvalidParameterValue",
            "precision",
        ),
        ({"roi": VIENNA, "start_date": "yesterday"}, 400, "InvalidParameterValue", "start_date"),
    ]
    for inputs, status, type_uri, named in cases:
        response = await client.post(url, json={"inputs": inputs}, headers=headers)
        assert named in assert_problem(response, status, type_uri)["detail"]
    unknown_member = await client.post(url, json={"inputs": {}, "colour": 1}, headers=headers)
    assert_problem(unknown_member, 400, "InvalidParameterValue")


async def test_an_order_without_data_is_refused_with_the_nearest_dates_reason(client) -> None:
    _, headers = await customer_with_token(client)
    body = {"inputs": {"roi": VIENNA, "start_date": "1990-07-01"}}
    response = await client.post("/ogc/processes/suhi/execution", json=body, headers=headers)
    problem = assert_problem(response, 422, "InvalidParameterValue")
    assert "lst: sentinel3-slstr-lst" in problem["detail"]


async def test_roi_may_be_a_feature_or_a_bbox_and_values_may_be_qualified(client) -> None:
    _, headers = await customer_with_token(client)
    url = "/ogc/processes/roi_stats/execution"
    for roi in (
        {"type": "Feature", "properties": {}, "geometry": VIENNA},
        {"bbox": [16.3, 48.2, 16.4, 48.3]},
        {"value": VIENNA, "mediaType": "application/geo+json"},
    ):
        inputs = {"roi": roi, "start_date": {"value": "2024-07-01"}, "area_unit": "ha"}
        response = await client.post(url, json={"inputs": inputs}, headers=headers)
        assert response.status_code == 201, response.text
        order = await client.get(f"/v1/orders/{response.json()['jobID']}", headers=headers)
        assert order.json()["params"]["area_unit"] == "ha"
        assert order.json()["roi"]["type"] == "Polygon"


async def test_auth_errors_are_ogc_exceptions_and_scopes_apply(client) -> None:
    response = await client.get("/ogc/jobs")
    assert_problem(response, 401, "about:blank")
    assert response.headers["www-authenticate"].startswith("Bearer")
    customer = await create_customer(client)
    reader = {"Authorization": f"Bearer {await get_token(client, customer, 'orders:read')}"}
    body = {"inputs": {"roi": VIENNA, "start_date": "2024-07-01"}}
    refused = await client.post("/ogc/processes/roi_stats/execution", json=body, headers=reader)
    assert_problem(refused, 403, "about:blank")
    # the rest of the API keeps CURE's own shape
    plain = await client.get("/v1/orders")
    assert plain.status_code == 401 and set(plain.json()) == {"error", "detail"}


async def test_job_list_filters_and_pages(client) -> None:
    _, headers = await customer_with_token(client)
    body = {"inputs": {"roi": VIENNA, "start_date": "2024-07-01"}}
    ids = []
    for _ in range(3):
        response = await client.post(
            "/ogc/processes/roi_stats/execution", json=body, headers=headers
        )
        ids.append(response.json()["jobID"])
    dismissed = await client.delete(f"/ogc/jobs/{ids[0]}", headers=headers)
    assert dismissed.json()["status"] == "dismissed"
    again = await client.delete(f"/ogc/jobs/{ids[0]}", headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "dismissed"

    async def listed(**params) -> list[str]:
        response = await client.get("/ogc/jobs", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [job["jobID"] for job in response.json()["jobs"]]

    assert await listed() == ids[::-1]
    assert await listed(status="dismissed") == [ids[0]]
    assert await listed(status=["accepted"]) == ids[:0:-1]
    assert await listed(processID="suhi") == []
    assert await listed(processID=["suhi", "roi_stats"]) == ids[::-1]
    assert await listed(type="process") == ids[::-1]
    assert await listed(type="other") == []
    assert await listed(datetime="2000-01-01/..") == ids[::-1]
    assert await listed(datetime="../2000-01-01") == []
    assert await listed(minDuration=3600) == []
    assert await listed(maxDuration=3600) == ids[::-1]

    first = (await client.get("/ogc/jobs", params={"limit": 2}, headers=headers)).json()
    assert [job["jobID"] for job in first["jobs"]] == ids[:0:-1]
    following = next(link["href"] for link in first["links"] if link["rel"] == "next")
    rest = (await client.get(following, headers=headers)).json()
    assert [job["jobID"] for job in rest["jobs"]] == [ids[0]]
    assert not [link for link in rest["links"] if link["rel"] == "next"]

    bad = await client.get("/ogc/jobs", params={"status": "done"}, headers=headers)
    assert_problem(bad, 400, "InvalidParameterValue")
    bad_time = await client.get("/ogc/jobs", params={"datetime": "soon"}, headers=headers)
    assert_problem(bad_time, 400, "InvalidParameterValue")


async def test_an_unknown_ogc_path_is_an_ogc_exception(client) -> None:
    assert_problem(await client.get("/ogc/nothing"), 404, "about:blank")
