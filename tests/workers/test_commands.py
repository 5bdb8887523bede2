"""`cure apps try` runs an app image on local files the way the worker does."""

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from cure.demo.rasters import city_by_name, generate

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2024, 7, 15)


def try_suhi(inputs: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cure",
            "apps",
            "try",
            "suhi",
            "--inputs",
            str(inputs),
            "--start",
            DAY.isoformat(),
            "--out",
            str(out),
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_apps_try_runs_suhi_on_local_files(tmp_path) -> None:
    products = generate(tmp_path / "demo", [city_by_name("Vienna")], [DAY])
    inputs = tmp_path / "inputs"
    for product in products:
        role = {"SL_2_LST": "lst", "IMD": "imperviousness"}.get(product.product_type)
        if role is None:
            continue
        (inputs / role).mkdir(parents=True)
        for key, path in product.assets.items():
            (inputs / role / f"{key}.tif").symlink_to(path)
    done = try_suhi(inputs, tmp_path / "out", "--params", '{"urban_threshold": 40}')
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout and "CURE_PROGRESS 70 computing" in done.stdout
    statistics = json.loads((tmp_path / "out" / "statistics.json").read_text())
    assert statistics["urban_threshold_percent"] == 40  # the parameter reached the app
    assert (tmp_path / "out" / "suhi_intensity.tif").stat().st_size > 0

    # a region the inputs do not cover: INVALID, exit 3, with the app's reason
    far = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    invalid = try_suhi(inputs, tmp_path / "out2", "--roi", json.dumps(far))
    assert invalid.returncode == 3, invalid.stdout + invalid.stderr
    assert "INVALID" in invalid.stdout

    # bad parameters are refused before anything runs
    refused = try_suhi(inputs, tmp_path / "out3", "--params", '{"urban_threshold": 500}')
    assert refused.returncode != 0
    assert "urban_threshold" in refused.stderr + refused.stdout


def test_apps_try_runs_a_workflow_step_by_step(tmp_path, engine) -> None:
    from tests.conftest import write_apps_dir

    apps = write_apps_dir(tmp_path, workflow=True)
    roi = {"type": "Polygon", "coordinates": [[[16, 48], [16.1, 48], [16.1, 48.1], [16, 48]]]}

    def try_flow(out: Path, params: dict) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "cure",
                "apps",
                "try",
                "probe_flow",
                "--start",
                "2024-07-15",
                "--roi",
                json.dumps(roi),
                "--params",
                json.dumps(params),
                "--out",
                str(out),
            ],
            cwd=ROOT,
            env={**os.environ, "CURE_APPS_DIR": str(apps)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = try_flow(tmp_path / "out", {})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "step prepare: done" in done.stdout and "  finish | step finish runs" in done.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["work"]["left.txt"] == "prepared then left"

    failed = try_flow(tmp_path / "out2", {"fail_step": "right"})
    assert failed.returncode == 1
    assert "FAILED: step right exited with code 7: step right broke" in failed.stdout
