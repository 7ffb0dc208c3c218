"""Wall time of `run` of a busybox `true` bundle: pyrunc vs runc, alternated in one run.

    python conformance/bench.py BUNDLE [ROUNDS]

A benchmark, not a test: it prints medians and spreads; nothing asserts on them.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def runtimes():
    found = {"pyrunc": [os.path.join(HERE, "bin", "pyrunc")]}
    for name in ("runc", "crun"):
        path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
        if path:
            found[name] = [path]
    return found


def one_run(argv, root, bundle, cid):
    start = time.perf_counter()
    p = subprocess.run([*argv, "--root", root, "run", "--bundle", bundle, cid],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    return elapsed, p.returncode, p.stderr.decode()[-300:]


def main():
    bundle = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    subprocess.run([sys.executable, os.path.join(HERE, "tests", "bundle.py"), bundle, "true"],
                   check=True, stdout=subprocess.DEVNULL)
    rts = runtimes()
    times = {name: [] for name in rts}
    failures = {name: 0 for name in rts}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds + 2):  # two warm-up rounds are dropped
            for name, argv in rts.items():
                t, rc, err = one_run(argv, os.path.join(tmp, name), bundle, f"bench-{i}")
                if rc != 0:
                    failures[name] += 1
                    if failures[name] == 1:
                        print(f"{name} failed: {err.strip()}", file=sys.stderr)
                elif i >= 2:
                    times[name].append(t)
    print(f"`run` of a busybox `true` bundle, {rounds} alternating rounds, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    for name, ts in times.items():
        if ts:
            q = statistics.quantiles(ts, n=10)
            print(f"  {name:7s} median {statistics.median(ts) * 1000:6.1f} ms   "
                  f"p10 {q[0] * 1000:6.1f}  p90 {q[-1] * 1000:6.1f}   failures {failures[name]}")
        else:
            print(f"  {name:7s} no successful run ({failures[name]} failures)")


if __name__ == "__main__":
    main()
