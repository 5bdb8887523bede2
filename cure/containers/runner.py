"""The container runner: what the rest of CURE may ask of whatever runs app containers.

The pipeline, the sweeper, the image builder and the health check use this interface and these
types only; nothing outside ``cure.containers`` imports a container SDK (an import-linter contract
in pyproject.toml). The Docker engine is the one implementation today (``engine.DockerRunner``);
docs/scaling.md maps each method onto Kubernetes Jobs, the next backend.

A one-container app's run is one call, ``run``: it creates the container hardened and limited,
hands it its job and inputs, starts it, supervises it (the ``control`` sees its output about
once a second, sends heartbeats and stops it on cancel), collects its outputs and removes
everything it made. Runs are found and removed by their labels, which is all the sweeper needs.
A workflow's run opens a ``Job`` (``open_job``): a job folder its steps' containers share, each
run by ``run_step`` with the same hardening and supervision, the outputs collected at the end.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from cure.config import Settings

MIB = 1024 * 1024


@dataclass(frozen=True)
class ContainerLimits:
    memory_mb: int
    cpus: float
    pids: int
    timeout_seconds: int
    max_output_bytes: int
    max_log_bytes: int = 8 * MIB  # stdout and stderr together


class OutputLine(NamedTuple):
    stream: str  # "stdout" or "stderr"
    text: str


class ContainerControl(Protocol):
    def ready(self) -> bool:
        """Called right before the container starts; False: do not start it after all."""
        ...

    def tick(self, new_lines: list[OutputLine]) -> bool:
        """Called about once a second while the app runs, with its new output lines (in the
        order written); True stops it."""
        ...

    def drain(self, new_lines: list[OutputLine]) -> None:
        """Called once the app has ended (again while more arrive), with lines no call has seen."""
        ...


class NoControl:
    def ready(self) -> bool:
        return True

    def tick(self, new_lines: list[OutputLine]) -> bool:
        return False

    def drain(self, new_lines: list[OutputLine]) -> None:
        return None


@dataclass
class ContainerOutcome:
    exit_code: int | None
    timed_out: bool
    logs: list[str]
    stopped: bool = False  # stopped on request (the order was cancelled or handed on)
    errors: list[str] = field(default_factory=list)  # stderr alone: where apps give reasons
    outputs: dict[str, Path] = field(default_factory=dict)  # file name -> where it was put
    output_error: str | None = None
    log_error: str | None = None  # the app wrote more log than its limit (and was stopped)


class EngineUnavailable(ConnectionError):
    """The container engine did not answer when a runner was made: an outage, which a task
    waits out like any other connection that fails (it is an OSError)."""


class ImageMissing(Exception):
    """The app's image is not on the runner's engine (or in the registry its cluster pulls from)."""

    def __init__(self, image: str) -> None:
        super().__init__(f"the app image {image} is missing")
        self.image = image


class Job(Protocol):
    """A workflow run's job folder on the engine, shared by its steps' containers: /job/inputs
    (read only), /job/work and /job/outputs. Synchronous; ``run_step`` may be called from
    several threads at once. ``close`` removes the folder and every container of the job."""

    def run_step(
        self,
        *,
        step: str,
        image: str,
        limits: ContainerLimits,
        control: ContainerControl | None = None,
        command: list[str] | None = None,
    ) -> ContainerOutcome:
        """Run one step's container on the job folder to its end (its outputs stay in the
        folder); raises ImageMissing when ``image`` is not there."""
        ...

    def collect(self, limit: int, into: Path) -> ContainerOutcome:
        """The files the steps left in /job/outputs, at most ``limit`` bytes, put in ``into``."""
        ...

    def close(self) -> None: ...


class ContainerRunner(Protocol):
    """Runs app containers hardened, and finds and removes them by label. Synchronous: call it
    in a thread. One runner may serve several calls; ``close`` releases its connection. A call
    that loses the engine raises an OSError (the task waits such an outage out)."""

    def run(
        self,
        *,
        image: str,
        labels: dict[str, str],
        job: dict[str, Any],
        limits: ContainerLimits,
        work_dir: Path,
        control: ContainerControl | None = None,
        command: list[str] | None = None,
        files: dict[str, Path] | None = None,
        supersedes: dict[str, str] | None = None,
    ) -> ContainerOutcome:
        """Run ``image`` once with ``job`` as /job/params.json, ``command`` as its arguments and
        each of ``files`` under its name in /job (e.g. ``inputs/b04.tif``); outputs land in
        ``work_dir``/outputs. ``labels`` name the run; runs left under ``supersedes`` (default:
        the same labels) are removed first. Raises ImageMissing when the image is not there."""
        ...

    def open_job(
        self,
        *,
        image: str,
        labels: dict[str, str],
        job: dict[str, Any],
        work_dir: Path,
        files: dict[str, Path] | None = None,
        supersedes: dict[str, str] | None = None,
    ) -> Job:
        """A workflow's job folder holding ``job`` as /job/params.json and ``files`` as in
        ``run``, its containers labelled ``labels`` (after removing runs left under
        ``supersedes``); ``image`` carries the folder. The caller closes it."""
        ...

    def labelled(self, within: dict[str, str]) -> list[dict[str, str]]:
        """The labels of every run (running or not) that carries all of ``within``."""
        ...

    def remove(self, labels: dict[str, str]) -> int:
        """Remove every run carrying all of ``labels``, whatever it made; returns the runs."""
        ...

    def build_image(self, context: bytes, *, tag: str, no_cache: bool = False) -> str:
        """Build a tar build context into the image ``tag``; returns its short id."""
        ...

    def ping(self) -> None:
        """Raises unless the engine answers."""
        ...

    def close(self) -> None: ...


def open_runner(settings: Settings, *, timeout: float | None = None) -> ContainerRunner:
    """The deployment's runner: the Docker engine at ``docker_url`` (or the environment's), each
    call bounded by ``timeout`` (default ``docker_timeout_seconds``)."""
    from cure.containers.engine import DockerRunner  # the SDK loads only when a runner is made

    return DockerRunner(
        settings.docker_url,
        timeout=settings.docker_timeout_seconds if timeout is None else timeout,
    )
