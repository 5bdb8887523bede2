"""Builds the app images from their folders (Docker SDK), with the shared app code added."""

import io
from collections.abc import Iterator

from cure.apps.build_context import build_context
from cure.apps.registry import get_registry
from cure.config import Settings
from cure.containers.engine import docker_client


def build_all(settings: Settings, *, no_cache: bool = False) -> Iterator[tuple[str, str]]:
    """Build every app's image. Docker's layer cache makes an unchanged app a no-op, while a
    changed app is always rebuilt under its tag (a tag alone cannot tell that code changed)."""
    client = docker_client(settings.docker_url)
    try:
        for app in get_registry(settings).all():
            tag = app.manifest.image
            context = io.BytesIO(build_context(app.directory))
            # Host network only for the build: it may install packages. Apps run with none.
            image, _ = client.images.build(
                fileobj=context,
                custom_context=True,
                tag=tag,
                network_mode="host",
                rm=True,
                nocache=no_cache,
            )
            yield app.id, f"{tag} ({image.short_id})"
    finally:
        client.close()
