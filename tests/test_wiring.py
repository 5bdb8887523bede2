"""create_app(settings) reaches the database it was given: two apps live side by side."""

import httpx

from cure.kit.state import state_of
from tests.conftest import started_app


async def test_two_apps_with_different_settings_in_one_process(settings) -> None:
    # The second app's database is a port where nothing listens: if it used the first app's
    # engine (or a module-level one), it would answer 200 too.
    elsewhere = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:9/cure"}
    )
    async with started_app(settings) as ours, started_app(elsewhere) as theirs:
        assert state_of(ours).db.engine is not state_of(theirs).db.engine
        for app, expected in ((ours, 200), (theirs, 503)):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
                response = await http.get("/health")
            assert response.status_code == expected, response.text


async def test_a_serving_api_runs_the_collector_less_often_and_gives_it_back(settings) -> None:
    import gc

    from cure.main import GC_THRESHOLDS

    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's own, whatever other apps of the session set
    try:
        async with started_app(settings):
            assert gc.get_threshold() == GC_THRESHOLDS
            assert gc.isenabled()  # cycles are still collected
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)
