"""Containers through docker, podman, ctr (and a CRI pod's teardown), with runc and pyrunc, alternately.

    python conformance/engines_bench.py [ROUNDS] [--systemd] [--engines docker,podman,ctr,cri] [--out FILE]

    make bench-engines         (this host: the cgroupfs driver; the table also in build/bench-engines.md)
    make bench-vm-engines      (the --systemd VM: each engine's default cgroup driver, systemd)

Method. Starts the engines as the end-to-end tests do (tests/engines/harness.py; --systemd: as
tests/engines/test_engines_systemd.py does, on their default driver), runs one warm-up per engine
and runtime, then ROUNDS rounds; in each round every engine runs once with each runtime, the order
of the runtimes alternating, so both see the same machine load. Measured: the wall time of the
engine's client command `run --rm ... echo hi` (docker, podman, ctr), i.e. the engine's whole
create/start/wait/delete conversation with the runtime; and a pod's teardown: what containerd's CRI
does for crictl stopp + rmp (kill --all SIGKILL, delete), through ctr on a task made untimed, since
crictl itself needs a package and a pause image this host has not (its row says so). The
statistics and the table are conformance/bench.py's: median, p10, p90, and the median over runc's.
What cannot run here (an engine, a runtime the engine's cgroup driver refuses) is a row saying why.
A benchmark, not a test: nothing asserts on times, and it fails only if a measured run fails after
its warm-up succeeded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, "tests", "engines"))
sys.path.insert(0, os.path.join(HERE, "conformance"))
from bench import BenchError, table, write_report  # noqa: E402
from harness import STATE, missing_tools, start_all, stop_all  # noqa: E402

RUNTIMES = ("runc", "pyrunc")
ENGINES = ("docker", "podman", "ctr", "cri")
Measure = Callable[[str], float]  # runtime name -> seconds, or BenchError


def run_rm(engine: Any) -> Measure:
    """`<engine> run --rm ... echo hi` with the runtime, checked."""
    def measure(runtime: str) -> float:
        r = engine.run(runtime, "echo", "hi")
        if r.rc != 0 or r.out != "hi\n":
            lines = (r.err.strip().splitlines() or [f"exit {r.rc}, output {r.out!r}"])
            raise BenchError(lines[-1][:200])
        seconds: float = r.seconds
        return seconds
    return measure


def pod_teardown(ctr: Any) -> Measure:
    """The runtime side of CRI `stopp` + `rmp` through ctr: a `sleep` task made untimed (`run -d`,
    as `runp` would), then timed: `task kill --all -s SIGKILL`, `task rm -f`, `containers rm` (what
    containerd's CRI does through the same runc v2 shim; crictl itself cannot run here)."""
    def measure(runtime: str) -> float:
        pod = f"{ctr.PREFIX}pod{os.getpid()}-{time.monotonic_ns()}"
        up = ctr.cli("run", "-d", *ctr.runtime_opts(runtime, pod), ctr.image, pod, "sleep", "1000")
        if up.rc != 0:
            raise BenchError(f"run -d: {up.err.strip()[-200:]}")
        total = 0.0
        for argv in (("task", "kill", "--all", "-s", "SIGKILL", pod), ("task", "rm", "-f", pod),
                     ("containers", "rm", pod)):
            r = ctr.cli(*argv)
            if r.rc != 0:
                raise BenchError(f"{' '.join(argv[:2])}: {r.err.strip()[-200:]}")
            total += r.seconds
        return total
    return measure


def cri_unavailable() -> str:
    """Why a CRI pod cannot be measured on this host."""
    if shutil.which("crictl") is None:
        return "crictl is not installed (Debian 12 has no package of it; its source needs a newer Go than Debian's)"
    return ("containerd runs with its CRI plugin disabled (tests/engines/harness.py) and no pause "
            "image can be pulled offline")


def engines_in_use() -> list[int]:
    """Pids of daemons already running on the harness's state (another session's tests/engines):
    starting ours would take their state over, stopping ours would stop theirs."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) in (b"dockerd", b"containerd") and STATE.encode() in b" ".join(argv):
            pids.append(int(pid))
    return pids


def scenarios(names: Sequence[str], systemd: bool) -> tuple[dict[str, Measure], dict[str, str]]:
    """What can be measured ({scenario: measure}) and what cannot ({scenario: why})."""
    wanted = {n: f"{n} run --rm" for n in names if n in ("docker", "podman", "ctr")}
    not_run: dict[str, str] = {}
    if "cri" in names:
        not_run["crictl stopp+rmp"] = cri_unavailable()
        wanted.setdefault("cri", "ctr pod teardown")
    if wanted and (missing := missing_tools()):
        return {}, {**{w: f"not installed: {', '.join(missing)}" for w in wanted.values()}, **not_run}
    if not wanted:
        return {}, not_run
    if busy := engines_in_use():
        return {}, {**{w: f"the engines under {STATE} are in use (pids {busy})" for w in wanted.values()},
                    **not_run}
    try:
        engines = start_all(systemd=systemd)
    except (OSError, RuntimeError, AssertionError) as e:
        stop_all()
        return {}, {**{w: f"the engines did not start: {str(e)[:200]}" for w in wanted.values()}, **not_run}
    measures = {wanted[e.name]: run_rm(e) for e in engines if e.name in wanted}
    if "cri" in names:
        measures["ctr pod teardown"] = pod_teardown(next(e for e in engines if e.name == "ctr"))
    return measures, not_run


def warm_up(measures: dict[str, Measure]) -> dict[tuple[str, str], str]:
    """One run per scenario and runtime; those that fail are left out, with their reason."""
    refused = {}
    for name, measure in measures.items():
        for rt in RUNTIMES:
            try:
                measure(rt)
            except BenchError as e:
                refused[(name, rt)] = str(e)
    return refused


def measure_rounds(measures: dict[str, Measure], rounds: int,
                   refused: dict[tuple[str, str], str]) -> dict[str, dict[str, list[float]]]:
    samples: dict[str, dict[str, list[float]]] = {n: {rt: [] for rt in RUNTIMES} for n in measures}
    for i in range(rounds):
        for name, measure in measures.items():
            for rt in RUNTIMES if i % 2 == 0 else RUNTIMES[::-1]:
                if (name, rt) not in refused:
                    samples[name][rt].append(measure(rt))
    return samples


def report(samples: dict[str, dict[str, list[float]]], refused: dict[tuple[str, str], str],
           not_run: dict[str, str], header: str) -> list[str]:
    lines = [header, "", *table(samples, {}, RUNTIMES, set(), what="engine",
                                not_run=[*((name, rt, f"refused: {why}") for (name, rt), why in refused.items()),
                                         *((name, "(all)", why) for name, why in not_run.items())])]
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("rounds", nargs="?", type=int, default=15)
    p.add_argument("--systemd", action="store_true", help="the engines' default (systemd) cgroup driver")
    p.add_argument("--engines", default=",".join(ENGINES), help=f"of {', '.join(ENGINES)}")
    p.add_argument("--out", help="also write the table to this file")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    samples: dict[str, dict[str, list[float]]] = {}
    refused: dict[tuple[str, str], str] = {}
    measures: dict[str, Measure] = {}
    try:
        measures, not_run = scenarios(args.engines.split(","), args.systemd)
        refused = warm_up(measures)
        samples = measure_rounds(measures, args.rounds, refused)
    finally:
        if measures:
            stop_all()
    driver = "systemd" if args.systemd else "cgroupfs"
    header = (f"`run --rm echo hi` (ms, the client's wall time), {driver} cgroup driver, {args.rounds} "
              f"rounds alternating runc and pyrunc, load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    lines = report(samples, refused, not_run, header)
    print("\n".join(lines))
    if args.out:
        write_report(args.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
