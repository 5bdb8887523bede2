"""OWSLib's OGC API - Processes client against a live stack: list processes, describe one,
execute asynchronously, poll the job, read its results, dismiss another, be refused sync."""

import time
from collections.abc import Iterator

import httpx
import owslib.ogcapi
import pytest
from owslib.ogcapi.processes import Processes

from tests.conftest import Stack, running_stack, write_apps_dir
from tests.factories import VIENNA, customer_with_token


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory) -> Iterator[Stack]:
    apps = write_apps_dir(tmp_path_factory.mktemp("ogc"), probe_timeout=60)
    with running_stack("ogc", CURE_APPS_DIR=str(apps)) as live:
        yield live


@pytest.fixture
async def processes(stack: Stack) -> Iterator[Processes]:
    async with httpx.AsyncClient(base_url=stack.url) as http:
        _, headers = await customer_with_token(http)
    shared = dict(owslib.ogcapi.REQUEST_HEADERS)  # OWSLib updates its module's headers in place
    try:
        yield Processes(f"{stack.url}/ogc", headers=headers)
    finally:
        owslib.ogcapi.REQUEST_HEADERS.clear()
        owslib.ogcapi.REQUEST_HEADERS.update(shared)


def poll(client: Processes, job_id: str, until: set[str], seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    status: dict = {}
    while time.monotonic() < deadline:
        status = client._request(path=f"jobs/{job_id}")  # OWSLib's own request helper
        if status["status"] in until:
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached {until}: {status}")


def test_owslib_lists_describes_executes_polls_reads_and_dismisses(processes: Processes) -> None:
    assert (
        "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core"
        in (processes.conformance()["conformsTo"])
    )
    assert {"probe", "roi_stats"} <= {p["id"] for p in processes.processes()}
    described = processes.process("roi_stats")
    assert {"roi", "start_date", "end_date", "area_unit", "precision"} == set(described["inputs"])
    assert described["jobControlOptions"] == ["async-execute", "dismiss"]

    inputs = {"roi": VIENNA, "start_date": "2024-07-15", "area_unit": "ha"}
    job = processes.execute("roi_stats", inputs=inputs, async_=True)
    assert job["status"] == "accepted" and job["processID"] == "roi_stats"
    assert processes.response_headers["Preference-Applied"] == "respond-async"
    assert processes.response_headers["Location"].endswith(f"/ogc/jobs/{job['jobID']}")

    done = poll(processes, job["jobID"], {"successful", "failed", "dismissed"})
    assert done["status"] == "successful", done
    assert done["progress"] == 100 and done["started"] and done["finished"]
    results = processes._request(path=f"jobs/{job['jobID']}/results")
    assert set(results) == {"data"} and results["data"]["type"] == "application/geo+json"
    statistics = httpx.get(results["data"]["href"]).json()  # an expiring link, no token needed
    assert statistics["features"][0]["properties"]["area_unit"] == "ha"

    probe_inputs = {"roi": VIENNA, "start_date": "2024-07-15", "mode": "sleep"}
    sleeper = processes.execute("probe", inputs=probe_inputs, async_=True)
    poll(processes, sleeper["jobID"], {"running"})
    dismissed = processes._request(method="DELETE", path=f"jobs/{sleeper['jobID']}")
    assert dismissed["status"] == "dismissed" and dismissed["cure:status"] == "CANCELLED"
    assert poll(processes, sleeper["jobID"], {"dismissed"})["finished"]

    listed = processes._request(path="jobs")["jobs"]
    assert [j["jobID"] for j in listed] == [sleeper["jobID"], job["jobID"]]

    with pytest.raises(RuntimeError, match="OptionNotSupported"):
        processes.execute("roi_stats", inputs=inputs, async_=False)
    with pytest.raises(RuntimeError, match="no-such-job"):
        processes._request(path="jobs/00000000-0000-0000-0000-000000000000")


def test_an_invalid_run_is_a_failed_job_with_its_reason(processes: Processes) -> None:
    inputs = {"roi": VIENNA, "start_date": "2024-07-15", "mode": "invalid"}
    job = processes.execute("probe", inputs=inputs, async_=True)
    failed = poll(processes, job["jobID"], {"successful", "failed", "dismissed"})
    assert failed["status"] == "failed" and failed["cure:status"] == "INVALID"
    assert failed["message"] == "INVALID: no product for this date"
    with pytest.raises(RuntimeError, match="no product for this date"):
        processes._request(path=f"jobs/{job['jobID']}/results")
