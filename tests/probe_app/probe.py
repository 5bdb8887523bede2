import json
import os
import sys
import time

job = json.load(open("/job/params.json"))
mode = job["params"].get("mode", "report")


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


def routes():
    # Routes other than loopback would mean a network; no address is ever contacted to find out.
    with open("/proc/net/route") as fh:
        return [line.split()[0] for line in fh.readlines()[1:]]


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
}
print("probe ran")
if mode == "sleep":
    time.sleep(600)
if mode == "progress":
    for percent in (25, 50, 75):
        print(f"CURE_PROGRESS {percent} step {percent}", flush=True)
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
