"""The engines on their default settings on a modern host: cgroup v2 with systemd as PID 1.

Runs in the --systemd VM of `make test-v2-systemd` and skips elsewhere (PYRUNC_REQUIRE_SYSTEMD=1
makes that an error). Each engine keeps its default cgroup driver, which is systemd there:
docker puts a container in system.slice:docker:<id> (the scope docker-<id>.scope), podman in
machine.slice:libpod:<id> (libpod-<id>.scope); ctr gets containerd's runc options BinaryName and
SystemdCgroup = true with system.slice:ctr:<id> (ctr-<id>.scope). The runtime is told
--systemd-cgroup and asks systemd (D-Bus) for the scope.

For each engine and runtime (runc, the reference, and pyrunc) one container goes through the
scenarios in order: a `run --rm echo hi` of its own, then a detached container with a 64 MiB
memory limit, exec into it, pause/unpause, stop (and rm), and at the end nothing may be left:
no unit, no cgroup, no mount, no runtime state. The engine x scenario x runtime matrix (outcome
and time) is printed at the end and written to build/vm/engines-systemd-matrix.md.
"""

import os
import subprocess
import time
import uuid

import pytest
from harness import REPORT_DIR, STATE, is_engine_storage, missing_tools, start_all, stop_all
from helpers import mountpoints

ENGINES = ("docker", "podman", "ctr")
RUNTIMES = ("runc", "pyrunc")
MEMORY = 64 << 20
SERVICE = ("sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait")


def systemd_host():
    return os.path.isdir("/run/systemd/system") and os.path.exists("/sys/fs/cgroup/cgroup.controllers") \
        and os.readlink("/proc/1/exe").endswith("/systemd")


if os.environ.get("PYRUNC_REQUIRE_SYSTEMD") and not systemd_host():
    raise RuntimeError("PYRUNC_REQUIRE_SYSTEMD is set but this host is not cgroup v2 run by systemd")
pytestmark = [pytest.mark.skipif(not systemd_host(),
                                 reason="needs a cgroup v2 host with systemd as PID 1: `make test-v2-systemd`"),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


@pytest.fixture(scope="module")
def sd_engines():
    missing = missing_tools()
    if missing:
        pytest.fail(f"engines not installed ({', '.join(missing)}): run `make setup-engines`")
    docker, podman, ctr = start_all(systemd=True)
    yield {"docker": docker, "podman": podman, "ctr": ctr}
    keep_logs()
    stop_all()


def keep_logs():
    """The engines' logs go next to the matrix (their state is on the VM's tmpfs)."""
    out = os.path.join(REPORT_DIR, "engine-logs")
    os.makedirs(out, exist_ok=True)
    for rel in ("docker/dockerd.log", "containerd/containerd.log", "podman/events.log"):
        src = os.path.join(STATE, rel)
        if os.path.exists(src):
            with open(src, "rb") as f, open(os.path.join(out, rel.replace("/", "-")), "wb") as g:
                f.seek(max(0, os.fstat(f.fileno()).st_size - (1 << 20)))
                g.write(f.read())


def systemctl(*args):
    return subprocess.run(["systemctl", "--no-pager", *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL).stdout


def container_units():
    """Every scope an engine made for a container (docker-, libpod-, libpod-conmon-, ctr-), any state."""
    units = set()
    for line in systemctl("list-units", "--all", "--plain", "--no-legend", "--type=scope").splitlines():
        unit = line.split()[0] if line.split() else ""
        if unit.startswith(("docker-", "libpod-", "ctr-e2e-")):
            units.add(unit)
    return units


def container_cgroups():
    found = set()
    for parent in ("system.slice", "machine.slice"):
        try:
            found.update(os.path.join(parent, d.name) for d in os.scandir(f"/sys/fs/cgroup/{parent}")
                         if d.is_dir() and d.name.startswith(("docker-", "libpod-", "ctr-")))
        except FileNotFoundError:
            pass
    return found


def state_dirs(engine, runtime):
    try:
        return sorted(d for d in os.listdir(engine.state_root(runtime)) if not d.startswith("@"))
    except FileNotFoundError:
        return []


def snapshot(engine, runtime):
    return {"units": container_units(), "cgroups": container_cgroups(), "state": state_dirs(engine, runtime),
            "mounts": [p for p in mountpoints() if not is_engine_storage(p)]}


class Case:
    """One engine and one runtime: the container the scenarios share, and what was there before."""

    def __init__(self, engine, runtime):
        self.engine, self.runtime = engine, runtime
        self.name = f"e2e-{uuid.uuid4().hex[:12]}"
        self.before = snapshot(engine, runtime)
        self.unit = self.cgroup = self.pid = None

    @staticmethod
    def ok(result):
        assert result.rc == 0, result
        return result

    def started(self):
        assert self.pid, "the container of this engine and runtime did not start (see memory_limit)"


@pytest.fixture(scope="module", params=[(e, r) for e in ENGINES for r in RUNTIMES],
                ids=[f"{e}-{r}" for e in ENGINES for r in RUNTIMES])
def case(request, sd_engines):
    engine_name, runtime = request.param
    c = Case(sd_engines[engine_name], runtime)
    yield c
    c.engine.cleanup()


def cgroup_file(case, name):
    with open(f"/sys/fs/cgroup/{case.cgroup}/{name}") as f:
        return f.read()


def test_echo(case):
    assert case.engine.cgroup_driver() == "systemd"  # the engine's default on this host
    r = case.ok(case.engine.run(case.runtime, "echo", "hi"))
    assert r.out == "hi\n", r


def test_memory_limit(case):
    e = case.engine
    case.ok(e.run_detached(case.runtime, case.name, *SERVICE, opts=e.memory_opts(MEMORY)))
    case.pid = e.host_pid(case.name)
    case.unit = e.unit(case.name)
    case.cgroup = f"{e.slice}/{case.unit}"
    # the init is in the scope systemd made for it
    with open(f"/proc/{case.pid}/cgroup") as f:
        assert f.read() == f"0::/{case.cgroup}\n"
    assert systemctl("show", case.unit, "-p", "ActiveState").strip() == "ActiveState=active"
    assert int(cgroup_file(case, "memory.max")) == MEMORY
    assert systemctl("show", case.unit, "-p", "MemoryMax").strip() == f"MemoryMax={MEMORY}"
    if e.name == "ctr":
        # ctr's default spec mounts no cgroup file system and makes no cgroup namespace: inside,
        # the container sees the path of its scope only
        inside = case.ok(e.exec(case.name, "cat", "/proc/self/cgroup")).out
        assert inside == f"0::/{case.cgroup}\n", inside
    else:  # docker and podman mount cgroup2 in a cgroup namespace: the scope is the container's /
        inside = case.ok(e.exec(case.name, "cat", "/proc/self/cgroup", "/sys/fs/cgroup/memory.max")).out
        assert inside.split() == ["0::/", str(MEMORY)], inside


def test_exec(case):
    case.started()
    r = case.ok(case.engine.exec(case.name, "sh", "-c", "cat /proc/1/cgroup /proc/self/cgroup; "
                                                        "readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt"))
    init_cgroup, own_cgroup, pidns, mntns = r.out.split()
    # the exec'd process joined the container's cgroup (the scope) and namespaces
    assert own_cgroup == init_cgroup and own_cgroup in ("0::/", f"0::/{case.cgroup}"), r
    assert [pidns, mntns] == [os.readlink(f"/proc/{case.pid}/ns/pid"), os.readlink(f"/proc/{case.pid}/ns/mnt")]
    assert case.engine.exec(case.name, "sh", "-c", "exit 4").rc == 4


def test_pause_unpause(case):
    case.started()
    case.ok(case.engine.pause(case.name))
    assert "frozen 1" in cgroup_file(case, "cgroup.events").splitlines()
    case.ok(case.engine.unpause(case.name))
    assert "frozen 0" in cgroup_file(case, "cgroup.events").splitlines()
    assert case.ok(case.engine.exec(case.name, "echo", "alive")).out == "alive\n"


def test_stop(case):
    case.started()
    case.ok(case.engine.stop(case.name))
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{case.pid}/cgroup") and time.monotonic() < deadline:
        time.sleep(0.1)  # a zombie until the shim/conmon reaps it
    assert not os.path.exists(f"/proc/{case.pid}/cgroup"), "the init survived stop"
    case.ok(case.engine.rm(case.name))


def test_nothing_left(case):
    """After the scenarios (even failed ones): no scope, no cgroup, no mount, no runtime state."""
    case.engine.cleanup()
    deadline = time.monotonic() + 15  # engines tear down asynchronously (podman's cleanup process)
    while True:
        after = snapshot(case.engine, case.runtime)
        if after == case.before or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert after["units"] == case.before["units"], f"units left: {after['units'] - case.before['units']}"
    assert after["cgroups"] == case.before["cgroups"], \
        f"cgroups left: {after['cgroups'] - case.before['cgroups']}"
    if case.unit:
        assert not os.path.exists(f"/sys/fs/cgroup/{case.cgroup}")
        assert "LoadState=not-found" in systemctl("show", case.unit, "-p", "LoadState")
    assert after["mounts"] == case.before["mounts"], \
        f"mounts changed: {set(after['mounts']) ^ set(case.before['mounts'])}"
    assert after["state"] == case.before["state"], \
        f"{case.runtime} state left in {case.engine.state_root(case.runtime)}: {after['state']}"
