"""App containers on the real Docker engine: hardened, bounded in time, always removed."""

import json
import tempfile
import uuid
from pathlib import Path

from cure.containers.engine import ContainerLimits, run_hardened
from tests.conftest import PROBE_IMAGE, PROBE_MANIFEST

LIMITS = ContainerLimits(
    memory_mb=96, cpus=0.5, pids=32, timeout_seconds=20, max_output_bytes=1024 * 1024
)


def run(engine, limits: ContainerLimits = LIMITS, **params):
    order_id = str(uuid.uuid4())
    job = {"order_id": order_id, "params": params}
    with tempfile.TemporaryDirectory() as work_dir:
        outcome = run_hardened(
            engine,
            image=PROBE_IMAGE,
            labels={"cure.order_id": order_id},
            job=job,
            limits=limits,
            work_dir=Path(work_dir),
        )
        # what the run wrote, read before its work folder goes
        outcome.outputs = {name: path.read_bytes() for name, path in outcome.outputs.items()}
    return order_id, outcome


def assert_removed(engine, order_id: str) -> None:
    label = {"label": f"cure.order_id={order_id}"}
    assert engine.containers.list(all=True, ignore_removed=True, filters=label) == []
    assert engine.volumes.list(filters=label) == []


def test_container_is_hardened(engine) -> None:
    order_id, outcome = run(engine, mode="report", answer=42)
    assert outcome.exit_code == 0, outcome.logs
    report = json.loads(outcome.outputs["report.json"])
    assert report["params"] == {"mode": "report", "answer": 42}
    assert (report["uid"], report["gid"]) == (65534, 65534)
    assert int(report["cap_eff"], 16) == 0
    assert report["no_new_privs"] == "1"
    assert report["root_writable"] is False
    assert report["tmp_writable"] is True
    assert report["interfaces"] == ["lo"]
    assert report["routes"] == []
    if report["memory_max"] is not None:
        assert int(report["memory_max"]) == 96 * 1024 * 1024
    if report["pids_max"] is not None:
        assert int(report["pids_max"]) == 32
    assert "probe ran" in outcome.logs
    assert_removed(engine, order_id)


def test_timeout_kills_and_removes(engine) -> None:
    limits = ContainerLimits(
        memory_mb=96, cpus=0.5, pids=32, timeout_seconds=2, max_output_bytes=1024
    )
    order_id, outcome = run(engine, limits, mode="sleep")
    assert outcome.timed_out
    assert outcome.outputs == {}
    assert_removed(engine, order_id)


def test_exit_codes_and_logs_are_reported(engine) -> None:
    order_id, invalid = run(engine, mode="invalid")
    assert invalid.exit_code == 3
    assert "no product for this date" in invalid.logs
    assert_removed(engine, order_id)
    order_id, crashed = run(engine, mode="crash")
    assert crashed.exit_code == 7
    assert crashed.errors == ["something broke"]
    assert set(crashed.logs) == {"probe ran", "something broke"}
    assert_removed(engine, order_id)


def test_output_over_the_limit_is_refused(engine) -> None:
    limits = ContainerLimits(
        memory_mb=96, cpus=0.5, pids=32, timeout_seconds=20, max_output_bytes=10
    )
    order_id, outcome = run(engine, limits, mode="report", padding="x" * 2_000_000)
    assert outcome.exit_code == 0
    assert outcome.output_error and "output limit of 10 bytes" in outcome.output_error
    assert_removed(engine, order_id)


FLOOD = (
    "import sys, time\n"
    "line = 'x' * 3000 + '\\n'\n"
    "for _ in range(1200):\n"  # about 3.6 MB, one line of it far longer than any kept
    "    sys.stderr.write(line)\n"
    "sys.stderr.flush()\n"
    "time.sleep(60)\n"
)


def run_python(engine, code: str, limits: ContainerLimits):  # type: ignore[no-untyped-def]
    order_id = str(uuid.uuid4())
    with tempfile.TemporaryDirectory() as work_dir:
        outcome = run_hardened(
            engine,
            image="debian:bookworm-slim",  # the base image, python3 included
            labels={"cure.order_id": order_id},
            job={"order_id": order_id, "params": {}},
            limits=limits,
            work_dir=Path(work_dir),
            command=["python3", "-c", code],
        )
    return order_id, outcome


def test_an_app_flooding_its_log_is_stopped_and_fails_naming_the_limit(engine) -> None:
    from cure.apps.registry import App
    from cure.apps.schemas import AppManifest
    from cure.workers.pipeline import judge

    limits = ContainerLimits(
        memory_mb=96,
        cpus=0.5,
        pids=32,
        timeout_seconds=30,
        max_output_bytes=1024 * 1024,
        max_log_bytes=1024 * 1024,
    )
    order_id, outcome = run_python(engine, FLOOD, limits)
    # Stopped for its log, not by its time limit of 30 s (which ends its 60 s sleep otherwise)
    assert outcome.log_error == (
        "the app wrote more than its log limit of 1 MiB to stdout and stderr (limits.max_log_mb)"
    )
    assert not outcome.stopped and not outcome.timed_out
    assert len(outcome.logs) <= 500 and all(len(line) <= 2000 for line in outcome.logs)
    assert_removed(engine, order_id)
    manifest = AppManifest.model_validate({**PROBE_MANIFEST, "limits": {"max_log_mb": 1}})
    app = App(manifest, Path("."))
    assert judge(app, outcome, limits) == ("FAILED", outcome.log_error)


def test_outputs_over_the_limit_fail_naming_the_limit(engine) -> None:
    write = "open('/job/outputs/big.bin', 'wb').write(b'0' * (3 * 1024 * 1024))"
    limits = ContainerLimits(
        memory_mb=96, cpus=0.5, pids=32, timeout_seconds=20, max_output_bytes=1024 * 1024
    )
    order_id, outcome = run_python(engine, write, limits)
    assert outcome.exit_code == 0
    assert outcome.output_error == (
        "the app's outputs exceed its output limit of 1 MiB (limits.max_output_mb)"
    )
    assert_removed(engine, order_id)
