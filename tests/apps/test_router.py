import pytest

from cure.apps.exceptions import InvalidParameters
from cure.apps.registry import get_registry


async def test_list_and_get_apps(client) -> None:
    apps = (await client.get("/v1/apps")).json()
    roi_stats = next(app for app in apps if app["id"] == "roi_stats")
    assert roi_stats["title"] and roi_stats["description"] and roi_stats["version"]
    assert roi_stats["parameters"]["type"] == "object"
    one = await client.get("/v1/apps/roi_stats")
    assert one.status_code == 200
    assert one.json() == roi_stats
    assert "image" not in one.json()  # operators' details stay inside


async def test_unknown_app_is_404(client) -> None:
    response = await client.get("/v1/apps/no_such_app")
    assert response.status_code == 404
    assert response.json() == {"error": "AppNotFound", "detail": "no app with id 'no_such_app'"}


def test_params_get_defaults_and_are_checked(settings) -> None:
    app = get_registry(settings).get("roi_stats")
    assert app.validate_params({}) == {"area_unit": "km2", "precision": 3}
    assert app.validate_params({"precision": 0})["precision"] == 0
    with pytest.raises(InvalidParameters) as caught:
        app.validate_params({"area_unit": "acres", "precision": 99, "colour": "red"})
    problems = " ".join(caught.value.problems)
    assert "acres" in problems and "99" in problems and "colour" in problems


async def test_unlisted_apps_are_not_shown(client, settings, app, tmp_path) -> None:
    from cure.kit.dependencies import get_settings
    from tests.conftest import write_apps_dir

    apps = write_apps_dir(tmp_path)
    manifest = apps / "probe" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"public": true', '"public": false'))
    app.dependency_overrides[get_settings] = lambda: settings.model_copy(update={"apps_dir": apps})
    try:
        listed = [a["id"] for a in (await client.get("/v1/apps")).json()]
        assert listed == ["roi_stats"]
        assert (await client.get("/v1/apps/probe")).status_code == 404
        assert (await client.get("/v1/apps/roi_stats")).status_code == 200
    finally:
        app.dependency_overrides.clear()


async def test_the_shipped_apps_include_a_workflow_and_a_chained_app(client) -> None:
    """CURE's own apps as /v1/apps lists them: six or more; heat_exposure a workflow whose
    steps run align and classify before combine, and an input from CURE's own SUHI products."""
    apps = {app["id"]: app for app in (await client.get("/v1/apps")).json()}
    assert {
        "suhi", "urban_green", "roi_stats", "flood_susceptibility", "heat_exposure", "air_quality"
    } <= set(apps)  # fmt: skip
    steps = {step["name"]: step["needs"] for step in apps["heat_exposure"]["steps"]}
    assert steps == {"align": [], "classify": [], "combine": ["align", "classify"]}
    assert "cure-suhi" in apps["heat_exposure"]["input_collections"]
    assert apps["suhi"]["steps"] == []  # one container
