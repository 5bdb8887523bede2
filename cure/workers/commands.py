"""`cure apps try`: run an app image on local inputs exactly the way the worker runs it."""

import asyncio
import json
import shutil
import tempfile
import threading
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from cure.apps import registry as app_registry
from cure.config import Settings
from cure.containers.runner import OutputLine
from cure.workers.pipeline import judge, limits_of, run_app, run_workflow, step_limits


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


class _PrintedSteps:
    """A workflow's steps as `cure apps try` shows them: each line as it comes, under its step."""

    def for_step(self, step: str, abort: threading.Event) -> "_PrintedStep":
        return _PrintedStep(step, abort)

    def step_done(self, step: str) -> None:
        print(f"step {step}: done")


class _PrintedStep:
    def __init__(self, step: str, abort: threading.Event) -> None:
        self.step = step
        self.abort = abort

    def ready(self) -> bool:
        if not self.abort.is_set():
            print(f"step {self.step}: starts")
        return not self.abort.is_set()

    def tick(self, new_lines: list[OutputLine]) -> bool:
        self.drain(new_lines)
        return self.abort.is_set()

    def drain(self, new_lines: list[OutputLine]) -> None:
        for line in new_lines:
            print(f"  {self.step} | {line.text}")


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
        labels = {"cure.try": str(job["order_id"])}
        step: str | None = None
        limits = limits_of(settings, app)
        if app.manifest.steps:
            outcome, step = asyncio.run(
                run_workflow(
                    settings,
                    app,
                    job=job,
                    files=files,
                    work_dir=Path(folder),
                    labels=labels,
                    watch=_PrintedSteps(),
                )
            )
            if step is not None:
                limits = step_limits(
                    settings, app, next(s for s in app.manifest.steps if s.name == step)
                )
        else:
            outcome = run_app(
                settings, app, job=job, files=files, work_dir=Path(folder), labels=labels
            )
            for line in outcome.logs:
                print(f"  | {line}")
        failed = judge(app, outcome, limits, step=step)
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
