"""Builds the app images from their folders (Docker SDK)."""

from collections.abc import Iterator

from docker.errors import ImageNotFound

from cure.apps.registry import get_registry
from cure.config import Settings
from cure.workers.containers import docker_client


def build_all(settings: Settings, *, force: bool = False) -> Iterator[tuple[str, str]]:
    client = docker_client(settings.docker_url)
    try:
        for app in get_registry(settings).all():
            tag = app.manifest.image
            if not force:
                try:
                    client.images.get(tag)
                    yield app.id, f"{tag} (present)"
                    continue
                except ImageNotFound:
                    pass
            # Host network only for the build: it may install packages. Apps run with none.
            client.images.build(path=str(app.directory), tag=tag, network_mode="host", rm=True)
            yield app.id, f"{tag} (built)"
    finally:
        client.close()
