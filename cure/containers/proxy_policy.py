"""What ``cure docker-proxy`` lets through, as pure functions over one request: the routes a run
needs, a strict reading of the request head and of JSON bodies, and the bodies the engine gets,
rebuilt from CURE's own template of an app run instead of the client's document.

The engine reads JSON keys case-insensitively and lets the last of two equal keys win, so a check
of the client's document can be read otherwise by the engine. Bodies with a repeated key (compared
case-insensitively) anywhere are refused, every key must be one the template knows, with exactly
the template's value where the template fixes one, and the engine gets a document written here.
"""

import json
import os
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from cure.containers.engine import APP_UID

JOB_DIR = "/job"  # the one directory of a run's container that archives may read or write
ROLE_LABEL, RUN_ROLE = "cure.role", "app-run"  # what run_hardened labels its objects with
LABEL_PREFIX = "cure."
MIN_API_VERSION = (1, 24)  # before 1.24 the engine applied a HostConfig sent with start
NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"  # a container or volume id, id prefix or name
MIB = 1024 * 1024
MAX_PIDS = 32768
MAX_LOG_FILES = 10
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z\-]+")
VERSION = re.compile(r"^/v(\d{1,3})\.(\d{1,3})(?=/)")
IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@\-]{0,254}")


class Refused(Exception):
    pass


Body = Literal["none", "container", "volume", "stream"]
Target = Literal["container", "volume"]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    params: frozenset[str]
    target: Target | None = None  # the object named in the path, checked to be a run's
    body: Body = "none"
    listing: bool = False  # the deployment's label filter is forced into ``filters``
    archive: bool = False  # ``path`` must lie under the job directory


def _route(method: str, path: str, *params: str, **options: Any) -> Route:
    return Route(method, re.compile(f"^{path}$"), frozenset(params), **options)


_CONTAINER = f"/containers/(?P<ref>{NAME})"
_VOLUME = f"/volumes/(?P<ref>{NAME})"
_LOGS = ("stdout", "stderr", "timestamps", "follow", "tail", "since", "until")
ROUTES = [
    _route("GET", "/_ping"),
    _route("HEAD", "/_ping"),
    _route("GET", "/version"),
    _route("POST", "/containers/create", body="container"),
    _route("GET", "/containers/json", "all", "limit", "size", "trunc_cmd", "filters", listing=True),
    _route("GET", f"{_CONTAINER}/json", "size", target="container"),
    _route("POST", f"{_CONTAINER}/start", target="container"),
    _route("POST", f"{_CONTAINER}/wait", "condition", target="container"),
    _route("POST", f"{_CONTAINER}/kill", "signal", target="container"),
    _route("POST", f"{_CONTAINER}/stop", "t", target="container"),
    _route("GET", f"{_CONTAINER}/logs", *_LOGS, target="container"),
    _route("GET", f"{_CONTAINER}/archive", "path", target="container", archive=True),
    _route("HEAD", f"{_CONTAINER}/archive", "path", target="container", archive=True),
    _route("PUT", f"{_CONTAINER}/archive", "path", target="container", archive=True, body="stream"),
    _route("DELETE", _CONTAINER, "v", "force", "link", target="container"),
    _route("POST", "/volumes/create", body="volume"),
    _route("GET", "/volumes", "filters", listing=True),
    _route("GET", _VOLUME, target="volume"),
    _route("DELETE", _VOLUME, "force", target="volume"),
    # No image calls: a run never inspects one (create answers 404 for a missing image), and an
    # image's configuration (its Env included) is none of a worker's business.
]


@dataclass
class Request:
    method: str
    version: str  # "/v1.41", or "" for the engine's own
    path: str
    params: dict[str, str]
    headers: dict[str, str]  # lower-case names


def parse_head(head: bytes) -> Request:
    """The request line and headers, read strictly: whatever the engine could read otherwise
    (a repeated header, a control character, a target that is not a plain path) is refused."""
    try:
        lines = head.decode("ascii").removesuffix("\r\n\r\n").split("\r\n")
    except UnicodeDecodeError as exc:
        raise Refused("the request head must be ASCII") from exc
    if any(ord(c) < 32 and c != "\t" or c == "\x7f" for line in lines for c in line):
        raise Refused("control characters in the request head")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise Refused("not an HTTP/1.1 request line")
    method, target, _ = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not TOKEN.fullmatch(name) or name.lower() in headers:
            raise Refused(f"a malformed or repeated header: {name[:40]!r}")
        headers[name.lower()] = value.strip(" \t")
    if "upgrade" in headers:
        raise Refused("connection upgrades (attach) are not allowed")
    if not target.startswith("/") or target.startswith("//"):
        raise Refused("the request target must be a path")
    split = urlsplit(target)
    version, path = _versioned(split.path)
    return Request(method, version, path, _query(split.query), headers)


def _versioned(path: str) -> tuple[str, str]:
    match = VERSION.match(path)
    if match is None:
        return "", path
    if (int(match[1]), int(match[2])) < MIN_API_VERSION:
        raise Refused("API versions before 1.24 are not served")
    return match[0], path[match.end() :]


def _query(query: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict", max_num_fields=32)
    except ValueError as exc:
        raise Refused("a malformed query string") from exc
    params = dict(pairs)
    if len(params) != len(pairs):
        raise Refused("a query parameter is repeated")
    return params


def route_of(request: Request) -> tuple[Route, re.Match[str]]:
    """The route a request takes; Refused unless it is a call an app run makes."""
    for route in ROUTES:
        match = route.pattern.match(request.path)
        if match and route.method == request.method:
            unknown = sorted(set(request.params) - route.params)
            if unknown:
                raise Refused(f"query parameters a run never sends: {', '.join(unknown)}")
            # docker-py sends link=False with every remove; a true one removes a link instead
            if request.params.pop("link", "").lower() not in ("", "0", "no", "false", "none"):
                raise Refused("removing links is not a call an app run needs")
            return route, match
    raise Refused(f"{request.method} {request.path} is not a call an app run needs")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        folded = key.casefold()
        if folded in seen:
            raise Refused(f"the key {key!r} is repeated (keys compare case-insensitively)")
        seen.add(folded)
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise Refused(f"{name} is not JSON")


def strict_json(text: str | bytes) -> Any:
    """JSON as the engine would read it, or Refused: no repeated or case-variant keys, no NaN."""
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise Refused("the request body is not a JSON document") from exc


def _same(value: Any, expected: Any) -> bool:
    """Equal and of the same JSON types (in Python, True == 1 and 0 == False)."""
    return json.dumps(value, sort_keys=True) == json.dumps(expected, sort_keys=True)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Refused(f"{what} must be a JSON object")
    return value


def _integer(value: Any, low: int, high: int, reason: str) -> int:
    if type(value) is not int or not low <= value <= high:
        raise Refused(reason)
    return value


# The container every app run gets: run_hardened's create call, as docker-py 7 sends it.
FIXED_CONFIG: dict[str, Any] = {
    "User": f"{APP_UID}:{APP_UID}",
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "AttachStdin": False,
    "AttachStdout": False,
    "AttachStderr": False,
    "NetworkDisabled": False,
    "WorkingDir": JOB_DIR,
    "Env": ["PYTHONUNBUFFERED=1"],
    "Volumes": {JOB_DIR: {}},
}
FIXED_HOST: dict[str, Any] = {
    "NetworkMode": "none",
    "ReadonlyRootfs": True,
    "CapDrop": ["ALL"],
    "SecurityOpt": ["no-new-privileges"],
    "Tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"},  # noqa: S108 (inside the container)
}
_HOST_NAMESPACES = ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode", "Cgroup")
_MOUNTS = "only the run's own named volume may be mounted, at /job (never a host path)"
WHY: dict[str, str] = {
    "User": f"the container must run as the non-root user {APP_UID}:{APP_UID}",
    "NetworkMode": 'the container must have no network (NetworkMode "none")',
    "ReadonlyRootfs": "the container's root file system must be read-only",
    "CapDrop": "every capability must be dropped, none added",
    "CapAdd": "every capability must be dropped, none added",
    "SecurityOpt": 'SecurityOpt must be ["no-new-privileges"]: seccomp and AppArmor stay confined',
    "Privileged": "privileged containers are not allowed",
    **{mode: "host namespaces are not allowed" for mode in _HOST_NAMESPACES},
    "Devices": "devices are not allowed",
    "DeviceRequests": "devices are not allowed",
    "DeviceCgroupRules": "devices are not allowed",
    "Mounts": _MOUNTS,
    "VolumesFrom": _MOUNTS,
    "Binds": _MOUNTS,
    "Volumes": _MOUNTS,
    "MaskedPaths": "the engine's masked and read-only paths stay as they are",
    "ReadonlyPaths": "the engine's masked and read-only paths stay as they are",
}


def _fixed(given: dict[str, Any], fixed: dict[str, Any], where: str) -> None:
    for key, value in given.items():
        if key in fixed and not _same(value, fixed[key]):
            raise Refused(WHY.get(key, f"{where}{key} must be {json.dumps(fixed[key])}"))


def _unknown(given: dict[str, Any], known: set[str], where: str) -> None:
    for key in given:
        if key not in known:
            raise Refused(WHY.get(key, f"{where}{key} is not part of an app run's container"))


def run_labels(given: Any, scope: dict[str, str]) -> dict[str, str]:
    """The caller's ``cure.`` labels with this deployment's scope and the run role forced."""
    labels = _object(given if given is not None else {}, "Labels")
    required = {**scope, ROLE_LABEL: RUN_ROLE}
    for key, value in labels.items():
        if not key.startswith(LABEL_PREFIX) or not isinstance(value, str) or len(value) > 256:
            raise Refused(f"labels are cure.* names with short text values, not {key[:40]!r}")
        if key in required and value != required[key]:
            raise Refused(f"the label {key} must be {required[key]!r} (this proxy's deployment)")
    if len(labels) > 32:
        raise Refused("too many labels")
    return {**labels, **required}


def job_volume(binds: Any) -> str:
    """The name of the one named volume bound read-write at /job."""
    if not isinstance(binds, list) or len(binds) != 1 or not isinstance(binds[0], str):
        raise Refused(_MOUNTS)
    name, _, rest = binds[0].partition(":")
    if rest != f"{JOB_DIR}:rw" or not re.fullmatch(NAME, name):
        raise Refused(_MOUNTS)
    return name


def _log_config(value: Any) -> dict[str, Any]:
    reason = "the log must be bounded: LogConfig json-file with max-size and max-file only"
    config = _object(value, "LogConfig")
    options = config.get("Config")
    if set(config) != {"Type", "Config"} or config["Type"] != "json-file":
        raise Refused(reason)
    if not isinstance(options, dict) or set(options) != {"max-size", "max-file"}:
        raise Refused(reason)
    size, files = options["max-size"], options["max-file"]
    if not (isinstance(size, str) and re.fullmatch(r"[1-9]\d{0,12}", size)):
        raise Refused(reason)
    if not (isinstance(files, str) and re.fullmatch(r"[1-9]\d?", files)):
        raise Refused(reason)
    if int(files) > MAX_LOG_FILES:
        raise Refused(reason)
    return {"Type": "json-file", "Config": {"max-size": size, "max-file": files}}


def _host_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _limits(host: dict[str, Any]) -> dict[str, int]:
    memory = _integer(
        host.get("Memory"), 6 * MIB, _host_memory(), "a memory limit of 6 MiB or more must be set"
    )
    if "MemorySwap" in host and not _same(host["MemorySwap"], memory):
        raise Refused("MemorySwap must equal Memory (no swap)")
    cpus = os.cpu_count() or 1
    nano_cpus = _integer(
        host.get("NanoCpus"), 10**7, cpus * 10**9, f"a CPU limit of 0.01 to {cpus} must be set"
    )
    pids = _integer(
        host.get("PidsLimit"), 1, MAX_PIDS, f"a pid limit of 1 to {MAX_PIDS} must be set"
    )
    return {"Memory": memory, "MemorySwap": memory, "NanoCpus": nano_cpus, "PidsLimit": pids}


_VARIABLE_CONFIG = {"Image", "Cmd", "Labels", "HostConfig"}
_VARIABLE_HOST = {"Memory", "MemorySwap", "NanoCpus", "PidsLimit", "Binds", "LogConfig"}


def container_body(spec: Any, scope: dict[str, str]) -> tuple[dict[str, Any], str]:
    """The create body the engine gets, and the volume it mounts (to be checked upstream)."""
    spec = _object(spec, "the request body")
    _unknown(spec, set(FIXED_CONFIG) | _VARIABLE_CONFIG, "")
    _fixed(spec, FIXED_CONFIG, "")
    host = _object(spec.get("HostConfig"), "HostConfig")
    _unknown(host, set(FIXED_HOST) | _VARIABLE_HOST, "HostConfig.")
    _fixed(host, FIXED_HOST, "HostConfig.")
    image, command = spec.get("Image"), spec.get("Cmd")
    if not (isinstance(image, str) and IMAGE.fullmatch(image)):
        raise Refused("Image must name an image")
    if command is not None and not (
        isinstance(command, list) and all(isinstance(a, str) for a in command)
    ):
        raise Refused("Cmd must be a list of strings")
    volume = job_volume(host.get("Binds"))
    body = {
        **FIXED_CONFIG,
        "Image": image,
        "Cmd": command,
        "Labels": run_labels(spec.get("Labels"), scope),
        "HostConfig": {
            **FIXED_HOST,
            **_limits(host),
            "Binds": [f"{volume}:{JOB_DIR}:rw"],
            "LogConfig": _log_config(host.get("LogConfig")),
        },
    }
    return body, volume


def volume_body(spec: Any, scope: dict[str, str]) -> dict[str, Any]:
    """A run's volume: a plain local one the engine names, with the run's labels and nothing else."""
    spec = _object(spec, "the request body")
    for key in spec:
        if key in ("Driver", "DriverOpts"):
            raise Refused("volume drivers and driver options are not allowed (a host path)")
        if key != "Labels":
            raise Refused(f"{key} is not part of a run's volume (the engine names it)")
    return {"Labels": run_labels(spec.get("Labels"), scope)}


def scoped_filters(given: str | None, required: dict[str, str]) -> str:
    """The caller's listing filters with the required labels added (label filters all hold)."""
    filters = _object(strict_json(given) if given else {}, "filters")
    for key, values in filters.items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise Refused(f"the filter {key!r} must be a list of strings")
    labels = [*filters.get("label", []), *(f"{k}={v}" for k, v in required.items())]
    return json.dumps({**filters, "label": labels})


def job_path(given: str | None) -> str:
    """An archive's path, normalised; Refused unless it is /job or lies under it."""
    if not given or not given.startswith("/"):
        raise Refused("an archive's path must be absolute, under /job")
    path = posixpath.normpath(given)
    if path != JOB_DIR and not path.startswith(JOB_DIR + "/"):
        raise Refused("archives are read and written only under /job")
    return path
