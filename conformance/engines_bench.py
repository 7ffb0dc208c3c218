"""`run --rm echo hi` through docker, podman and ctr, with runc and with pyrunc, alternately.

    python conformance/engines_bench.py [ROUNDS] [--systemd] [--engines docker,podman] [--out FILE]

    make bench-engines         (this host: the cgroupfs driver)
    make bench-vm-engines      (the --systemd VM: each engine's default cgroup driver, systemd)

Starts the engines as the end-to-end tests do (tests/engines/harness.py; --systemd: as
tests/engines/test_engines_systemd.py does, on their default driver), runs one warm-up per
engine and runtime, then ROUNDS rounds; in each round every engine runs once with each runtime,
the order of the two runtimes alternating, so both see the same machine load. Wall time of the
engine's client command. A benchmark, not a test: it fails only if a run fails (a runtime that
refuses the engine's cgroup driver is reported as such and left out).
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "engines"))
from harness import start_all, stop_all  # noqa: E402

RUNTIMES = ("runc", "pyrunc")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rounds", nargs="?", type=int, default=15)
    parser.add_argument("--systemd", action="store_true", help="the engines' default (systemd) cgroup driver")
    parser.add_argument("--engines", default="docker,podman,ctr")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    engines = [e for e in start_all(systemd=args.systemd) if e.name in args.engines.split(",")]
    times = {(e.name, rt): [] for e in engines for rt in RUNTIMES}
    refused = {}
    try:
        for e in engines:
            for rt in RUNTIMES:
                r = e.run(rt, "echo", "hi")
                if r.rc != 0 and args.systemd and rt == "pyrunc":
                    refused[(e.name, rt)] = (r.err.strip().splitlines() or ["?"])[-1]
                    continue
                assert r.rc == 0 and r.out == "hi\n", r
        for i in range(args.rounds):
            for e in engines:
                for rt in (RUNTIMES if i % 2 == 0 else RUNTIMES[::-1]):
                    if (e.name, rt) in refused:
                        continue
                    r = e.run(rt, "echo", "hi")
                    assert r.rc == 0 and r.out == "hi\n", r
                    times[(e.name, rt)].append(r.seconds)
    finally:
        stop_all()
    load = os.getloadavg()[0]
    driver = "systemd" if args.systemd else "cgroupfs"
    lines = [f"`run --rm echo hi`, {driver} cgroup driver, {args.rounds} alternating rounds, "
             f"load {load:.1f}, {os.cpu_count()} cores",
             "", "| engine | runtime | median ms | p10 | p90 |", "|---|---|---|---|---|"]
    for (engine, rt), ts in times.items():
        if (engine, rt) in refused:
            lines.append(f"| {engine} | {rt} | refused: {refused[(engine, rt)][:120]} | | |")
            continue
        ts = sorted(t * 1000 for t in ts)
        lines.append(f"| {engine} | {rt} | {statistics.median(ts):.0f} | {ts[len(ts) // 10]:.0f} | "
                     f"{ts[(len(ts) * 9) // 10]:.0f} |")
    print("\n".join(lines))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
