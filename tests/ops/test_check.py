"""`cure check`'s order step against a stand-in API, without a clock: an order that is still
waiting when the check's time is up fails the step naming its status, and one that is QUEUED
asks whether a worker runs (the live test cannot choose which of the two it sees)."""

import httpx
import pytest

from cure.ops.check import CheckFailed, CheckRun


def _api(status: str, asked: list[str]) -> httpx.MockTransport:
    """An API whose every order stays ``status``; notes each request as "METHOD path"."""
    order = {"order_id": "0f0e", "status": status}

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.method} {request.url.path}")
        return httpx.Response(202 if request.method == "POST" else 200, json=order)

    return httpx.MockTransport(answer)


@pytest.mark.parametrize(("status", "hint"), [("QUEUED", True), ("RECEIVED", False)])
def test_an_order_still_waiting_fails_the_step_naming_its_status(status: str, hint: bool) -> None:
    asked: list[str] = []
    run = CheckRun(url="http://cure.test", timeout=0, headers={"Authorization": "Bearer t"})
    with (
        httpx.Client(transport=_api(status, asked), base_url=run.url) as http,
        pytest.raises(CheckFailed) as failed,
    ):
        run.place_order(http)
    assert asked[0] == "POST /v1/apps/roi_stats/orders"
    assert set(asked[1:]) <= {"GET /v1/orders/0f0e"}
    assert failed.value.step == "order"
    assert f"order 0f0e still {status} after 0s" in failed.value.reason
    assert ("(is a worker running?)" in failed.value.reason) is hint
