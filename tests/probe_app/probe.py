import json
import os
import sys
import time

job = json.load(open("/job/params.json"))
mode = job["params"].get("mode", "report")
RELEASE = "/tmp/cure-release"  # held apps (mode hold, hold_step) wait for it


def can_write(path):
    try:
        with open(path, "w") as fh:
            fh.write("x")
        return True
    except OSError:
        return False


def status_field(name):
    for line in open("/proc/self/status"):
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return None


def hold():
    """Wait until the test releases the app (tests/live.py, ``releasing``: it creates the file in
    the container's /tmp), so what the test then breaks finds the app still running. A release
    forgotten ends the wait after 300 s (the app's own time limit is shorter)."""
    deadline = time.monotonic() + 300
    while not os.path.exists(RELEASE) and time.monotonic() < deadline:
        time.sleep(0.1)


def routes():
    # Routes other than loopback would mean a network; no address is ever contacted to find out.
    with open("/proc/net/route") as fh:
        return [line.split()[0] for line in fh.readlines()[1:]]


def step(name):
    """One step of the probe_flow workflow: see tests/conftest.py (PROBE_FLOW_MANIFEST)."""
    params = job["params"]
    work = "/job/work"
    print(f"step {name} runs", flush=True)
    if name in ("left", "right"):
        open(f"{work}/{name}.started", "w").close()
    if params.get("fail_step") == name:
        print(f"step {name} broke", file=sys.stderr, flush=True)
        sys.exit(7)
    if name in params.get("sleep_step", "").split(","):
        time.sleep(600)
    if name in (params.get("slow_step"), params.get("hold_step")):
        for percent in (25, 50, 75):
            print(f"CURE_PROGRESS {percent} {name} at {percent}", flush=True)
            if percent == 25 and params.get("hold_step") == name:
                hold()
            time.sleep(float(params.get("pause", 1.2)))
    if name == "prepare":
        with open(f"{work}/prepare.txt", "w") as fh:
            fh.write("prepared")
    elif name in ("left", "right"):
        # Each branch waits for the other to start: they only pass when run side by side.
        other = "right" if name == "left" else "left"
        deadline = time.monotonic() + 30
        while not os.path.exists(f"{work}/{other}.started"):
            if time.monotonic() > deadline:
                print(f"{other} never ran beside {name}", file=sys.stderr, flush=True)
                sys.exit(9)
            time.sleep(0.1)
        with open(f"{work}/prepare.txt") as fh, open(f"{work}/{name}.txt", "w") as out:
            out.write(fh.read() + f" then {name}")
    elif name == "finish":
        seen = {}
        for entry in sorted(os.listdir(work)):
            with open(f"{work}/{entry}") as fh:
                seen[entry] = fh.read()
        with open("/job/outputs/report.json", "w") as fh:
            json.dump(
                {
                    "work": seen,
                    "inputs_writable": can_write("/job/inputs/probe"),
                    "params_writable": can_write("/job/params.json"),
                    "argv": sys.argv[1:],
                },
                fh,
            )
    sys.exit(0)


if sys.argv[1:2] == ["step"]:
    step(sys.argv[2])

report = {
    "uid": os.getuid(),
    "gid": os.getgid(),
    "cap_eff": status_field("CapEff"),
    "no_new_privs": status_field("NoNewPrivs"),
    "root_writable": can_write("/probe-root"),
    "tmp_writable": can_write("/tmp/probe"),
    "interfaces": sorted(os.listdir("/sys/class/net")),
    "routes": routes(),
    "memory_max": open("/sys/fs/cgroup/memory.max").read().strip()
    if os.path.exists("/sys/fs/cgroup/memory.max")
    else None,
    "pids_max": open("/sys/fs/cgroup/pids.max").read().strip()
    if os.path.exists("/sys/fs/cgroup/pids.max")
    else None,
    "params": job["params"],
    "argv": sys.argv[1:],  # the same parameters, as --name value
    "inputs": job.get("inputs", {}),
    "inputs_writable": can_write("/job/inputs/probe"),
}
print("probe ran")
if mode == "sleep":
    time.sleep(600)
if mode in ("progress", "hold"):  # hold: the first step, then held until released
    for percent in (25, 50, 75):
        print(f"CURE_PROGRESS {percent} step {percent}", flush=True)
        if percent == 25 and mode == "hold":
            hold()
        time.sleep(float(job["params"].get("pause", 1.2)))
if mode == "leak":  # output with secrets in it, which the order's log must not show
    print("calling with Authorization: Bearer abcdefgh12345678 and password=hunter22", flush=True)
    print("a warning on stderr", file=sys.stderr, flush=True)
if mode == "invalid":
    print("no product for this date", file=sys.stderr)
    sys.exit(3)
if mode == "crash":
    print("something broke", file=sys.stderr)
    sys.exit(7)
with open("/job/outputs/report.json", "w") as fh:
    json.dump(report, fh)
sys.exit(0)
