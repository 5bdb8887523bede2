"""Builds the app images from their folders, with the shared app code added, on the container
runner's engine."""

from collections.abc import Iterator

from cure.apps.build_context import build_context
from cure.apps.registry import get_registry
from cure.config import Settings
from cure.containers.runner import open_runner


def build_all(settings: Settings, *, no_cache: bool = False) -> Iterator[tuple[str, str]]:
    """Build every app's image. Docker's layer cache makes an unchanged app a no-op, while a
    changed app is always rebuilt under its tag (a tag alone cannot tell that code changed)."""
    runner = open_runner(settings, timeout=60)
    try:
        for app in get_registry(settings).all():
            tag = app.manifest.image
            image = runner.build_image(build_context(app.directory), tag=tag, no_cache=no_cache)
            yield app.id, f"{tag} ({image})"
    finally:
        runner.close()
