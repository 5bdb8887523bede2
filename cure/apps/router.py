from fastapi import APIRouter

from cure.apps import registry as app_registry
from cure.apps.exceptions import AppNotFound
from cure.apps.schemas import AppRead
from cure.kit.dependencies import SettingsDep
from cure.kit.schemas import error_responses

router = APIRouter(prefix="/v1/apps", tags=["apps"])


def _read(app: app_registry.App) -> AppRead:
    return AppRead.model_validate(app.manifest)


@router.get("", response_model=list[AppRead])
async def list_apps(settings: SettingsDep) -> list[AppRead]:
    """The apps that can be ordered, each with the JSON Schema of its parameters."""
    return [_read(app) for app in app_registry.get_registry(settings).public()]


@router.get("/{app_id}", response_model=AppRead, responses=error_responses(404))
async def get_app(app_id: str, settings: SettingsDep) -> AppRead:
    """One app, with the JSON Schema of its parameters."""
    app = app_registry.get_registry(settings).get(app_id)
    if not app.manifest.public:  # unlisted apps are not shown to everyone
        raise AppNotFound(f"no app with id '{app_id}'")
    return _read(app)
