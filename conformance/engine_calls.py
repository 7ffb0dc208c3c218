"""Which runtime calls docker, podman and containerd make per container, and how long each takes.

    python conformance/engine_calls.py [ROUNDS] [--scenarios docker-run,podman-run,...] [--out FILE]
                                       [--log FILE] [--pyrunc LAUNCHER]

    make engine-calls

Each runtime (Debian's runc and bin/pyrunc) is registered with the engines behind a wrapper: a
bash script in a temporary directory that records the argv, the caller, start and end time and the
exit status of every call (bash's $EPOCHREALTIME, no fork), then runs the real runtime and exits
with its status. The engines are started as the end-to-end tests start them
(tests/engines/harness.py), but under their own state folder (/var/lib/pyrunc-engine-calls, and
containerd's under /run/pyrunc-engine-calls) so that a concurrent `make bench-engines` or engine
test is not disturbed.

Scenarios (one round runs each with runc and with pyrunc, the order alternating):
  docker-run    `docker run --rm --network none tiny echo hi`
  podman-run    `podman run --rm --network none tiny echo hi` (its cleanup `delete --force` may
                come after the client returns: calls are collected until the log is quiet)
  ctr-run       `ctr run --rm tiny ID echo hi`
  ctr-up        `ctr run -d tiny ID sleep 1000` (the runtime side of a CRI `runp`)
  ctr-down      `ctr task kill --all -s SIGKILL ID; ctr task rm -f ID; ctr containers rm ID` after
                ctr-up: the runtime side of CRI `stopp` + `rmp` (containerd's CRI kills the sandbox
                task with SIGKILL and --all, waits for the exit and deletes the task through the
                same runc v2 shim; crictl and a pause image are not available offline here)

Printed per scenario: the verbs in order (with their callers), each verb's median time for runc and
pyrunc, the sum of the runtime's time against the engine command's wall time, and one timeline
(offsets from the command's start) per runtime. A benchmark, not a test. The wrapper itself costs
about a millisecond per call (bash's start), the same for both runtimes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "engines"))
import harness  # noqa: E402

RUNTIMES = ("runc", "pyrunc")
SCENARIOS = ("docker-run", "podman-run", "ctr-run", "ctr-up", "ctr-down")
STATE = "/var/lib/pyrunc-engine-calls"  # not the tests' (harness.STATE): both may run at once
CONTAINERD_STATE = "/run/pyrunc-engine-calls/containerd"

# One record per call: label, pid, caller, start, end, status, the CPU time of the runtime and
# the children it waited for (bash's `times`, user then system), then the argv; fields separated
# by US (0x1f), the record ended by RS (0x1e), so that no argument can break a record. `times`
# goes through a file of the wrapper's pid (a command substitution would fork).
WRAPPER = r"""#!/bin/bash
t0=$EPOCHREALTIME
read -r caller < /proc/$PPID/comm
{real} "$@"
rc=$?
t1=$EPOCHREALTIME
times > {tmp}/times.$$
{{ read -r _; read -r cu cs; }} < {tmp}/times.$$
IFS=$'\x1f'
printf -v fields '%s\x1f' {label} $$ "$caller" "$t0" "$t1" "$rc" "$cu" "$cs"
printf '%s%s\x1e' "$fields" "$*" >> {log}
exit $rc
"""

# runc's global options that take a value (`--opt value`; `--opt=value` is one argument)
VALUED = {"--root", "--log", "--log-format", "--criu", "--rootless"}


def _seconds(text: str) -> float:
    """bash's `times` figure, 0m0.012s."""
    minutes, _, rest = text.partition("m")
    return int(minutes) * 60 + float(rest.rstrip("s"))


class Call:
    __slots__ = ("runtime", "pid", "caller", "start", "end", "rc", "cpu", "argv")

    def __init__(self, record: str) -> None:
        fields = record.split("\x1f")
        self.runtime, self.pid, self.caller = fields[0], int(fields[1]), fields[2]
        self.start, self.end, self.rc = float(fields[3]), float(fields[4]), int(fields[5])
        self.cpu = _seconds(fields[6]) + _seconds(fields[7])
        self.argv = fields[8:]

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def verb_index(self) -> int:
        """Where the subcommand is in argv, after runc's global options."""
        args, i = self.argv, 0
        while i < len(args) and args[i].startswith("-") and args[i] not in ("--version", "-v"):
            i += 2 if args[i] in VALUED else 1
        return i

    def verb(self) -> str:
        """The subcommand with the options that change what it does: `delete --force`, `kill --all 9`."""
        args, i = self.argv, self.verb_index()
        if i >= len(args):
            return "(none)"
        verb, rest = args[i], args[i + 1:]
        notes = [a for a in rest if a in ("--force", "-f", "--all", "-a", "--detach", "-d")]
        if verb == "kill" and rest and (rest[-1].isdigit() or rest[-1].startswith("SIG")):
            notes.append(rest[-1])
        return " ".join([verb, *notes])


def write_wrappers(tmp: str, log: str, runtimes: dict[str, str]) -> dict[str, str]:
    """{label: wrapper path} for {label: real runtime}; every call appends a record to `log`."""
    paths = {}
    for label, real in runtimes.items():
        path = os.path.join(tmp, f"{label}-logged")
        with open(path, "w") as f:
            f.write(WRAPPER.format(real=real, label=label, log=log, tmp=tmp))
        os.chmod(path, 0o755)
        paths[label] = path
    return paths


def read_calls(log: str, offset: int) -> tuple[list[Call], int]:
    with open(log, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\x1e") + 1
    records = data[:end].decode(errors="replace").split("\x1e")
    return [Call(r) for r in records if r], offset + end


def settle(log: str, quiet: float = 0.4, limit: float = 5.0) -> None:
    """Wait until the log has not grown for `quiet` seconds (podman's cleanup comes late)."""
    deadline = time.monotonic() + limit
    size, since = os.path.getsize(log), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = os.path.getsize(log)
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


class Engines:
    """The three engines under this script's own state, each runtime behind its wrapper."""

    def __init__(self, wrappers: dict[str, str]) -> None:
        # the harness registers harness.PYRUNC with docker and harness.RUNTIMES with podman/ctr;
        # docker's own "runc" is found on dockerd's PATH: a folder where runc is the wrapper
        shim_path = os.path.join(os.path.dirname(wrappers["runc"]), "path")
        os.makedirs(shim_path, exist_ok=True)
        os.symlink(wrappers["runc"], os.path.join(shim_path, "runc"))
        harness.STATE = STATE  # read when the engine objects are made
        harness.PATH = f"{shim_path}:{harness.PATH}"
        harness.PYRUNC = wrappers["pyrunc"]
        harness.RUNTIMES.update(wrappers)
        self.docker, self.podman, self.ctr = harness.Docker(), harness.Podman(), harness.Ctr()
        self.serial = 0
        self.pod = ""  # the ctr-up container that ctr-down removes

    def up(self) -> None:
        self.docker.up()
        self.podman.up()
        self.ctr_up()

    def ctr_up(self) -> None:
        """As harness.Ctr.up, with containerd's state in a folder of its own."""
        ctr = self.ctr
        os.makedirs(ctr.dir, exist_ok=True)
        conf = os.path.join(ctr.dir, "config.toml")
        with open(conf, "w") as f:
            f.write(f'version = 2\nroot = "{ctr.dir}/root"\nstate = "{CONTAINERD_STATE}"\n'
                    'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                    f'[grpc]\n  address = "{ctr.sock}"\n[ttrpc]\n  address = "{ctr.sock}.ttrpc"\n')
        pidfile = os.path.join(ctr.dir, "containerd.pid")
        if not harness._alive(pidfile):
            harness._daemon(["/usr/bin/containerd", "--config", conf], os.path.join(ctr.dir, "containerd.log"),
                            pidfile)
        harness._wait_for(lambda: ctr.cli("version").rc == 0, "containerd")
        if ctr.image not in ctr.cli("images", "ls", "-q").out.split():
            archive = self.docker.save_image(os.path.join(harness.STATE, "image", "tiny-docker.tar"))
            r = ctr.cli("images", "import", archive)
            assert r.rc == 0, r

    def down(self) -> None:
        for engine in (self.podman, self.ctr, self.docker):
            try:
                engine.down()
            except Exception as e:  # keep stopping the others
                print(f"stopping {engine.name}: {e}", file=sys.stderr)
        for point in sorted(set(harness.mounts_under(harness.STATE)) - {harness.STATE}, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], stderr=subprocess.DEVNULL)
        shutil.rmtree(os.path.dirname(CONTAINERD_STATE), ignore_errors=True)

    def next_id(self) -> str:
        self.serial += 1
        return f"ec-{os.getpid()}-{self.serial}"

    def scenario(self, name: str, runtime: str) -> tuple[float, Any]:
        """Run one scenario; returns (wall seconds of the measured commands, the check's result)."""
        if name == "docker-run":
            r = self.docker.run(runtime, "echo", "hi")
            assert r.rc == 0 and r.out == "hi\n", r
            return r.seconds, r
        if name == "podman-run":
            r = self.podman.run(runtime, "echo", "hi")
            assert r.rc == 0 and r.out == "hi\n", r
            return r.seconds, r
        if name == "ctr-run":
            r = self.ctr.run(runtime, "echo", "hi")
            assert r.rc == 0 and r.out == "hi\n", r
            return r.seconds, r
        if name == "ctr-up":
            self.pod = self.next_id()
            r = self.ctr.cli("run", "-d", *self.ctr.runtime_opts(runtime, self.pod), self.ctr.image, self.pod,
                             "sleep", "1000")
            assert r.rc == 0, r
            return r.seconds, r
        if name == "ctr-down":
            total = 0.0
            for argv in (("task", "kill", "--all", "-s", "SIGKILL", self.pod), ("task", "rm", "-f", self.pod),
                         ("containers", "rm", self.pod)):
                r = self.ctr.cli(*argv)
                assert r.rc == 0, r
                total += r.seconds
            return total, r
        raise ValueError(name)


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f}" if values else "-"


def pair(a: list[float], b: list[float]) -> str:
    """runc's median | pyrunc's | the difference, in ms."""
    diff = f"{(statistics.median(b) - statistics.median(a)) * 1000:+.1f}" if a and b else ""
    return f"{median_ms(a)} | {median_ms(b)} | {diff}"


def keyed(calls: list[Call]) -> list[tuple[str, Call]]:
    """(verb#n, call): the n-th call of a verb in one run keeps its own column."""
    seen: dict[str, int] = {}
    out = []
    for c in calls:
        v = c.verb()
        seen[v] = seen.get(v, 0) + 1
        out.append((v if seen[v] == 1 else f"{v} #{seen[v]}", c))
    return out


def report(name: str, runs: dict[str, list[tuple[float, float, list[Call]]]]) -> list[str]:
    """runs[runtime] = [(t0 epoch, wall seconds, calls)]."""
    lines = [f"## {name}", ""]
    for rt in RUNTIMES:
        seqs: dict[tuple[str, ...], int] = {}
        for _, _, calls in runs[rt]:
            seq = tuple(f"{c.verb()} ({c.caller})" for c in calls)
            seqs[seq] = seqs.get(seq, 0) + 1
        for seq, n in sorted(seqs.items(), key=lambda kv: -kv[1]):
            lines.append(f"- {rt}, {n}/{len(runs[rt])} runs: " + (" → ".join(seq) or "(no calls)"))
    lines += ["", "| call | runc ms | pyrunc ms | diff | runc cpu ms | pyrunc cpu ms | cpu diff |",
              "|---|---|---|---|---|---|---|"]
    order: list[str] = []
    per: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    for rt in RUNTIMES:
        for _, _, calls in runs[rt]:
            for key, c in keyed(calls):
                if key not in order:
                    order.append(key)
                per.setdefault((rt, key), []).append(c.seconds)
                cpu.setdefault((rt, key), []).append(c.cpu)
                cpu.setdefault((rt, "all"), [])
    for key in order:
        lines.append(f"| {key} | {pair(per.get(('runc', key), []), per.get(('pyrunc', key), []))} | "
                     f"{pair(cpu.get(('runc', key), []), cpu.get(('pyrunc', key), []))} |")
    rows: dict[str, dict[str, list[float]]] = {}
    for rt in RUNTIMES:
        for t0, wall, calls in runs[rt]:
            inside = sum(min(c.end, t0 + wall) - c.start for c in calls if c.start < t0 + wall)
            after = sum(c.end - max(c.start, t0 + wall) for c in calls if c.end > t0 + wall)
            for row, value in (("runtime, total within the command", inside),
                               ("runtime, after the command returned", after),
                               ("engine, outside the runtime (wall - runtime)", wall - inside),
                               ("engine command, wall", wall)):
                rows.setdefault(row, {r: [] for r in RUNTIMES})[rt].append(value)
            cpu.setdefault((rt, "all"), []).append(sum(c.cpu for c in calls))
    for row, values in rows.items():
        spent = pair(cpu[("runc", "all")], cpu[("pyrunc", "all")]) if row.startswith("runtime, total") else "| |"
        lines.append(f"| **{row}** | {pair(values['runc'], values['pyrunc'])} | {spent} |")
    lines.append("")
    for rt in RUNTIMES:  # the run whose wall time is the median: where the time goes
        ordered = sorted(runs[rt], key=lambda r: r[1])
        t0, wall, calls = ordered[len(ordered) // 2]
        lines.append(f"timeline, {rt} (median run, wall {wall * 1000:.1f} ms; ms from the command's start):")
        for c in calls:
            argv = " ".join(c.argv[c.verb_index():])[:100]
            lines.append(f"    {(c.start - t0) * 1000:7.1f} → {(c.end - t0) * 1000:7.1f}  {c.seconds * 1000:6.1f} ms "
                         f"(cpu {c.cpu * 1000:4.0f})  rc={c.rc}  {c.caller}: {argv}")
    lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rounds", nargs="?", type=int, default=10)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--log", help="keep the raw call log in this file")
    parser.add_argument("--pyrunc", default=harness.PYRUNC,
                        help="the pyrunc launcher to compare with runc (default: this checkout's bin/pyrunc)")
    args = parser.parse_args()
    scenarios = [s for s in SCENARIOS if s in args.scenarios.split(",")]
    if "ctr-down" in scenarios and "ctr-up" not in scenarios:
        scenarios.insert(scenarios.index("ctr-down"), "ctr-up")
    tmp = tempfile.mkdtemp(prefix="pyrunc-engine-calls.")
    log = os.path.join(tmp, "calls.log")
    open(log, "w").close()
    engines = Engines(write_wrappers(tmp, log, {"runc": harness.RUNC, "pyrunc": args.pyrunc}))
    runs: dict[str, dict[str, list[tuple[float, float, list[Call]]]]] = {
        s: {rt: [] for rt in RUNTIMES} for s in scenarios}
    offset = 0
    old = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        engines.up()
        settle(log)
        offset = os.path.getsize(log)
        for i in range(args.rounds + 1):  # round 0 warms up (page cache, image layers, seals)
            for rt in (RUNTIMES if i % 2 == 0 else RUNTIMES[::-1]):
                for s in scenarios:
                    t0 = time.time()
                    wall, _ = engines.scenario(s, rt)
                    settle(log)
                    calls, offset = read_calls(log, offset)
                    if i > 0:
                        runs[s][rt].append((t0, wall, calls))
    finally:
        signal.signal(signal.SIGTERM, old)
        engines.down()
        if args.log:
            shutil.copy(log, args.log)
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()
    lines = [f"# Runtime calls per engine scenario, runc and {args.pyrunc}: {args.rounds} alternating rounds, load "
             f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} (1/5/15 min), {os.cpu_count()} cores, cgroupfs driver",
             "", "Times are medians over the rounds; each call is timed by the wrapper around the real runtime "
             "(its own bash start, ~1 ms, is outside the call's time). cpu: user + system time of the runtime "
             "and the children it waited for (1 ms resolution; the container's init is not one of them).", ""]
    for s in scenarios:
        lines += report(s, runs[s])
    print("\n".join(lines))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
