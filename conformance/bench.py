"""Every verb of pyrunc against runc and crun, on a busybox bundle, alternated in one run.

    python conformance/bench.py [BUNDLE_DIR] [--rounds N] [--only verb,verb] [--runtimes pyrunc,runc,crun]
                                [--pyrunc PATH [--label NAME]]... [--out FILE]

    make bench          (build/bench-bundle, the table also in build/bench.md)

Method. Each runtime gets a fresh --root (under /run) and the same bundles: one whose process is
`true`, one whose process is `sleep` (a container that stays running). A round runs every verb once
per runtime, the verbs in a fixed order and, for each verb, the runtimes one after the other, their
order rotating from round to round: all runtimes see the same machine load, at nearly the same
moment. Only the verb is timed (the wall time of the runtime's process, from the fork to its exit,
as an engine sees it); the containers it needs are made before, untimed: `create` times the create
of a `sleep` container, whose init's PSS is then read (/proc/PID/smaps_rollup, PID as `state`
reports it), then `start` times its start; `state`, `exec` (of `true`, foreground and
--detach), `ps`, `pause`+`resume`, `update` and `events --stats` run on that running container,
`kill` sends it SIGKILL, `delete` removes it once stopped. `delete --force` removes a container whose
process was killed before (untimed). `cycle` is the whole of an engine's container: create, start,
`state` until stopped, delete. `parallel 50` is the wall time of 50 creates started at once, then
50 deletes at once. `floor` is the interpreter pyrunc's launcher runs (its shebang line, `-c pass`),
beside `runc --version`: pyrunc's verbs minus that floor are what pyrunc itself costs.

Per verb and runtime: the median, p10 and p90 (linear interpolation between order statistics) of
the rounds; the median over runc's; and, for a Python launcher on a verb other than run/create,
its median minus its floor(s), also over runc's median (not for cycle and the batch, whose
processes vary or overlap). A first round (a warm-up) is not kept; a verb that fails there is not
measured on that runtime (a row says why: crun has no `events`); a later failure is counted. crun
refuses a hybrid cgroup host whose unified hierarchy has controllers: there it runs (as crun*)
by nsenter in a mount namespace without /sys/fs/cgroup/unified. A benchmark, not a test: nothing
asserts on times. Every container, cgroup, state directory and helper process made is removed at
the end, also on Ctrl-C, SIGTERM or a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, "tests"))

from bundle import make_bundle, make_rootfs  # noqa: E402

DEFAULT_ROUNDS = 40  # ~3.5 min on an idle 2-core machine
BATCH = 50
TIMEOUT = 60.0
# how many runtime processes a verb's time holds: "− floor" subtracts that many floors. Not for
# run and create (the goal there is <= 1.0x runc as they are), nor cycle and the parallel
# batch (their number of processes varies, or they overlap)
FLOORS = {"start": 1, "state": 1, "exec": 1, "exec --detach": 1, "ps": 1, "pause+resume": 2, "update": 1,
          "events --stats": 1, "kill": 1, "delete": 1, "delete --force": 1}
UNITS = {"init PSS": "KiB"}


class BenchError(Exception):
    """A runtime's command failed (its exit status and the end of its stderr)."""


class Runtime:
    """One runtime under test: its command line, its own --root, and the argv of its floor."""

    __slots__ = ("label", "argv", "root", "floor", "python", "serial", "prefix")

    def __init__(self, label: str, argv: list[str], root: str, floor: list[str], python: bool) -> None:
        self.label, self.argv, self.root, self.floor, self.python = label, argv, root, floor, python
        self.serial = 0
        self.prefix = f"bench{os.getpid()}-{''.join(c if c.isalnum() else '-' for c in label)}-"

    def cmd(self, *args: str) -> list[str]:
        return [*self.argv, "--root", self.root, *args]

    def new_id(self) -> str:
        self.serial += 1
        return f"{self.prefix}{self.serial}"


class Bundles:
    __slots__ = ("true", "sleep")

    def __init__(self, true: str, sleep: str) -> None:
        self.true, self.sleep = true, sleep


def make_bundles(base: str) -> Bundles:
    """Two bundles sharing one busybox rootfs: `true`, and `sleep` (stays running)."""
    rootfs = make_rootfs(os.path.join(base, "rootfs"))
    for name, args in (("true", ("true",)), ("sleep", ("sleep", "100000"))):
        make_bundle(os.path.join(base, name), args=args, rootfs=rootfs)
    return Bundles(os.path.join(base, "true"), os.path.join(base, "sleep"))


# -- running commands ---------------------------------------------------------------------------

class TimedOut(BenchError):
    pass


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """TimedOut after `seconds`, by SIGALRM: waits block in waitpid. (Popen.wait(timeout=...) polls
    with sleeps doubling up to 50 ms: it would round every time up to its next poll, 7.5, 15.5,
    31.5, 63.5 ms...)"""
    def handler(signum: int, frame: object) -> None:
        raise TimedOut(f"no exit within {seconds:.0f} s")
    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_all(argvs: Sequence[Sequence[str]], stdout: IO[bytes] | int, stderr: IO[bytes]) -> list[int]:
    """Start every argv at once, then wait for each (killed after TIMEOUT); their exit statuses."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with alarm(TIMEOUT):
            procs.extend(subprocess.Popen(a, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr) for a in argvs)
            return [p.wait() for p in procs]
    except TimedOut:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        raise


def execute(argv: Sequence[str], stdout: bool = False) -> tuple[float, str]:
    """Wall seconds of argv and its stdout (if asked), or BenchError. Its output goes to files, not
    pipes: a created container's process keeps the runtime's stdio open."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        rc = run_all([argv], out if stdout else subprocess.DEVNULL, err)[0]
        elapsed = time.perf_counter() - start
        if rc != 0:
            err.seek(0)
            raise BenchError(f"{' '.join(argv[-4:])}: exit {rc}: {err.read().decode().strip()[-300:]}")
        out.seek(0)
        return elapsed, out.read().decode()


def call(argv: Sequence[str]) -> str:
    """Run argv untimed; its stdout, or BenchError."""
    return execute(argv, stdout=True)[1]


def timed(argv: Sequence[str]) -> float:
    """Wall seconds of argv (stdout discarded); BenchError if it fails."""
    return execute(argv)[0]


def state_of(rt: Runtime, cid: str) -> dict:
    state: dict = json.loads(call(rt.cmd("state", cid)))
    return state


def wait_stopped(rt: Runtime, cid: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while state_of(rt, cid)["status"] != "stopped":
        if time.monotonic() > deadline:
            raise BenchError(f"{cid} did not stop")
        time.sleep(0.002)


def pss_kib(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return float(line.split()[1])
    raise BenchError(f"no Pss in /proc/{pid}/smaps_rollup")


def batch(argvs: list[list[str]]) -> None:
    """Start every argv at once, wait for all; BenchError if one failed."""
    with tempfile.TemporaryFile() as err:
        failed = [rc for rc in run_all(argvs, subprocess.DEVNULL, err) if rc != 0]
        if failed:
            err.seek(0)
            raise BenchError(f"{len(failed)} of {len(argvs)} failed, e.g. exit {failed[0]}: "
                             f"{err.read().decode().strip()[-300:]}")


# -- the containers a round's verbs work on -----------------------------------------------------

class Round:
    """One runtime's containers in one round: made untimed when a verb needs one that an earlier
    verb of the round did not leave (as when --only picks verbs)."""

    __slots__ = ("rt", "bundles", "created", "running", "stopped", "made")

    def __init__(self, rt: Runtime, bundles: Bundles) -> None:
        self.rt, self.bundles = rt, bundles
        self.created: str | None = None
        self.running: str | None = None
        self.stopped: str | None = None
        self.made: list[str] = []

    def create(self, bundle: str) -> str:
        cid = self.rt.new_id()
        self.made.append(cid)
        call(self.rt.cmd("create", "--bundle", bundle, cid))
        return cid

    def take_created(self) -> str:
        cid, self.created = self.created or self.create(self.bundles.sleep), None
        return cid

    def running_id(self) -> str:
        if self.running is None:
            cid = self.take_created()
            call(self.rt.cmd("start", cid))
            self.running = cid
        return self.running

    def take_running(self) -> str:
        cid, self.running = self.running_id(), None
        return cid

    def take_stopped(self) -> str:
        if self.stopped is None:
            cid = self.take_running()
            call(self.rt.cmd("kill", cid, "KILL"))
            wait_stopped(self.rt, cid)
            self.stopped = cid
        cid, self.stopped = self.stopped, None
        return cid

    def cleanup(self) -> None:
        """Force-delete whatever this round made and is still there."""
        left = set(list_ids(self.rt))
        for cid in self.made:
            if cid in left:
                subprocess.run(self.rt.cmd("delete", "--force", cid), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=TIMEOUT)
        self.made.clear()
        self.created = self.running = self.stopped = None


def list_ids(rt: Runtime) -> list[str]:
    if not os.path.isdir(rt.root):
        return []
    try:
        return call(rt.cmd("list", "-q")).split()
    except (BenchError, subprocess.TimeoutExpired):
        return [d for d in os.listdir(rt.root) if d.startswith(rt.prefix)]


# -- the verbs: each returns the measured value (seconds, or KiB for PSS) --------------------------

def v_floor(r: Round) -> float:
    return timed(r.rt.floor)


def v_run(r: Round) -> float:
    cid = r.rt.new_id()
    r.made.append(cid)
    return timed(r.rt.cmd("run", "--bundle", r.bundles.true, cid))


def v_create(r: Round) -> float:
    cid = r.rt.new_id()
    r.made.append(cid)
    t = timed(r.rt.cmd("create", "--bundle", r.bundles.sleep, cid))
    r.created = cid
    return t


def v_pss(r: Round) -> float:
    cid = r.take_created()
    r.created = cid
    return pss_kib(int(state_of(r.rt, cid)["pid"]))


def v_start(r: Round) -> float:
    cid = r.take_created()
    t = timed(r.rt.cmd("start", cid))
    r.running = cid
    return t


def on_running(*args: str) -> Callable[[Round], float]:
    """A verb timed on the round's running container (its id goes last, or where "{}" is)."""
    def verb(r: Round) -> float:
        cid = r.running_id()
        argv = [cid if a == "{}" else a for a in args] if "{}" in args else [*args, cid]
        return timed(r.rt.cmd(*argv))
    return verb


def v_pause_resume(r: Round) -> float:
    cid = r.running_id()
    return timed(r.rt.cmd("pause", cid)) + timed(r.rt.cmd("resume", cid))


def v_kill(r: Round) -> float:
    cid = r.take_running()
    t = timed(r.rt.cmd("kill", cid, "KILL"))
    wait_stopped(r.rt, cid)
    r.stopped = cid
    return t


def v_delete(r: Round) -> float:
    return timed(r.rt.cmd("delete", r.take_stopped()))


def v_delete_force(r: Round) -> float:
    cid = r.create(r.bundles.sleep)
    call(r.rt.cmd("start", cid))
    call(r.rt.cmd("kill", cid, "KILL"))
    wait_stopped(r.rt, cid)
    return timed(r.rt.cmd("delete", "--force", cid))


def v_cycle(r: Round) -> float:
    cid = r.rt.new_id()
    r.made.append(cid)
    start = time.perf_counter()
    call(r.rt.cmd("create", "--bundle", r.bundles.true, cid))
    call(r.rt.cmd("start", cid))
    while state_of(r.rt, cid)["status"] != "stopped":
        pass
    call(r.rt.cmd("delete", cid))
    return time.perf_counter() - start


def v_parallel(r: Round) -> float:
    ids = [r.rt.new_id() for _ in range(BATCH)]
    r.made.extend(ids)
    start = time.perf_counter()
    batch([r.rt.cmd("create", "--bundle", r.bundles.true, cid) for cid in ids])
    batch([r.rt.cmd("delete", cid) for cid in ids])
    return time.perf_counter() - start


# the order of a round: each verb leaves the container the next one takes
VERBS: dict[str, Callable[[Round], float]] = {
    "floor": v_floor,
    "run": v_run,
    "create": v_create,
    "init PSS": v_pss,
    "start": v_start,
    "state": on_running("state"),
    "exec": on_running("exec", "{}", "true"),
    "exec --detach": on_running("exec", "--detach", "{}", "true"),
    "ps": on_running("ps"),
    "pause+resume": v_pause_resume,
    "update": on_running("update", "--memory", "268435456", "--pids-limit", "1000"),
    "events --stats": on_running("events", "--stats"),
    "kill": v_kill,
    "delete": v_delete,
    "delete --force": v_delete_force,
    "cycle": v_cycle,
    f"parallel {BATCH}": v_parallel,
}


Samples = dict[str, dict[str, list[float]]]  # verb -> runtime -> values
Failures = dict[str, dict[str, int]]  # verb -> runtime -> count (after the warm-up)
Dropped = dict[tuple[str, str], str]  # (verb, runtime) -> why: it failed in the warm-up, not measured


# -- statistics and the table ---------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between the sorted values."""
    s = sorted(values)
    if not s:
        raise ValueError("no values")
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def scaled(verb: str, seconds_or_kib: float) -> float:
    """ms for times, KiB as they are."""
    return seconds_or_kib if verb in UNITS else seconds_or_kib * 1000


def fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}"


def cells(verb: str, values: Sequence[float], ref_median: float | None, floor: float | None) -> list[str]:
    """median (with its unit), p10, p90, ×reference, and with a floor: minus it, and that ×reference."""
    med = percentile(values, 0.5)
    unit = UNITS.get(verb, "ms")
    row = [f"{fmt(scaled(verb, med))} {unit}", fmt(scaled(verb, percentile(values, 0.1))),
           fmt(scaled(verb, percentile(values, 0.9))), f"{med / ref_median:.2f}" if ref_median else "", "", ""]
    if floor is not None:
        own = med - FLOORS[verb] * floor
        row[4:] = [fmt(scaled(verb, own)), f"{own / ref_median:.2f}" if ref_median else ""]
    return row


def table(samples: Samples, failures: Failures,
          labels: Sequence[str], python: set[str], reference: str = "runc", what: str = "verb",
          not_run: Sequence[tuple[str, str, str]] = ()) -> list[str]:
    """The markdown table: a row per (verb, runtime), in the order of `samples` and `labels`, then a
    row per (verb, runtime, why) of `not_run`. The floor columns only where a runtime in `python`
    has a floor measured."""
    floors = {label: percentile(v, 0.5) for label, v in samples.get("floor", {}).items() if v and label in python}
    width = 8 if floors else 6
    head = f"| {what} | runtime | median | p10 | p90 | ×{reference} |"
    lines = [head + (f" − floor | (− floor)×{reference} |" if floors else ""), "|---" * width + "|"]
    for verb, per_rt in samples.items():
        ref = per_rt.get(reference)
        ref_median = percentile(ref, 0.5) if ref else None
        for label in labels:
            values = per_rt.get(label, [])
            failed = failures.get(verb, {}).get(label, 0)
            note = f" ({failed} failed)" if failed else ""
            if not values:
                if failed:
                    lines.append(f"| {verb} | {label} | failed{note} |" + " |" * (width - 3))
                continue
            row = cells(verb, values, ref_median, floors.get(label) if verb in FLOORS else None)
            row[0] += note
            lines.append(f"| {verb} | {label} | " + " | ".join(row[:width - 2]) + " |")
    lines += [f"| {verb} | {label} | not run: {why} |" + " |" * (width - 3) for verb, label, why in not_run]
    return lines


# -- runtimes, the run, the cleanup ---------------------------------------------------------------

def which(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}")
                                        if os.path.exists(p)), None)


def interpreter_floor(launcher: str) -> list[str]:
    """The launcher's shebang interpreter and its flags, running nothing."""
    with open(launcher, "rb") as f:
        first = f.readline().decode().strip()
    if not first.startswith("#!"):
        raise SystemExit(f"{launcher}: not a script with a #! line")
    return [*first[2:].split(), "-c", "pass"]


def label_for(path: str) -> str:
    """pyrunc-<checkout dir> for <checkout>/bin/pyrunc."""
    return "pyrunc-" + os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path))))


def make_runtimes(names: Sequence[str], extra: Sequence[tuple[str, str]], base: str) -> list[Runtime]:
    """The runtimes asked for (pyrunc, the --pyrunc launchers, runc, crun); a missing one is skipped."""
    found: list[Runtime] = []
    for name in names:
        if name == "pyrunc":
            launchers = [("pyrunc", os.path.join(HERE, "bin", "pyrunc")), *extra]
            for label, path in launchers:
                found.append(Runtime(label, [path], os.path.join(base, label), interpreter_floor(path), True))
        elif binary := which(name):
            found.append(Runtime(name, [binary], os.path.join(base, name), [binary, "--version"], False))
        else:
            print(f"{name}: not installed, left out", file=sys.stderr)
    return found


HYBRID_REFUSAL = "cgroups in hybrid mode not supported"


def without_unified_cgroup() -> subprocess.Popen[bytes]:
    """A process in a mount namespace of its own where /sys/fs/cgroup/unified is unmounted: crun
    refuses a hybrid host whose unified hierarchy has controllers (this one has hugetlb there), and
    sees a cgroup v1 host there instead. Nothing changes for the host."""
    return subprocess.Popen(["unshare", "--mount", "--propagation", "slave", "sh", "-c",
                             "umount /sys/fs/cgroup/unified && exec sleep 100000"], stdin=subprocess.DEVNULL)


def in_namespace_of(rt: Runtime, helper: subprocess.Popen[bytes]) -> None:
    """rt's commands run by nsenter in helper's mount namespace (nsenter's exec is in its times)."""
    prefix = ["nsenter", f"--mount=/proc/{helper.pid}/ns/mnt"]
    rt.argv = [*prefix, *rt.argv]
    rt.floor = [*prefix, *rt.floor]
    rt.label += "*"


def unusable(rt: Runtime, bundles: Bundles) -> str | None:
    """Why rt cannot create a container here (e.g. crun on a hybrid cgroup host), or None."""
    r = Round(rt, bundles)
    try:
        r.create(bundles.true)
        return None
    except (BenchError, OSError, subprocess.TimeoutExpired) as e:
        return str(e).rsplit(": ", 1)[-1].splitlines()[-1] if str(e) else type(e).__name__
    finally:
        r.cleanup()


def wait_usable(rt: Runtime, bundles: Bundles, timeout: float = 5.0) -> str | None:
    """unusable(), retried while a helper namespace is being set up."""
    deadline = time.monotonic() + timeout
    while (why := unusable(rt, bundles)) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    return why


def cleanup(runtimes: Sequence[Runtime]) -> None:
    """Every container left in our roots force-deleted, the roots removed, our empty cgroups removed."""
    for rt in runtimes:
        for cid in list_ids(rt):
            subprocess.run(rt.cmd("delete", "--force", cid), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=TIMEOUT)
        shutil.rmtree(rt.root, ignore_errors=True)
    prefixes = tuple(rt.prefix for rt in runtimes)
    for top in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        for ctrl in [top, *(os.path.join(top, c) for c in os.listdir(top))] if os.path.isdir(top) else []:
            for d in os.listdir(ctrl) if os.path.isdir(ctrl) else []:
                if d.startswith(prefixes):
                    with contextlib.suppress(OSError):
                        os.rmdir(os.path.join(ctrl, d))


@contextlib.contextmanager
def terminated_as_interrupt() -> Iterator[None]:
    """SIGTERM/SIGHUP raise KeyboardInterrupt (so the cleanup runs), as Ctrl-C does."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def measure(runtimes: Sequence[Runtime], bundles: Bundles, verbs: Sequence[str], rounds: int,
            progress: bool) -> tuple[Samples, Failures, Dropped]:
    """`rounds` rounds plus one warm-up (not kept); per verb, the runtimes in a rotating order. A
    verb that fails in the warm-up (e.g. crun has no `events`) is not tried again on that runtime."""
    samples: Samples = {v: {rt.label: [] for rt in runtimes} for v in verbs}
    failures: Failures = {v: {} for v in verbs}
    dropped: Dropped = {}
    for i in range(rounds + 1):
        order = [runtimes[(i + k) % len(runtimes)] for k in range(len(runtimes))]
        states = {rt.label: Round(rt, bundles) for rt in runtimes}
        try:
            for verb in verbs:
                for rt in order:
                    if (verb, rt.label) in dropped:
                        continue
                    error = record(verb, states[rt.label], samples[verb] if i else None)
                    if error is not None and i == 0:
                        dropped[(verb, rt.label)] = error
                    elif error is not None:
                        failures[verb][rt.label] = failures[verb].get(rt.label, 0) + 1
                        if failures[verb][rt.label] == 1:
                            print(f"{rt.label} {verb} failed: {error}", file=sys.stderr)
        finally:
            for r in states.values():
                r.cleanup()
        if progress:
            print(f"round {i}/{rounds} done{' (warm-up)' if i == 0 else ''}", file=sys.stderr, flush=True)
    return samples, failures, dropped


def record(verb: str, r: Round, samples: dict[str, list[float]] | None) -> str | None:
    """Run the verb on r (its value kept in samples, unless None); why it failed, or None."""
    try:
        value = VERBS[verb](r)
    except (BenchError, OSError, subprocess.TimeoutExpired, ValueError, KeyError) as e:
        r.cleanup()
        return str(e) or type(e).__name__
    if samples is not None:
        samples[r.rt.label].append(value)
    return None


def versions(runtimes: Sequence[Runtime]) -> str:
    found = []
    for rt in runtimes:
        try:
            out = call([*rt.argv, "--version"]).splitlines()
            found.append(f"{rt.label} {out[0].split()[-1] if out else '?'}")
        except (BenchError, OSError):
            found.append(f"{rt.label} ?")
    return ", ".join(found)


def short(why: str) -> str:
    """A BenchError's text without the command line (`exit N: stderr`)."""
    _, sep, rest = why.rpartition(": exit ")
    return (f"exit {rest}" if sep else why)[-150:]


def header(versions: str, rounds: int, load_before: float, runtimes: Sequence[Runtime]) -> list[str]:
    lines = [f"busybox bundle, {rounds} rounds (+1 warm-up) alternating {versions}; {os.cpu_count()} cores, "
             f"load {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; times in ms (wall time of the "
             "runtime's process), PSS in KiB"]
    lines += [f"{rt.label}: in a mount namespace without /sys/fs/cgroup/unified (it refuses this hybrid host "
              "otherwise); nsenter's exec is in its times" for rt in runtimes if rt.label.endswith("*")]
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("bundle", nargs="?", default=os.path.join(HERE, "build", "bench-bundle"),
                   help="where the bundles are made (default build/bench-bundle)")
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    p.add_argument("--only", help=f"comma-separated verbs, of: {', '.join(VERBS)}")
    p.add_argument("--runtimes", default="pyrunc,runc,crun")
    p.add_argument("--pyrunc", action="append", default=[], metavar="PATH",
                   help="another pyrunc launcher (e.g. an older checkout's bin/pyrunc), measured beside bin/pyrunc")
    p.add_argument("--label", action="append", default=[], help="the name of each --pyrunc in the table")
    p.add_argument("--out", help="also write the table to this file")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)
    verbs = args.only.split(",") if args.only else list(VERBS)
    unknown = [v for v in verbs if v not in VERBS]
    if unknown:
        p.error(f"unknown verb(s) {', '.join(unknown)}; known: {', '.join(VERBS)}")
    if any(v in FLOORS for v in verbs):
        verbs.append("floor")  # for the "− floor" columns
    args.verbs = [v for v in VERBS if v in verbs]  # a round's order, whatever --only's
    if len(args.label) > len(args.pyrunc):
        p.error("more --label than --pyrunc")
    args.extra = [(args.label[i] if i < len(args.label) else label_for(path), os.path.abspath(path))
                  for i, path in enumerate(args.pyrunc)]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    bundles = make_bundles(os.path.abspath(args.bundle))
    base = tempfile.mkdtemp(prefix="pyrunc-bench-", dir="/run")
    runtimes = make_runtimes(args.runtimes.split(","), args.extra, base)
    started = time.monotonic()
    left_out: dict[str, str] = {}
    helpers: list[subprocess.Popen[bytes]] = []
    try:
        with terminated_as_interrupt():
            for rt in runtimes:
                why = unusable(rt, bundles)
                if why is not None and HYBRID_REFUSAL in why:
                    helpers.append(without_unified_cgroup())
                    in_namespace_of(rt, helpers[-1])
                    why = wait_usable(rt, bundles)
                if why is not None:
                    left_out[rt.label] = why
            usable = [rt for rt in runtimes if rt.label not in left_out]
            names = versions(runtimes)
            samples, failures, dropped = measure(usable, bundles, args.verbs, args.rounds, not args.quiet)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        cleanup(runtimes)
        for helper in helpers:
            helper.kill()
            helper.wait()
        shutil.rmtree(base, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    not_run = [*((verb, label, short(why)) for (verb, label), why in dropped.items()),
               *(("(all)", label, why) for label, why in left_out.items())]
    lines = [*header(names, args.rounds, load_before, runtimes), "",
             *table(samples, failures, [rt.label for rt in usable], {rt.label for rt in usable if rt.python},
                    not_run=not_run),
             "", f"wall time of the benchmark: {time.monotonic() - started:.0f} s"]
    print("\n".join(lines))
    if args.out:
        write_report(args.out, lines)
    return 0


def write_report(path: str, lines: list[str]) -> None:
    """The printed table, also kept in a file (build/bench.md, build/bench-engines.md)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
