"""`cure apps try`: run an app image on local inputs exactly the way the worker runs it."""

import json
import shutil
import tempfile
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from cure.apps import registry as app_registry
from cure.config import Settings
from cure.workers.pipeline import judge, limits_of, run_app


def _staged(inputs: Path | None) -> tuple[dict[str, Path], dict[str, list[dict[str, Any]]]]:
    """``inputs``/<role>/<asset file>: the files by their path under /job, and params.json's
    ``inputs`` (one product per role, its assets named after the files)."""
    files: dict[str, Path] = {}
    described: dict[str, list[dict[str, Any]]] = {}
    if inputs is None:
        return files, described
    for role_dir in sorted(p for p in inputs.iterdir() if p.is_dir()):
        assets = {}
        for path in sorted(p for p in role_dir.iterdir() if p.is_file()):
            name = f"inputs/{role_dir.name}/{path.name}"
            files[name] = path
            assets[path.stem] = name
        described[role_dir.name] = [
            {
                "collection": None,
                "identifier": role_dir.name,
                "start": None,
                "end": None,
                "assets": assets,
            }
        ]
    return files, described


def _region_of(files: dict[str, Path]) -> dict[str, Any]:
    """The bounds of the first input raster, in WGS84, as a GeoJSON Polygon."""
    import rasterio
    from rasterio.warp import transform_bounds

    for path in files.values():
        with rasterio.open(path) as dataset:
            west, south, east, north = transform_bounds(dataset.crs, "EPSG:4326", *dataset.bounds)
        ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
        return {"type": "Polygon", "coordinates": [ring]}
    raise ValueError("give --roi: there is no input raster to take a region from")


def try_app(
    settings: Settings,
    app_id: str,
    *,
    inputs: Path | None,
    params: dict[str, Any],
    roi: dict[str, Any] | None,
    start: date,
    end: date,
    out: Path,
) -> int:
    """Run the app once; print its log and what it wrote to ``out``. Returns an exit code: 0 on
    success, 3 for invalid input, 1 for any other failure."""
    app = app_registry.get_registry(settings).get(app_id)
    files, described = _staged(inputs)
    job = {
        "order_id": f"try-{uuid.uuid4()}",
        "app_id": app.id,
        "roi": roi or _region_of(files),
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "params": app.validate_params(params),
        "inputs": described,
    }
    with tempfile.TemporaryDirectory(prefix="cure-try-") as folder:
        outcome = run_app(
            settings,
            app,
            job=job,
            files=files,
            work_dir=Path(folder),
            labels={"cure.try": str(job["order_id"])},
        )
        for line in outcome.logs:
            print(f"  | {line}")
        failed = judge(app, outcome, limits_of(settings, app))
        if failed is not None:
            status, reason = failed
            print(f"{status}: {reason}")
            return 3 if status == "INVALID" else 1
        out.mkdir(parents=True, exist_ok=True)
        for name, path in sorted(outcome.outputs.items()):
            shutil.copyfile(path, out / name)
            print(f"wrote {out / name} ({path.stat().st_size} bytes)")
    print("SUCCESS")
    return 0


def read_json_argument(value: str) -> Any:
    """A JSON value given inline or as @file."""
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    return json.loads(text)
