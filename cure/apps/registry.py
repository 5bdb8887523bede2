"""Finds the apps (folders with a manifest.json) and validates order parameters against them."""

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from cure.apps.exceptions import AppNotFound, InvalidParameters
from cure.apps.schemas import AppManifest
from cure.config import Settings


class App:
    def __init__(self, manifest: AppManifest, directory: Path) -> None:
        self.manifest = manifest
        self.directory = directory
        try:
            Draft202012Validator.check_schema(manifest.parameters)
        except SchemaError as exc:
            raise ValueError(
                f"app {manifest.id}: parameters is not a JSON Schema: {exc.message}"
            ) from exc
        if manifest.parameters.get("type") != "object":
            raise ValueError(f"app {manifest.id}: parameters must describe an object")
        self._validator = Draft202012Validator(manifest.parameters)

    @property
    def id(self) -> str:
        return self.manifest.id

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """The params with the schema's top-level defaults filled in, or InvalidParameters."""
        filled = copy.deepcopy(params)
        for name, prop in self.manifest.parameters.get("properties", {}).items():
            if name not in filled and isinstance(prop, dict) and "default" in prop:
                filled[name] = copy.deepcopy(prop["default"])
        errors = sorted(self._validator.iter_errors(filled), key=lambda e: list(e.path))
        if errors:
            raise InvalidParameters([_describe(e.path, e.message) for e in errors])
        return filled


def _describe(path: Any, message: str) -> str:
    where = ".".join(str(p) for p in path)
    return f"params.{where}: {message}" if where else f"params: {message}"


class AppRegistry:
    def __init__(self, apps: dict[str, App]) -> None:
        self._apps = apps

    def all(self) -> list[App]:
        return sorted(self._apps.values(), key=lambda a: a.id)

    def public(self) -> list[App]:
        return [app for app in self.all() if app.manifest.public]

    def get(self, app_id: str) -> App:
        app = self._apps.get(app_id)
        if app is None:
            raise AppNotFound(f"no app with id '{app_id}'")
        return app


def load_registry(apps_dir: Path) -> AppRegistry:
    apps: dict[str, App] = {}
    for manifest_path in sorted(apps_dir.glob("*/manifest.json")):
        manifest = AppManifest.model_validate(json.loads(manifest_path.read_text()))
        if manifest.id != manifest_path.parent.name:
            raise ValueError(f"{manifest_path}: id '{manifest.id}' differs from its folder name")
        apps[manifest.id] = App(manifest, manifest_path.parent)
    return AppRegistry(apps)


@lru_cache
def _cached(apps_dir: Path) -> AppRegistry:
    return load_registry(apps_dir)


@lru_cache
def _resolved(apps_dir: Path) -> Path:
    # Resolving asks the file system for every part of the path: once per path, not per order.
    return apps_dir.resolve()


def get_registry(settings: Settings) -> AppRegistry:
    return _cached(_resolved(settings.apps_dir))
