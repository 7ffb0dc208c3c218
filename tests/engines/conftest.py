"""End-to-end: docker, podman and ctr running containers on pyrunc.

The engines start once for this package (they stop when it ends, before the other suites run)
and every test checks that nothing was left behind: no pyrunc state, no new host mount, no
container cgroup and no pyrunc process. PYRUNC_E2E_RUNTIMES=pyrunc,runc runs every scenario
with runc too, to check the tests themselves against the reference.
"""

import os
import time

import pytest
from harness import PYRUNC, REPORT_DIR, STATE, is_engine_storage, missing_tools, start_all, stop_all
from helpers import mountpoints, proc_stat

RUNTIMES = os.environ.get("PYRUNC_E2E_RUNTIMES", "pyrunc").split(",")
ENGINES = ("docker", "podman", "ctr")
# the cgroup parents each engine puts its containers under (cgroupfs driver)
CGROUP_PARENTS = ("docker", "libpod_parent", "default")


def pytest_generate_tests(metafunc):
    if "runtime" in metafunc.fixturenames:
        metafunc.parametrize("runtime", RUNTIMES)


@pytest.fixture(scope="package")
def engines():
    missing = missing_tools()
    if missing:
        pytest.fail(f"engines not installed ({', '.join(missing)}): run `make setup-engines`")
    docker, podman, ctr = start_all()
    yield {"docker": docker, "podman": podman, "ctr": ctr}
    stop_all()


def container_cgroups():
    found = set()
    for controller in os.listdir("/sys/fs/cgroup"):
        for parent in CGROUP_PARENTS:
            base = os.path.join("/sys/fs/cgroup", controller, parent)
            try:  # podman keeps conmon in libpod_parent/conmon for the engine's whole life
                found.update(os.path.join(base, d.name) for d in os.scandir(base)
                             if d.is_dir() and d.name != "conmon")
            except (FileNotFoundError, NotADirectoryError):
                pass
    return found


ENGINE_COMMS = {"containerd-shim", "conmon", "podman", "dockerd", "containerd"}


def pyrunc_processes():
    """pyrunc processes (CLI calls, or inits not yet started) whose parent is an engine's."""
    found = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if PYRUNC.encode() not in f.read():
                        continue
            except OSError:
                continue
            me, parent = proc_stat(pid), None
            if me is not None:
                parent = proc_stat(me[2])
            if parent is not None and parent[0] in ENGINE_COMMS:
                found.add(int(pid))
    return found


def container_mounts():
    return [p for p in mountpoints() if not is_engine_storage(p)]


def state_dirs(engine, runtime):
    root = engine.state_root(runtime)
    try:
        return sorted(d for d in os.listdir(root) if not d.startswith("@"))
    except FileNotFoundError:
        return []


def snapshot(engine, runtime):
    return {"cgroups": container_cgroups(), "processes": pyrunc_processes(), "mounts": container_mounts(),
            "state": state_dirs(engine, runtime)}


@pytest.fixture
def leaks(engines):
    """Call with (engine, runtime) at the start of a test; checks at its end that all is gone."""
    taken = []

    def take(engine, runtime):
        taken.append((engine, runtime, snapshot(engine, runtime)))

    yield take
    for engine, runtime, before in taken:
        engine.cleanup()
        # engines tear down asynchronously (podman's cleanup runs after the client returns)
        deadline = time.monotonic() + 10
        while True:
            after = snapshot(engine, runtime)
            if after == before or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert after["state"] == before["state"], f"{runtime} state left in {engine.state_root(runtime)}"
        assert after["cgroups"] == before["cgroups"], f"cgroups left: {after['cgroups'] ^ before['cgroups']}"
        assert not after["processes"] - before["processes"], "pyrunc processes left"
        assert after["mounts"] == before["mounts"], \
            f"host mounts changed: {set(after['mounts']) ^ set(before['mounts'])}"


# --- the engine x scenario matrix, printed at the end of the run (and kept for the issue notes)

_results = {}


def pytest_runtest_logreport(report):
    if SYSTEMD_MODULE in report.nodeid:
        return systemd_logreport(report)
    if "engines" not in report.nodeid or (report.when != "call" and report.passed):
        return
    name = report.nodeid.split("::")[-1]
    scenario, _, params = name.partition("[")
    parts = params.rstrip("]").split("-")
    # a one-engine scenario (test_docker_..., test_podman_...) has no engine parameter
    only = scenario.removeprefix("test_").split("_")[0]
    engine = next((p for p in parts if p in ENGINES), only if only in ENGINES else "?")
    runtime = next((p for p in parts if p in RUNTIMES), "?")
    key = (scenario.removeprefix("test_"), f"{engine} / {runtime}")
    outcome = "skipped" if report.skipped else ("passed" if report.passed else "FAILED")
    if outcome != "passed" or key not in _results:
        _results[key] = outcome


def pytest_terminal_summary(terminalreporter):
    systemd_summary(terminalreporter)
    if not _results:
        return
    columns = sorted({params for _, params in _results})
    scenarios = list(dict.fromkeys(s for s, _ in _results))
    lines = ["| scenario | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for s in scenarios:
        lines.append(f"| {s} | " + " | ".join(_results.get((s, c), "n/a") for c in columns) + " |")
    terminalreporter.write_sep("-", "engine x scenario")
    for line in lines:
        terminalreporter.write_line(line)
    os.makedirs(os.path.join(STATE, "report"), exist_ok=True)
    with open(os.path.join(STATE, "report", "matrix.md"), "w") as f:
        f.write("\n".join(lines) + "\n")



# --- the systemd-driver matrix (test_engines_systemd.py, in the --systemd VM): engine x scenario x
# runtime -> outcome and the scenario's time; written to build/vm for the issue notes

SYSTEMD_MODULE = "test_engines_systemd.py"
_systemd = {}  # (scenario, "engine / runtime") -> (outcome, seconds)


def systemd_logreport(report):
    name = report.nodeid.split("::")[-1]
    scenario, _, params = name.partition("[")
    if not params:
        return
    engine, _, runtime = params.rstrip("]").partition("-")
    key = (scenario.removeprefix("test_"), f"{engine} / {runtime}")
    if report.when == "call" or not report.passed:
        outcome = ("xfail" if hasattr(report, "wasxfail") else "skip" if report.skipped
                   else "pass" if report.passed else "FAIL")
        if key not in _systemd or outcome == "FAIL":
            seconds = report.duration + (_systemd[key][1] if key in _systemd else 0)
            _systemd[key] = (outcome, seconds)


def systemd_summary(terminalreporter):
    if all(outcome == "skip" for outcome, _ in _systemd.values()):
        return  # not the VM: keep the VM's report
    columns = list(dict.fromkeys(c for _, c in _systemd))
    scenarios = list(dict.fromkeys(s for s, _ in _systemd))
    lines = ["| scenario | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for s in scenarios:
        cells = []
        for c in columns:
            outcome, seconds = _systemd.get((s, c), ("n/a", None))
            cells.append(outcome if seconds is None else f"{outcome} {seconds:.1f}s")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    note = ("engines on their default (systemd) cgroup driver, cgroup v2 host with systemd as PID 1; "
            "time: the scenario's, in the VM (software emulation)")
    terminalreporter.write_sep("-", "engine x scenario x runtime (systemd cgroup driver)")
    for line in [note, *lines]:
        terminalreporter.write_line(line)
    os.makedirs(REPORT_DIR, exist_ok=True)
    with open(os.path.join(REPORT_DIR, "engines-systemd-matrix.md"), "w") as f:
        f.write(note + "\n\n" + "\n".join(lines) + "\n")
