"""``python -m bench [N ...]``: run the benchmarks (all, or those numbered), print every row as it
is measured, then the table; write them all to var/bench/results.json. See BENCHMARKS.md."""

import importlib
import sys
import time

from bench.harness import ROOT, Report, machine, s3_server

# The benchmarks in the order of BENCHMARKS.md: number -> module of bench/ with run(report, s3_url).
BENCHMARKS = {
    1: "status_read",
    2: "submissions",
    3: "dispatch",
    4: "end_to_end",
    5: "drain",
    6: "spatial_listing",
    7: "catalogue_search",
    8: "federated_search",
    9: "api_workers",
    10: "hosts",
}


def main(argv: list[str]) -> int:
    wanted = [int(arg) for arg in argv] or list(BENCHMARKS)
    unknown = [n for n in wanted if n not in BENCHMARKS]
    if unknown:
        print(f"no benchmark numbered {unknown}; they are {sorted(BENCHMARKS)}", file=sys.stderr)
        return 2
    report = Report()
    print(f"machine: {machine()}", flush=True)
    with s3_server() as s3_url:
        for number in wanted:
            module = importlib.import_module(f"bench.{BENCHMARKS[number]}")
            started = time.monotonic()
            print(f"-- benchmark {number}: {BENCHMARKS[number]}", flush=True)
            module.run(report, s3_url)
            print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
    print()
    print(report.table())
    path = ROOT / "var" / "bench" / "results.json"
    report.write(path)
    print(f"\nwritten to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
