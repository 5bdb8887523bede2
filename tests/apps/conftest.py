"""Real app images on the real Docker engine: build once per session, run hardened like the worker.

Helpers write small GeoTIFFs whose answers the tests know, stage them into a volume at /job with
the archive API (as the worker does), run the app and hand back its exit code, logs and outputs.
"""

import io
import json
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform as transform_points

from cure.apps.build_context import build_context

APPS_DIR = Path(__file__).resolve().parents[2] / "cure" / "apps"
APP_UID = 65534


@dataclass
class AppRun:
    exit_code: int
    stdout: list[str]
    stderr: list[str]
    outputs: dict[str, Path]

    @property
    def reason(self) -> str:
        """The app's last stderr line: where it says why the input is invalid."""
        return self.stderr[-1] if self.stderr else ""

    def progress(self) -> list[int]:
        return [int(line.split()[1]) for line in self.stdout if line.startswith("CURE_PROGRESS ")]


def manifest(app_id: str) -> dict[str, Any]:
    return json.loads((APPS_DIR / app_id / "manifest.json").read_text())


@pytest.fixture(scope="session")
def app_engine():  # type: ignore[no-untyped-def]
    client = docker.from_env()
    yield client
    client.close()


def _build(client: docker.DockerClient, app_id: str) -> str:
    tag = f"cure-test-{app_id.replace('_', '-')}:latest"
    context = build_context(APPS_DIR / app_id)
    # Host network for the build only (apt-get); the apps themselves run without any network.
    client.images.build(
        fileobj=io.BytesIO(context), custom_context=True, tag=tag, network_mode="host", rm=True
    )
    return tag


@pytest.fixture(scope="session")
def suhi_image(app_engine) -> str:  # type: ignore[no-untyped-def]
    return _build(app_engine, "suhi")


@pytest.fixture(scope="session")
def urban_green_image(app_engine) -> str:  # type: ignore[no-untyped-def]
    return _build(app_engine, "urban_green")


@pytest.fixture(scope="session")
def flood_image(app_engine) -> str:  # type: ignore[no-untyped-def]
    return _build(app_engine, "flood_susceptibility")


@pytest.fixture(scope="session")
def heat_exposure_image(app_engine) -> str:  # type: ignore[no-untyped-def]
    return _build(app_engine, "heat_exposure")


@pytest.fixture(scope="session")
def air_quality_image(app_engine) -> str:  # type: ignore[no-untyped-def]
    return _build(app_engine, "air_quality")


def _job_archive(job: dict[str, Any], files: dict[str, Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directories = {"inputs", "work", "outputs"}
        for name in files:
            parts = Path(name).parts
            directories.update("/".join(parts[:i]) for i in range(1, len(parts)))
        for name in sorted(directories):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.uid = info.gid = APP_UID
            tar.addfile(info)
        entries = {"params.json": json.dumps(job).encode()}
        entries.update({name: path.read_bytes() for name, path in files.items()})
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o444
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def run_app(
    client: docker.DockerClient,
    image: str,
    app_id: str,
    *,
    job: dict[str, Any],
    files: dict[str, Path],
    out_dir: Path,
    args: list[str] | None = None,
) -> AppRun:
    """Run the app as the worker would: no network, read-only root, uid 65534, no capabilities,
    the manifest's memory/CPU/pids limits, /tmp a small noexec tmpfs. files go under /job."""
    limits = manifest(app_id)["limits"]
    memory = f"{limits['memory_mb']}m"
    volume = client.volumes.create(labels={"cure.role": "app-test"})
    container = None
    try:
        container = client.containers.create(
            image,
            command=args or [],
            detach=True,
            network_mode="none",
            read_only=True,
            user=f"{APP_UID}:{APP_UID}",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=memory,
            memswap_limit=memory,
            nano_cpus=int(limits["cpus"] * 1e9),
            pids_limit=limits["pids"],
            tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},
            volumes={volume.name: {"bind": "/job", "mode": "rw"}},
            working_dir="/job",
        )
        container.put_archive("/job", _job_archive(job, files))
        container.start()
        exit_code = int(container.wait(timeout=120)["StatusCode"])
        stdout = container.logs(stdout=True, stderr=False).decode().splitlines()
        stderr = container.logs(stdout=False, stderr=True).decode().splitlines()
        outputs: dict[str, Path] = {}
        stream, _ = container.get_archive("/job/outputs")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            for member in tar.getmembers():
                extracted = tar.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    path = out_dir / Path(member.name).name
                    path.write_bytes(extracted.read())
                    outputs[path.name] = path
        return AppRun(exit_code, stdout, stderr, outputs)
    finally:
        if container is not None:
            container.remove(force=True)
        volume.remove(force=True)


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str,
    transform: Affine,
    nodata: float | None = None,
    scale: float | None = None,
    offset: float | None = None,
) -> Path:
    """A single-band GeoTIFF of data (its dtype kept), with scale/offset metadata when given."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(data, 1)
        if scale is not None or offset is not None:
            dst.scales = (scale if scale is not None else 1.0,)
            dst.offsets = (offset if offset is not None else 0.0,)
    return path


def lonlat_polygon(crs: str, points: list[tuple[float, float]]) -> dict[str, Any]:
    """A GeoJSON Polygon in WGS84 whose vertices are the given points of crs (ring closed)."""
    xs, ys = transform_points(crs, "EPSG:4326", [p[0] for p in points], [p[1] for p in points])
    ring = [[x, y] for x, y in zip(xs, ys, strict=True)]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def snapped_origin(crs: str, lon: float, lat: float, step: float) -> tuple[float, float]:
    """lon/lat in crs, rounded to a multiple of step: a tidy grid origin."""
    (x,), (y,) = transform_points("EPSG:4326", crs, [lon], [lat])
    return round(x / step) * step, round(y / step) * step


def job_document(
    app_id: str,
    roi: dict[str, Any],
    inputs: dict[str, list[dict[str, Any]]],
    params: dict[str, Any],
) -> dict[str, Any]:
    return {
        "order_id": str(uuid.uuid4()),
        "app_id": app_id,
        "roi": roi,
        "start_date": "2024-07-15",
        "end_date": "2024-07-15",
        "params": params,
        "inputs": inputs,
    }


def product(
    collection: str | None, identifier: str, assets: dict[str, str], **described: Any
) -> dict[str, Any]:
    """A product as params.json describes it; ``described`` adds fields such as ``values``
    (per asset key: scale, offset, nodata), ``properties``, ``source`` and ``cloud_cover``."""
    return {
        "collection": collection,
        "identifier": identifier,
        "start": "2024-07-15T10:00:00Z",
        "end": "2024-07-15T10:03:00Z",
        "assets": assets,
        **described,
    }


def assert_cog(path: Path) -> None:
    """A valid Cloud-Optimized GeoTIFF with at least one internal overview."""
    from rio_cogeo.cogeo import cog_validate

    valid, errors, _warnings = cog_validate(str(path), quiet=True)
    assert valid and not errors, errors
    with rasterio.open(path) as src:
        assert src.overviews(1), "no internal overviews"
        assert src.profile.get("tiled")
