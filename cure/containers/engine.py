"""The Docker implementation of the container runner (``DockerRunner``): runs one container,
hardened, through the Docker SDK (synchronous: call it in a thread), and finds or removes
containers by label. It knows nothing about orders: callers name the labels that identify a run.

Data moves with the archive API (put_archive / get_archive) into a volume mounted at /job, so it
works against a remote engine and with the worker itself in a container.
"""

import contextlib
import io
import json
import logging
import shutil
import tarfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.types import LogConfig

from cure.containers.runner import (
    MIB,
    ContainerControl,
    ContainerLimits,
    ContainerOutcome,
    EngineUnavailable,
    ImageMissing,
    NoControl,
    OutputLine,
)

log = logging.getLogger(__name__)

APP_UID = 65534


LINE_CHARS = 2000  # a captured log line is cut at this many characters
TAIL_LINES = 500  # how many of the last lines are kept for the order's log and reason


class OutputTooLarge(Exception):
    pass


def _mib(size: int) -> str:
    return f"{size // MIB} MiB" if size % MIB == 0 else f"{size} bytes"


def output_limit_reason(limit: int) -> str:
    return f"the app's outputs exceed its output limit of {_mib(limit)} (limits.max_output_mb)"


def log_limit_reason(limit: int) -> str:
    return (
        f"the app wrote more than its log limit of {_mib(limit)} to stdout and stderr "
        "(limits.max_log_mb)"
    )


def _job_archive(job: dict[str, Any]) -> bytes:
    """The job folder's skeleton and params.json. /job/inputs is root's (the staged inputs are
    read only to the app); work/ (a workflow's steps share it) and outputs/ are the app's."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, owner in (("inputs", 0), ("work", APP_UID), ("outputs", APP_UID)):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.uid = info.gid = owner
            tar.addfile(info)
        data = json.dumps(job).encode()
        info = tarfile.TarInfo("params.json")
        info.size = len(data)
        info.mode = 0o444
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _read_outputs(container: Container, limit: int, into: Path) -> dict[str, Path]:
    """Stream /job/outputs out of the container to disk, then unpack its regular files into
    ``into``: never whole in memory, and no more than ``limit`` bytes."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into.with_name(into.name + ".tar")
    outputs: dict[str, Path] = {}
    try:
        stream, _ = container.get_archive("/job/outputs")
        written = 0
        with archive.open("wb") as sink:
            for chunk in stream:
                written += len(chunk)
                if written > limit + 1024 * 1024:  # tar headers add a little
                    raise OutputTooLarge(output_limit_reason(limit))
                sink.write(chunk)
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = member.name.split("/", 1)[1] if "/" in member.name else ""
                # Only plain files directly in outputs/, under their own (checked) names.
                if not member.isfile() or not name or "/" in name or name.startswith("."):
                    continue
                extracted = tar.extractfile(member)
                if extracted is None:
                    continue
                target = into / name
                with extracted, target.open("wb") as out:
                    shutil.copyfileobj(extracted, out, 1 << 20)
                outputs[name] = target
    finally:
        archive.unlink(missing_ok=True)
    return outputs


def inputs_archive(files: dict[str, Path], into: Path) -> Path:
    """A tar at ``into`` holding each file under its name in ``files`` (relative to /job), read
    by the app's user and owned by root, so no app changes them; written from disk, so it never
    sits in memory."""
    directories = sorted({str(Path(name).parent) for name in files} - {"."})
    with tarfile.open(into, "w") as tar:
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.uid = info.gid = 0
            tar.addfile(info)
        for name, path in sorted(files.items()):
            info = tar.gettarinfo(str(path.resolve()), arcname=name)  # a file, never a link
            info.mode = 0o444
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with path.open("rb") as source:
                tar.addfile(info, source)
    return into


def docker_client(base_url: str | None, *, timeout: float = 60) -> docker.DockerClient:
    """The configured engine, or the environment's (DOCKER_HOST or the local socket); every call
    gives up after ``timeout`` seconds."""
    if base_url:
        return docker.DockerClient(base_url=base_url, timeout=int(timeout))
    return docker.from_env(timeout=int(timeout))


def _selector(labels: dict[str, str]) -> dict[str, list[str]]:
    return {"label": [f"{key}={value}" for key, value in labels.items()]}


def labelled(client: docker.DockerClient, within: dict[str, str]) -> list[dict[str, str]]:
    """The labels of every container (running or not) that carries all of ``within``. One
    removed between the listing and its inspection (a run's own clean-up, another sweeper) is
    left out, not an error."""
    containers = client.containers.list(all=True, filters=_selector(within), ignore_removed=True)
    return [dict(c.labels) for c in containers]


def remove_labelled(client: docker.DockerClient, labels: dict[str, str]) -> int:
    """Remove every container and volume carrying all of ``labels``; returns the containers."""
    removed = 0
    selector = _selector(labels)
    for container in client.containers.list(all=True, filters=selector, ignore_removed=True):
        try:
            container.remove(force=True)
        except NotFound:
            continue  # removed meanwhile by another clean-up: what was wanted
        removed += 1
    for volume in client.volumes.list(filters=selector):
        volume.remove(force=True)
    return removed


def _create_hardened(
    client: docker.DockerClient,
    image: str,
    *,
    labels: dict[str, str],
    limits: ContainerLimits,
    volume: str,
    command: list[str] | None = None,
) -> Container:
    """A container of ``image`` as every app container is made: no network, a read-only root,
    an unprivileged user without capabilities, its limits, and the job volume at /job."""
    memory = f"{limits.memory_mb}m"
    return client.containers.create(
        image,
        command=command or [],
        detach=True,
        labels=labels,
        network_mode="none",
        read_only=True,
        user=f"{APP_UID}:{APP_UID}",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        mem_limit=memory,
        memswap_limit=memory,
        nano_cpus=int(limits.cpus * 1e9),
        pids_limit=limits.pids,
        tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},  # noqa: S108 (inside the container)
        volumes={volume: {"bind": "/job", "mode": "rw"}},
        working_dir="/job",
        # Python apps: log lines arrive in the order they were written, stdout and stderr alike.
        environment={"PYTHONUNBUFFERED": "1"},
        # The engine keeps at most a few times the app's log limit on its disk, and at least
        # enough that a flood between two reads still shows more than the limit.
        log_config=LogConfig(
            type=LogConfig.types.JSON,
            config={"max-size": str(2 * max(limits.max_log_bytes, MIB)), "max-file": "2"},
        ),
    )


def _start_and_watch(
    container: Container, limits: ContainerLimits, control: ContainerControl
) -> ContainerOutcome:
    """Start a created container (unless ``control`` is no longer ready) and supervise it to
    its end: its exit, its last log lines, and whether it was stopped or timed out."""
    if not control.ready():  # e.g. the order was cancelled while its inputs were staged
        return ContainerOutcome(exit_code=None, timed_out=False, logs=[], stopped=True)
    container.start()
    cursor = _LogCursor(limits.max_log_bytes)
    exit_code, timed_out, stopped = _supervise(container, limits, control, cursor)
    try:
        # Only the last lines, each cut short: never the whole of what an app printed.
        logs = _tail(container, stdout=True, lines=TAIL_LINES)
        errors = _tail(container, stdout=False, lines=100)
    except NotFound:  # removed under us: it ran for someone else, or was swept
        return ContainerOutcome(exit_code=None, timed_out=False, logs=[], stopped=True)
    outcome = ContainerOutcome(
        exit_code=exit_code,
        timed_out=timed_out,
        stopped=stopped and not cursor.overflowed,
        logs=logs,
        errors=errors,
    )
    if cursor.overflowed:
        outcome.log_error = log_limit_reason(limits.max_log_bytes)
    return outcome


def _collect(container: Container, outcome: ContainerOutcome, limit: int, into: Path) -> None:
    """The outputs of a successful run into ``outcome``, or the reason they cannot be had."""
    try:
        outcome.outputs = _read_outputs(container, limit, into)
    except OutputTooLarge as exc:
        outcome.output_error = str(exc)
    except tarfile.TarError as exc:
        outcome.output_error = f"the app's outputs could not be read: {exc}"


def run_hardened(
    client: docker.DockerClient,
    *,
    image: str,
    labels: dict[str, str],
    job: dict[str, Any],
    limits: ContainerLimits,
    work_dir: Path,
    control: ContainerControl | None = None,
    command: list[str] | None = None,
    inputs: Path | None = None,
    supersedes: dict[str, str] | None = None,
) -> ContainerOutcome:
    """Run ``image`` once with ``job`` as /job/params.json, ``command`` as its arguments and the
    tar ``inputs`` unpacked into /job; outputs land in ``work_dir``/outputs. ``labels`` name the
    run; containers left under ``supersedes`` (default: the same labels) are removed first."""
    control = control or NoControl()
    remove_labelled(client, supersedes or labels)
    labels = {**labels, "cure.role": "app-run"}
    volume = client.volumes.create(labels=labels)
    container: Container | None = None
    try:
        container = _create_hardened(
            client, image, labels=labels, limits=limits, volume=volume.name, command=command
        )
        container.put_archive("/job", _job_archive(job))
        if inputs is not None:
            with inputs.open("rb") as archive:
                container.put_archive("/job", archive)  # streamed from disk
        outcome = _start_and_watch(container, limits, control)
        if outcome.exit_code == 0 and not outcome.log_error and not outcome.stopped:
            _collect(container, outcome, limits.max_output_bytes, work_dir / "outputs")
        return outcome
    finally:
        if container is not None:
            _quietly(container.remove, force=True)
        _quietly(volume.remove, force=True)


STEP_LABEL = "cure.step"  # which step of a workflow a container runs


class DockerJob:
    """A workflow run's job volume on the engine (``cure.containers.runner.Job``): made and
    filled once, shared by the containers of its steps, removed with everything on it by
    ``close``. A holder container that never starts carries the volume for filling and for
    reading the outputs, so steps may run in any order, several at once (from threads)."""

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        image: str,
        labels: dict[str, str],
        job: dict[str, Any],
        inputs: Path | None,
        supersedes: dict[str, str] | None,
    ) -> None:
        self.client = client
        remove_labelled(client, supersedes or labels)
        self.labels = {**labels, "cure.role": "app-run"}
        self.volume = client.volumes.create(labels=self.labels)
        self.holder: Container | None = None
        self.steps: list[Container] = []
        self.closed = False
        self.lock = threading.Lock()  # no step's container is made once the job is closed
        try:
            self.holder = _create_hardened(
                client,
                image,
                labels={**self.labels, STEP_LABEL: ""},
                limits=ContainerLimits(
                    memory_mb=16, cpus=0.1, pids=1, timeout_seconds=1, max_output_bytes=0
                ),
                volume=self.volume.name,
            )
            self.holder.put_archive("/job", _job_archive(job))
            if inputs is not None:
                with inputs.open("rb") as archive:
                    self.holder.put_archive("/job", archive)  # streamed from disk
        except BaseException:
            self.close()
            raise

    def run_step(
        self,
        *,
        step: str,
        image: str,
        limits: ContainerLimits,
        control: ContainerControl | None = None,
        command: list[str] | None = None,
    ) -> ContainerOutcome:
        with self.lock:
            if self.closed:  # the run ended meanwhile (cancelled): nothing starts on its folder
                return ContainerOutcome(exit_code=None, timed_out=False, logs=[], stopped=True)
            try:
                container = _create_hardened(
                    self.client,
                    image,
                    labels={**self.labels, STEP_LABEL: step},
                    limits=limits,
                    volume=self.volume.name,
                    command=command,
                )
            except ImageNotFound as exc:
                raise ImageMissing(image) from exc
            self.steps.append(container)
        try:
            return _start_and_watch(container, limits, control or NoControl())
        finally:
            _quietly(container.remove, force=True)

    def collect(self, limit: int, into: Path) -> ContainerOutcome:
        """The files in /job/outputs once the steps are done (as a successful outcome's)."""
        assert self.holder is not None
        outcome = ContainerOutcome(exit_code=0, timed_out=False, logs=[])
        _collect(self.holder, outcome, limit, into)
        return outcome

    def close(self) -> None:
        with self.lock:
            self.closed = True
        for container in [*self.steps, self.holder]:
            if container is not None:
                _quietly(container.remove, force=True)
        _quietly(self.volume.remove, force=True)


def _from_a_connection(exc: BaseException) -> bool:
    """Whether a connection that failed (an OSError, as requests' errors are) caused ``exc``."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def _staged(image: str, files: dict[str, Path] | None, work_dir: Path) -> Iterator[Path | None]:
    """The inputs as one tar in ``work_dir`` for as long as a run is set up (None: no inputs);
    an image the engine does not have is ImageMissing."""
    inputs = inputs_archive(files, work_dir / "inputs.tar") if files else None
    try:
        yield inputs
    except ImageNotFound as exc:
        raise ImageMissing(image) from exc
    finally:
        if inputs is not None:
            inputs.unlink(missing_ok=True)


class DockerRunner:
    """The container runner (``cure.containers.runner.ContainerRunner``) on a Docker engine."""

    def __init__(self, base_url: str | None, *, timeout: float = 60) -> None:
        try:
            self.client = docker_client(base_url, timeout=timeout)
        except DockerException as exc:
            # The SDK asks the engine its API version as the client is made; an engine that is
            # away then raises DockerException, which is no OSError: say it is an outage (and
            # only then: a wrong docker_url stays the configuration error it is).
            if not _from_a_connection(exc):
                raise
            raise EngineUnavailable(f"the Docker engine does not answer: {exc}") from exc

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
        with _staged(image, files, work_dir) as inputs:
            return run_hardened(
                self.client,
                image=image,
                labels=labels,
                job=job,
                limits=limits,
                work_dir=work_dir,
                control=control,
                command=command,
                inputs=inputs,
                supersedes=supersedes,
            )

    def open_job(
        self,
        *,
        image: str,
        labels: dict[str, str],
        job: dict[str, Any],
        work_dir: Path,
        files: dict[str, Path] | None = None,
        supersedes: dict[str, str] | None = None,
    ) -> DockerJob:
        with _staged(image, files, work_dir) as inputs:
            return DockerJob(
                self.client,
                image=image,
                labels=labels,
                job=job,
                inputs=inputs,
                supersedes=supersedes,
            )

    def labelled(self, within: dict[str, str]) -> list[dict[str, str]]:
        return labelled(self.client, within)

    def remove(self, labels: dict[str, str]) -> int:
        return remove_labelled(self.client, labels)

    def build_image(self, context: bytes, *, tag: str, no_cache: bool = False) -> str:
        # Host network only for the build: it may install packages. Apps run with none.
        image, _ = self.client.images.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            tag=tag,
            network_mode="host",
            rm=True,
            nocache=no_cache,
        )
        return str(image.short_id)

    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self.client.close()


def _tail(container: Container, *, stdout: bool, lines: int) -> list[str]:
    raw = container.logs(stdout=stdout, stderr=True, tail=lines)
    return [line[:LINE_CHARS] for line in raw.decode(errors="replace").splitlines()]


def _supervise(
    container: Container, limits: ContainerLimits, control: ContainerControl, cursor: "_LogCursor"
) -> tuple[int | None, bool, bool]:
    """Wait for the app: (exit code, timed out, stopped). Kills it past its time, on request,
    or once it has written more log than its limit (``cursor.overflowed``)."""
    deadline = time.monotonic() + limits.timeout_seconds
    while True:
        try:
            exit_code = int(container.wait(timeout=1)["StatusCode"])
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            exit_code = None
        except NotFound:  # removed under us (an operator, or a sweep): nothing left to wait for
            return None, False, True
        if exit_code is not None:
            _drain(container, cursor, control)
            return (None, False, True) if cursor.overflowed else (exit_code, False, False)
        stop = control.tick(cursor.new_lines(container)) or cursor.overflowed
        if stop or time.monotonic() > deadline:
            container.kill()
            container.wait(timeout=30)
            _drain(container, cursor, control)
            return None, not stop, stop


def _drain(container: Container, cursor: "_LogCursor", control: ContainerControl) -> None:
    """Hand over the app's last lines. The engine copies a container's output to its log a
    moment after the process ends, so read until two reads in a row bring nothing new (at most
    about a second), or a line written just before exit could be missed."""
    quiet = 0
    deadline = time.monotonic() + 1.0
    try:
        while quiet < 2 and time.monotonic() < deadline:
            lines = cursor.new_lines(container)
            quiet = 0 if lines else quiet + 1
            handed = time.monotonic()
            control.drain(lines)
            deadline += time.monotonic() - handed  # the control's time (it may publish) is its own
            if quiet == 1:  # after the second quiet read there is nothing left to wait for
                time.sleep(0.1)
    except NotFound:
        pass


class _LogCursor:
    """Reads only the output lines written since the last read, stdout and stderr apart, merges
    them in the order written, and counts what the app wrote.

    Docker's ``since`` counts whole seconds, so the lines of the last second come back again;
    their timestamped text (nanoseconds) tells which were read already. A read stops at the
    bytes left of the limit, so no read holds more than the limit in memory.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.written = 0  # bytes of new log lines seen so far
        self.second = 0
        self.seen: set[tuple[str, str]] = set()

    @property
    def overflowed(self) -> bool:
        return self.written > self.limit

    def _read(self, container: Container, stream: str, since: dict[str, int], budget: int) -> str:
        """One stream's entries since ``since``, read no further than ``budget`` bytes."""
        chunks = container.logs(
            stdout=stream == "stdout",
            stderr=stream == "stderr",
            timestamps=True,
            stream=True,
            follow=False,
            **since,
        )
        raw = bytearray()
        try:
            for chunk in chunks:
                raw += chunk
                if len(raw) > budget:
                    break
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return raw.decode(errors="replace")

    def new_lines(self, container: Container) -> list[OutputLine]:
        if self.overflowed:
            return []
        since = {"since": self.second} if self.second else {}  # the API refuses since=0
        budget = self.limit - self.written + 2 * LINE_CHARS
        stamped: list[tuple[str, str, OutputLine]] = []
        for stream in ("stdout", "stderr"):
            for entry in self._read(container, stream, since, budget).splitlines():
                if (stream, entry) in self.seen:
                    continue
                stamp, _, text = entry.partition(" ")
                self.written += len(entry.encode()) + 1  # as the engine gives it, time included
                stamped.append((stamp, entry, OutputLine(stream, text[:LINE_CHARS])))
        stamped.sort(key=lambda item: item[0])  # RFC 3339 with nanoseconds: sorts as text
        newest = max((_epoch_second(stamp) for stamp, _, _ in stamped), default=0)
        if newest > self.second:
            self.second = newest
            self.seen = {k for k in self.seen if _epoch_second(k[1].partition(" ")[0]) >= newest}
        for _, entry, line in stamped:
            self.seen.add((line.stream, entry))
        return [line for _, _, line in stamped]


def _epoch_second(stamp: str) -> int:
    try:
        return int(datetime.fromisoformat(stamp[:19] + "+00:00").timestamp())
    except ValueError:
        return 0


def _quietly(call: Any, **kwargs: Any) -> None:
    try:
        call(**kwargs)
    except NotFound:
        pass
    except APIError:
        log.exception("docker clean-up failed")
