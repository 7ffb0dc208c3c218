"""`run --rm echo hi` through docker, podman and ctr, with runc and with pyrunc, alternately.

    python conformance/engines_bench.py [ROUNDS]      (make bench-engines)

Starts the engines as the end-to-end tests do (tests/engines/harness.py), runs one warm-up per
engine and runtime, then ROUNDS rounds; in each round every engine runs once with each runtime,
the order of the two runtimes alternating, so both see the same machine load. Wall time of the
engine's client command. A benchmark, not a test: it fails only if a run fails.
"""

import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "engines"))
from harness import start_all, stop_all  # noqa: E402

RUNTIMES = ("runc", "pyrunc")


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    engines = start_all()
    times = {(e.name, rt): [] for e in engines for rt in RUNTIMES}
    try:
        for e in engines:
            for rt in RUNTIMES:
                r = e.run(rt, "echo", "hi")
                assert r.rc == 0 and r.out == "hi\n", r
        for i in range(rounds):
            for e in engines:
                for rt in (RUNTIMES if i % 2 == 0 else RUNTIMES[::-1]):
                    r = e.run(rt, "echo", "hi")
                    assert r.rc == 0 and r.out == "hi\n", r
                    times[(e.name, rt)].append(r.seconds)
    finally:
        stop_all()
    load = os.getloadavg()[0]
    print(f"`run --rm echo hi`, {rounds} alternating rounds, load {load:.1f}, {os.cpu_count()} cores")
    print("| engine | runtime | median ms | p10 | p90 |")
    print("|---|---|---|---|---|")
    for (engine, rt), ts in times.items():
        ts = sorted(t * 1000 for t in ts)
        print(f"| {engine} | {rt} | {statistics.median(ts):.0f} | {ts[len(ts) // 10]:.0f} | "
              f"{ts[(len(ts) * 9) // 10]:.0f} |")


if __name__ == "__main__":
    main()
