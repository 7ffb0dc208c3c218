"""Cgroups through the real CLI: real containers, effects checked inside them and on the host.

Where a container's cgroups should be is computed here from /proc/self/mountinfo and
/proc/self/cgroup, not with pyrunc.cgroups, so a wrong path in the runtime fails a test.
The `cg` fixture force-deletes the test's containers, then removes every cgroup directory
(and parent such as /docker) the test made, even when the test failed.
"""

import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid

import pytest
from helpers import alive, children, wait_for  # noqa: E402

ENGINE_CONFIGS = os.environ.get("PYRUNC_ENGINE_CONFIGS") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    "shared", "engine-configs")
MB = 1 << 20
# runc's v1 hierarchies (libcontainer/cgroups/fs) and "" for the cgroup2 one
KNOWN = {"cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb", "net_cls",
         "net_prio", "perf_event", "freezer", "rdma", "name=systemd", ""}


# ---- the host's hierarchies, read independently of pyrunc.cgroups ---------------------------

def _host_mounts():
    """/proc/PID/cgroup controller (each of "cpu,cpuacct") or "" -> (mountpoint, root)."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, opts = fields[sep + 1], fields[sep + 3].split(",")
            if fstype == "cgroup2":
                out.setdefault("", (fields[4], fields[3]))
            elif fstype == "cgroup":
                for opt in opts:
                    out.setdefault(opt, (fields[4], fields[3]))
    return out


def proc_cgroup(pid="self"):
    """{controller field as in /proc/PID/cgroup ("cpu,cpuacct", "" for v2): path}."""
    with open(f"/proc/{pid}/cgroup") as f:
        return {line.split(":", 2)[1]: line.split(":", 2)[2].rstrip("\n") for line in f if line.strip()}


MOUNTS = _host_mounts()
OWN = proc_cgroup()
FIELDS = [f for f in OWN if all(c in KNOWN for c in f.split(","))]
HYBRID = "" in FIELDS and len(FIELDS) > 1

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not any("memory" in f.split(",") for f in FIELDS),
                       reason="written for a cgroup v1 (legacy or hybrid) host"),
]


def ctrl_field(controller):
    return next(f for f in FIELDS if controller in f.split(","))


def host_dir(field, path):
    """The host directory of `path` (as /proc/PID/cgroup shows it) in that field's hierarchy."""
    mount, root = MOUNTS[field.split(",")[0]]
    if root != "/" and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    return os.path.normpath(mount + "/" + path)


def _clean(path):
    return "/" + os.path.normpath("/" + path).lstrip("/")


def expected_paths(cgroups_path, cid):
    """Where runc 1.1's cgroupfs driver puts a container, per hierarchy field: absolute paths
    as they are, relative ones below our own cgroup in each v1 hierarchy and below the mount's
    root in a hybrid host's cgroup2 hierarchy; no path = relative "<id>", as runc."""
    inner = cgroups_path or cid
    out = {}
    for field in FIELDS:
        if inner.startswith("/"):
            out[field] = _clean(inner)
        elif field == "" and HYBRID:
            out[field] = _clean(inner)
        else:
            out[field] = _clean(OWN[field] + "/" + inner)
    return out


def ctr_file(expected, controller, name):
    field = ctrl_field(controller)
    with open(os.path.join(host_dir(field, expected[field]), name)) as f:
        return f.read().strip()




def read_when(path, timeout=10.0):
    """Contents of a file the container writes, once it exists and ends with a newline."""
    def ready():
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        return text if text.endswith("\n") else None
    return wait_for(ready, timeout, what=path)


def state(rt, cid):
    r = rt("state", cid)
    assert r.rc == 0, r.err
    return json.loads(r.out)


def hex64():
    return uuid.uuid4().hex + uuid.uuid4().hex


# ---- fixtures ------------------------------------------------------------------------------

class Cgroups:
    """Directories a test expects a container to get; all removed (with parents the test made)
    after the test's containers were force-deleted."""

    def __init__(self):
        self.dirs, self.parents = [], []

    def expect(self, cgroups_path, cid):
        exp = expected_paths(cgroups_path, cid)
        for field, path in exp.items():
            d = host_dir(field, path)
            self.dirs.append(d)
            mount = MOUNTS[field.split(",")[0]][0]
            p = os.path.dirname(d)
            while p != mount and p.startswith(mount) and not os.path.exists(p):
                self.parents.append(p)
                p = os.path.dirname(p)
        return exp

    def track_pid(self, pid):
        """The cgroups of a process some runtime made (e.g. runc's default)."""
        for field, path in proc_cgroup(pid).items():
            if field in FIELDS and path != OWN[field] and path != "/":
                self.dirs.append(host_dir(field, path))

    def cleanup(self):
        for d in sorted(set(self.dirs), key=lambda p: p.count("/"), reverse=True):
            _remove_cgroup(d)
        for p in sorted(set(self.parents), key=lambda p: p.count("/"), reverse=True):
            try:
                os.rmdir(p)
            except OSError:
                pass

    def leftovers(self):
        return [d for d in set(self.dirs) if os.path.exists(d)]


def _remove_cgroup(d):
    if not os.path.isdir(d):
        return
    for sub in [e.path for e in os.scandir(d) if e.is_dir(follow_symlinks=False)]:
        _remove_cgroup(sub)
    try:
        with open(os.path.join(d, "freezer.state"), "w") as f:
            f.write("THAWED")
    except OSError:
        pass
    deadline = time.monotonic() + 5
    while True:
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)


@pytest.fixture
def cg(pyrunc):
    c = Cgroups()
    yield c
    alive_at_teardown = pyrunc.cleanup()  # before the pyrunc fixture: cgroups go after this
    before = c.leftovers()
    c.cleanup()
    assert not alive_at_teardown, f"containers still alive at teardown: {alive_at_teardown}"
    assert not before, f"cgroups left behind after delete: {before}"


def share(bundle, tmp_path):
    """A writable host directory at the container's /tmp (the rootfs is read-only)."""
    d = tmp_path / f"share-{os.path.basename(bundle.path)}"
    d.mkdir()
    bundle.config["mounts"].append({"destination": "/tmp", "type": "bind", "source": str(d),
                                    "options": ["rbind", "rw"]})
    bundle.write()
    return str(d)


def no_cgroupns(bundle):
    bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "cgroup"]
    return bundle


def create(rt, bundle, cid, *, start=False):
    bundle.write()
    r = rt("create", "--bundle", bundle.path, cid)
    assert r.rc == 0, r.err
    if start:
        r = rt("start", cid)
        assert r.rc == 0, r.err
    return state(rt, cid)["pid"]


def gone(expected):
    return [host_dir(f, p) for f, p in expected.items() if os.path.exists(host_dir(f, p))]


# ---- cgroupsPath -----------------------------------------------------------------------------

PATH_STYLES = {
    "docker": lambda cid: f"/docker/{hex64()}",
    "podman": lambda cid: f"/libpod_parent/libpod-{hex64()}",
    "containerd": lambda cid: f"/default/{cid}",
    "relative": lambda cid: f"pyrunc-tests/{cid}",
    "absent": lambda cid: None,
}


@pytest.mark.parametrize("style", PATH_STYLES)
def test_cgroups_path_joined_before_the_program_runs(pyrunc, make_bundle, cid, tmp_path, cg, style):
    b = make_bundle("sh", "-c", "cat /proc/self/cgroup > /tmp/inside.tmp; mv /tmp/inside.tmp /tmp/inside")
    b.linux["namespaces"].append({"type": "cgroup"})  # runc's template has none
    out = share(b, tmp_path)
    path = PATH_STYLES[style](cid)
    if path is not None:
        b.linux["cgroupsPath"] = path
    exp = cg.expect(path, cid)
    pid = create(pyrunc, b, cid)
    # created, not started: the init already sits in its cgroup in every hierarchy
    assert {f: proc_cgroup(pid)[f] for f in FIELDS} == exp
    for field, p in exp.items():
        with open(os.path.join(host_dir(field, p), "cgroup.procs")) as f:
            assert str(pid) in f.read().split(), (field, p)
    if style == "absent":
        assert exp[ctrl_field("pids")].endswith(f"/{cid}")  # runc's default: the id
    assert pyrunc("start", cid).rc == 0
    inside = read_when(os.path.join(out, "inside"))
    # the cgroup namespace's root is the container's cgroup, in every hierarchy
    lines = dict(line.split(":", 2)[1:] for line in inside.splitlines())
    assert {f: lines.get(f) for f in FIELDS} == {f: "/" for f in FIELDS}
    wait_for(lambda: state(pyrunc, cid)["status"] == "stopped", what="stopped")
    r = pyrunc("delete", cid)
    assert r.rc == 0, r.err
    assert gone(exp) == []


@pytest.mark.parametrize("style", ["docker", "relative"])
def test_without_cgroupns_the_full_path_shows(pyrunc, make_bundle, cid, tmp_path, cg, style):
    b = no_cgroupns(make_bundle("sh", "-c", "cat /proc/self/cgroup > /tmp/i.tmp; mv /tmp/i.tmp /tmp/i"))
    out = share(b, tmp_path)
    b.linux["cgroupsPath"] = PATH_STYLES[style](cid)
    exp = cg.expect(b.linux["cgroupsPath"], cid)
    create(pyrunc, b, cid, start=True)
    lines = dict(line.split(":", 2)[1:] for line in read_when(os.path.join(out, "i")).splitlines())
    assert {f: lines.get(f) for f in FIELDS} == exp
    if style == "relative" and OWN[ctrl_field("memory")] != "/":
        assert lines[ctrl_field("memory")].startswith(OWN[ctrl_field("memory")] + "/")


# ---- memory ----------------------------------------------------------------------------------

class EventStream:
    """`RUNTIME events --interval 1s ID` in the background; lines parsed as they arrive."""

    def __init__(self, rt, cid):
        self.proc = subprocess.Popen([*rt.argv, "--root", rt.root, "events", "--interval", "1s", cid],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line)

    def next(self, pred, timeout=15.0):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            event = json.loads(line)
            seen.append(event.get("type"))
            if pred(event):
                return event
        err = self.proc.stderr.read() if self.proc.poll() is not None else "(still running)"
        raise AssertionError(f"no matching event in {timeout}s; got {seen}; stderr: {err}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def _kernel_counts_failures(memory):
    """Whether this kernel raises a failcnt when a v1 cgroup configured like `memory` hits its
    limit. This host's 6.18 counts memory.failcnt, but never memory.memsw.failcnt, and with
    memory+swap == memory it is memory+swap that fails first: both stay 0."""
    field = ctrl_field("memory")
    d = host_dir(field, OWN[field] + f"/pyrunc-failcnt-{uuid.uuid4().hex[:8]}")
    os.mkdir(d)
    try:
        with open(os.path.join(d, "memory.limit_in_bytes"), "w") as f:
            f.write(str(4 * MB))
        if "swap" in memory:
            with open(os.path.join(d, "memory.memsw.limit_in_bytes"), "w") as f:
                f.write(str(4 * MB))
        child = subprocess.run(["sh", "-c", f"echo $$ > {d}/cgroup.procs && "
                                            "exec dd if=/dev/zero of=/dev/null bs=16M count=1"],
                               capture_output=True)
        assert child.returncode != 0  # killed
        with open(os.path.join(d, "memory.failcnt")) as f, \
                open(os.path.join(d, "memory.memsw.failcnt")) as g:
            return int(f.read()) + int(g.read()) > 0
    finally:
        os.rmdir(d)


@pytest.mark.parametrize("memory", [{"limit": 32 * MB, "swap": 32 * MB}, {"limit": 32 * MB}],
                         ids=["memsw", "limit-only"])
@pytest.mark.parametrize("runtime", ["pyrunc", "runc"])
def test_memory_limit_oom_kill_and_events(request, make_bundle, cid, tmp_path, cg, runtime, memory):
    """A 64 MiB buffer in a 32 MiB cgroup without swap: the kernel kills dd; `events` says so.
    Run against runc too: the same effects and the same event shapes."""
    rt = request.getfixturevalue(runtime)
    b = make_bundle("sh", "-c",
                    "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                    "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes > /tmp/limits; "
                    "while [ ! -e /tmp/go ]; do sleep 0.05; done; "
                    "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/tmp/dd; echo $? > /tmp/rc; "
                    "sleep 60")
    out = share(b, tmp_path)
    b.linux["resources"]["memory"] = memory
    pid = create(rt, b, cid, start=True)
    cg.track_pid(pid)
    limits = read_when(os.path.join(out, "limits")).split()
    assert limits[0] == str(32 * MB)
    assert limits[1] == str(32 * MB) if "swap" in memory else int(limits[1]) > 1 << 60
    events = EventStream(rt, cid)
    try:
        first = events.next(lambda e: e["type"] == "stats")
        assert first["id"] == cid and first["data"]["memory"]["usage"]["limit"] == 32 * MB
        open(os.path.join(out, "go"), "w").close()
        assert read_when(os.path.join(out, "rc"), timeout=30).strip() == "137"  # SIGKILL
        oom = events.next(lambda e: e["type"] == "oom")
        assert oom == {"type": "oom", "id": cid}
    finally:
        events.stop()
    assert alive(pid)  # the init itself was not the victim
    with open(os.path.join(host_dir(ctrl_field("memory"), proc_cgroup(pid)[ctrl_field("memory")]),
                           "memory.oom_control")) as f:
        assert int(dict(line.split() for line in f)["oom_kill"]) >= 1
    r = rt("events", "--stats", cid)
    assert r.rc == 0, r.err
    stats = json.loads(r.out)
    assert (stats["type"], stats["id"]) == ("stats", cid)
    data = stats["data"]["memory"]
    assert data["usage"]["limit"] == 32 * MB
    assert data["swap"]["limit"] == 32 * MB if "swap" in memory else data["swap"]["limit"] > 1 << 60
    assert data["usage"]["max"] >= 30 * MB  # it reached the limit
    # failcnt as the kernel counts it (see _kernel_counts_failures)
    mem_dir = {ctrl_field("memory"): proc_cgroup(pid)[ctrl_field("memory")]}
    host = [int(ctr_file(mem_dir, "memory", n)) for n in ("memory.failcnt", "memory.memsw.failcnt")]
    assert [data["usage"]["failcnt"], data["swap"]["failcnt"]] == host
    if _kernel_counts_failures(memory):
        assert sum(host) > 0
    elif "swap" not in memory:
        pytest.fail("this kernel counts no memory.failcnt at all")
    assert rt("delete", "--force", cid).rc == 0
    assert rt.ids() == []


# ---- pids -------------------------------------------------------------------------------------

def test_pids_limit_stops_a_fork_bomb(pyrunc, make_bundle, cid, tmp_path, cg):
    b = make_bundle("sh", "-c",
                    "sh -c 'for i in $(seq 50); do sleep 5 & done; wait' 2>/tmp/err; "
                    "cat /sys/fs/cgroup/pids/pids.current /sys/fs/cgroup/pids/pids.max > /tmp/pids; "
                    "sleep 60")
    out = share(b, tmp_path)
    b.linux["cgroupsPath"] = f"/default/{cid}"
    b.linux["resources"]["pids"] = {"limit": 20}
    exp = cg.expect(b.linux["cgroupsPath"], cid)
    create(pyrunc, b, cid, start=True)
    current, maximum = read_when(os.path.join(out, "pids"), timeout=20).split()
    assert maximum == "20" and int(current) <= 20
    with open(os.path.join(out, "err")) as f:
        err = f.read()
    assert "can't fork" in err or "Resource temporarily unavailable" in err, err
    assert int(ctr_file(exp, "pids", "pids.current")) <= 20
    assert int(ctr_file(exp, "pids", "pids.events").split()[1]) > 0  # "max N": refused forks
    stats = json.loads(pyrunc("events", "--stats", cid).out)["data"]["pids"]
    assert stats["limit"] == 20 and 0 < stats["current"] <= 20
    assert pyrunc("delete", "--force", cid).rc == 0
    assert gone(exp) == []


def test_kernel_tcp_limit_is_applied_where_the_kernel_has_it(pyrunc, make_bundle, cid, tmp_path, cg):
    """linux.resources.memory.kernelTCP reaches memory.kmem.tcp.limit_in_bytes on cgroup v1
    (runc 1.1 ignores it with a warning; the issue asks for it where the kernel has it)."""
    if not os.path.exists("/sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes"):
        pytest.skip("no cgroup v1 memory.kmem.tcp on this host")
    b = make_bundle("sh", "-c", "cat /sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes > /tmp/tcp; "
                    "sleep 60")
    out = share(b, tmp_path)
    b.linux["cgroupsPath"] = f"/default/{cid}"
    b.linux["resources"]["memory"] = {"kernelTCP": 16 * MB}
    exp = cg.expect(b.linux["cgroupsPath"], cid)
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 0, r.err
    assert "Kernel memory" not in r.err  # applied, so no "ignored" warning
    assert pyrunc("start", cid).rc == 0
    assert read_when(os.path.join(out, "tcp"), timeout=20).strip() == str(16 * MB)
    assert ctr_file(exp, "memory", "memory.kmem.tcp.limit_in_bytes").strip() == str(16 * MB)
    assert pyrunc("delete", "--force", cid).rc == 0
    assert gone(exp) == []


# ---- cpu, cpuset, blkio, hugetlb --------------------------------------------------------------

def _blkio_weight_file():
    """blkio.weight (CFQ) or blkio.bfq.weight (BFQ), if a fresh sub-cgroup here has one."""
    field = ctrl_field("blkio")
    probe = host_dir(field, OWN[field] + f"/pyrunc-probe-{uuid.uuid4().hex[:8]}")
    os.mkdir(probe)
    try:
        files = set(os.listdir(probe))
    finally:
        os.rmdir(probe)
    return next((n for n in ("blkio.weight", "blkio.bfq.weight") if n in files), None)


def test_cpu_cpuset_and_blkio_values(pyrunc, make_bundle, cid, tmp_path, cg):
    b = make_bundle("sh", "-c",
                    "cd /sys/fs/cgroup; cat cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us "
                    "cpuset/cpuset.cpus > /tmp/v.tmp; grep Cpus_allowed_list /proc/self/status "
                    ">> /tmp/v.tmp; mv /tmp/v.tmp /tmp/v")
    out = share(b, tmp_path)
    b.linux["cgroupsPath"] = f"/docker/{hex64()}"
    weight_file = _blkio_weight_file()
    b.linux["resources"].update(cpu={"shares": 512, "quota": 25000, "period": 50000, "cpus": "0",
                                     "mems": "0"})
    if weight_file:
        b.linux["resources"]["blockIO"] = {"weight": 300}
    exp = cg.expect(b.linux["cgroupsPath"], cid)
    create(pyrunc, b, cid)
    assert [ctr_file(exp, "cpu", n) for n in ("cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us")] \
        == ["512", "25000", "50000"]
    assert ctr_file(exp, "cpuset", "cpuset.cpus") == "0"
    assert ctr_file(exp, "cpuset", "cpuset.mems") == "0"
    if weight_file:
        # blkio.bfq.weight reads "default 300"
        assert ctr_file(exp, "blkio", weight_file).split()[-1] == "300"
    assert pyrunc("start", cid).rc == 0
    assert read_when(os.path.join(out, "v")).splitlines() == \
        ["512", "25000", "50000", "0", "Cpus_allowed_list:\t0"]
    wait_for(lambda: state(pyrunc, cid)["status"] == "stopped", what="stopped")
    assert pyrunc("delete", cid).rc == 0
    assert gone(exp) == []


def _hugetlb():
    """Where a hugetlb controller is: a v1 hierarchy, the cgroup2 one (a hybrid host's
    leftover controllers) or nowhere; and the host's page sizes ("hugepages-2048kB" -> "2MB")."""
    try:
        sizes = [int(n[len("hugepages-"):-2]) for n in os.listdir("/sys/kernel/mm/hugepages")]
    except FileNotFoundError:
        sizes = []
    names = [f"{kb >> 20}GB" if kb >= 1 << 20 else f"{kb >> 10}MB" for kb in sizes]
    if any("hugetlb" in f.split(",") for f in FIELDS):
        return "v1", names
    if "" in FIELDS:
        with open(os.path.join(MOUNTS[""][0], "cgroup.controllers")) as f:
            if "hugetlb" in f.read().split():
                return "v2", names
    return None, names


def test_hugepage_limits(pyrunc, make_bundle, cid, cg):
    version, sizes = _hugetlb()
    if version is None or "2MB" not in sizes:
        pytest.skip("no hugetlb hierarchy with 2MB pages on this host")
    b = make_bundle("sleep", "30")
    b.linux["cgroupsPath"] = f"/libpod_parent/libpod-{hex64()}"
    b.linux["resources"]["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4 * 2 * MB}]
    exp = cg.expect(b.linux["cgroupsPath"], cid)
    create(pyrunc, b, cid)
    if version == "v1":
        assert ctr_file(exp, "hugetlb", "hugetlb.2MB.limit_in_bytes") == str(8 * MB)
    else:  # a hybrid host whose hugetlb lives in the cgroup2 hierarchy
        with open(os.path.join(host_dir("", exp[""]), "hugetlb.2MB.max")) as f:
            assert f.read().strip() == str(8 * MB)
    stats = json.loads(pyrunc("events", "--stats", cid).out)["data"]
    assert "2MB" in stats["hugetlb"]
    assert pyrunc("delete", "--force", cid).rc == 0
    assert gone(exp) == []


# ---- pause / resume ---------------------------------------------------------------------------

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/c.tmp; mv /tmp/c.tmp /tmp/c; sleep 0.02; done"


def _counter(out):
    return int(read_when(os.path.join(out, "c")))


def _advances(out, wait=0.4):
    first = _counter(out)
    time.sleep(wait)
    return _counter(out) > first


def test_pause_freezes_and_resume_thaws(pyrunc, make_bundle, cid, tmp_path, cg):
    b = make_bundle("sh", "-c", COUNTER)
    out = share(b, tmp_path)
    b.linux["cgroupsPath"] = f"/docker/{hex64()}"
    exp = cg.expect(b.linux["cgroupsPath"], cid)
    create(pyrunc, b, cid, start=True)
    wait_for(lambda: _advances(out, 0.1), what="counter running")
    r = pyrunc("resume", cid)
    assert (r.rc, "container not paused" in r.err) == (1, True), r.err
    r = pyrunc("pause", cid)
    assert r.rc == 0, r.err
    assert state(pyrunc, cid)["status"] == "paused"
    assert ctr_file(exp, "freezer", "freezer.state") == "FROZEN"
    assert not _advances(out, 0.5)
    listed = json.loads(pyrunc("list", "--format", "json").out)
    assert [c["status"] for c in listed] == ["paused"]
    r = pyrunc("resume", cid)
    assert r.rc == 0, r.err
    assert state(pyrunc, cid)["status"] == "running"
    assert ctr_file(exp, "freezer", "freezer.state") == "THAWED"
    assert wait_for(lambda: _advances(out, 0.1), what="counter running again")
    assert pyrunc("delete", "--force", cid).rc == 0
    assert gone(exp) == []


def test_pause_and_resume_refuse_the_wrong_state(pyrunc, make_bundle, cid, cg):
    b = make_bundle("true")
    create(pyrunc, b, cid, start=True)
    wait_for(lambda: state(pyrunc, cid)["status"] == "stopped", what="stopped")
    r = pyrunc("pause", cid)
    assert (r.rc, "container not running" in r.err) == (1, True), r.err
    r = pyrunc("resume", cid)
    assert (r.rc, "container not paused" in r.err) == (1, True), r.err
    r = pyrunc("pause", "nosuch-" + cid)
    assert (r.rc, "container does not exist" in r.err) == (1, True), r.err


@pytest.mark.parametrize("runtime", ["pyrunc", "runc"])
def test_frozen_parent_is_not_a_pause(request, make_bundle, cid, cg, runtime):
    """A container frozen only because its parent cgroup is: runc says running (its own
    freezer.self_freezing is 0); pause/resume then act on the container's own state."""
    rt = request.getfixturevalue(runtime)
    parent = f"/pyrunc-frozen-{uuid.uuid4().hex[:12]}"
    b = make_bundle("sleep", "100")
    b.linux["cgroupsPath"] = f"{parent}/{cid}"
    exp = cg.expect(b.linux["cgroupsPath"], cid)
    field = ctrl_field("freezer")
    parent_state = os.path.join(host_dir(field, parent), "freezer.state")
    create(rt, b, cid, start=True)
    try:
        with open(parent_state, "w") as f:
            f.write("FROZEN")
        wait_for(lambda: ctr_file(exp, "freezer", "freezer.state") == "FROZEN", what="frozen by parent")
        assert state(rt, cid)["status"] == "running"
        r = rt("resume", cid)
        assert (r.rc, "container not paused" in r.err) == (1, True), r.err
        assert rt("pause", cid).rc == 0
        assert state(rt, cid)["status"] == "paused"
        assert rt("resume", cid).rc == 0
        assert state(rt, cid)["status"] == "running"
        assert ctr_file(exp, "freezer", "freezer.state") == "FROZEN"  # still, by the parent
    finally:
        with open(parent_state, "w") as f:
            f.write("THAWED")
    assert rt("delete", "--force", cid).rc == 0
    assert gone(exp) == []


def test_delete_force_of_a_paused_container(pyrunc, make_bundle, cid, tmp_path, cg):
    b = make_bundle("sh", "-c", "sleep 100 & sleep 100 & wait")
    b.linux["cgroupsPath"] = f"/default/{cid}"
    exp = cg.expect(b.linux["cgroupsPath"], cid)
    pid = create(pyrunc, b, cid, start=True)
    kids = wait_for(lambda: len(children(pid)) == 2 and children(pid), what="two sleeps")
    assert pyrunc("pause", cid).rc == 0
    r = pyrunc("delete", cid)
    assert r.rc != 0 and "paused" in r.err, r.err
    r = pyrunc("delete", "--force", cid)
    assert r.rc == 0, r.err
    assert not [p for p in [pid, *kids] if alive(p)]
    assert gone(exp) == [] and pyrunc.ids() == []


# ---- update -----------------------------------------------------------------------------------

SHOW = ("while true; do cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes "
        "memory/memory.memsw.limit_in_bytes memory/memory.soft_limit_in_bytes "
        "cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us "
        "pids/pids.max > /tmp/v.tmp; mv /tmp/v.tmp /tmp/v; sleep 0.05; done")
SHOWN = ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
         "cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "pids.max")


def _host_values(exp):
    return [ctr_file(exp, name.split(".")[0], name) for name in SHOWN]


def _inside_values(out, wanted):
    """What the container sees, once it shows `wanted` (it re-reads every 50 ms)."""
    def check():
        values = read_when(os.path.join(out, "v")).split()
        return values if values == wanted else None
    try:
        return wait_for(check, timeout=5, what="values inside")
    except AssertionError:
        return read_when(os.path.join(out, "v")).split()


def test_update_docker_podman_and_flags(pyrunc, make_bundle, cid, tmp_path, cg):
    b = make_bundle("sh", "-c", SHOW)
    out = share(b, tmp_path)
    b.linux["cgroupsPath"] = f"/docker/{hex64()}"
    b.linux["resources"].update(memory={"limit": 64 * MB, "swap": 64 * MB},
                                cpu={"shares": 512, "quota": 10000, "period": 100000},
                                pids={"limit": 100})
    exp = cg.expect(b.linux["cgroupsPath"], cid)
    create(pyrunc, b, cid, start=True)
    unlimited = ctr_file(exp, "memory", "memory.soft_limit_in_bytes")
    start = [str(64 * MB), str(64 * MB), unlimited, "512", "10000", "100000", "100"]
    assert _host_values(exp) == start
    assert _inside_values(out, start) == start

    # docker update: zeros leave a setting alone
    docker = {"memory": {"limit": 96 * MB, "reservation": 0, "swap": 96 * MB, "kernel": 0},
              "cpu": {"shares": 0, "quota": 50000, "period": 100000},
              "pids": {"limit": 30}, "blockIO": {"weight": 0}}
    r = pyrunc("update", "--resources", "-", cid, input=json.dumps(docker))
    assert r.rc == 0, r.err
    want = [str(96 * MB), str(96 * MB), unlimited, "512", "50000", "100000", "30"]
    assert _host_values(exp) == want
    assert _inside_values(out, want) == want

    # podman update: a file; swap (memory+swap) above the limit
    podman = os.path.join(ENGINE_CONFIGS, "podman--update.resources.json")
    if not os.path.exists(podman):
        podman = str(tmp_path / "podman.json")
        with open(podman, "w") as f:
            json.dump({"memory": {"limit": 100663296, "swap": 201326592},
                       "cpu": {"quota": 70000, "period": 100000}}, f)
    r = pyrunc("update", f"--resources={podman}", cid)
    assert r.rc == 0, r.err
    want = [str(96 * MB), str(192 * MB), unlimited, "512", "70000", "100000", "30"]
    assert _host_values(exp) == want
    assert _inside_values(out, want) == want

    # runc's single-value flags
    r = pyrunc("update", "--memory", "64m", "--cpu-quota", "20000", "--pids-limit", "40", cid)
    assert r.rc == 0, r.err
    want = [str(64 * MB), str(192 * MB), unlimited, "512", "20000", "100000", "40"]
    assert _host_values(exp) == want
    assert _inside_values(out, want) == want

    # docker's zeros (pids.limit 0 included) leave everything alone
    r = pyrunc("update", "-r", "-", cid, input=json.dumps(
        {"memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0},
         "cpu": {"shares": 0, "quota": 0, "period": 0}, "pids": {"limit": 0}, "blockIO": {"weight": 0}}))
    assert r.rc == 0, r.err
    assert _host_values(exp) == want

    # bad input changes nothing
    r = pyrunc("update", "-r", "-", cid, input='{"memory": {"limit": ')
    assert r.rc == 1 and "invalid JSON" in r.err, r.err
    r = pyrunc("update", "-r", "-", cid, input='{"pids": {"limit": "many"}}')
    assert r.rc == 1 and "pids" in r.err, r.err
    assert _host_values(exp) == want
    assert pyrunc("delete", "--force", cid).rc == 0
    assert gone(exp) == []


def test_update_of_a_stopped_container_fails(pyrunc, make_bundle, cid, cg):
    b = make_bundle("true")
    b.linux["resources"]["pids"] = {"limit": 50}
    create(pyrunc, b, cid, start=True)
    wait_for(lambda: state(pyrunc, cid)["status"] == "stopped", what="stopped")
    r = pyrunc("update", "--pids-limit", "10", cid)
    assert (r.rc, "container not running" in r.err) == (1, True), r.err
    r = pyrunc("update", "--pids-limit", "10", "nosuch-" + cid)
    assert (r.rc, "container does not exist" in r.err) == (1, True), r.err


def _msg(err):
    """The msg="..." of runc's (and pyrunc's) logrus error line."""
    line = next(line for line in err.splitlines() if "level=error" in line)
    return json.loads(line.split(" msg=", 1)[1])


def test_update_flag_errors_match_runc(pyrunc, runc, make_bundle, cid, cg):
    b = make_bundle("sleep", "100")
    flags = [("--memory", "1q"), ("--memory-swap", "x"), ("--cpu-period", "-1"), ("--cpu-quota", "x"),
             ("--cpu-share", "x"), ("--pids-limit", "x"), ("--blkio-weight", "x")]
    messages = {}
    for rt in (pyrunc, runc):
        create(rt, b, cid)
        for flag, value in flags:
            r = rt("update", flag, value, cid)
            assert r.rc == 1, (flag, r.err)
            messages.setdefault(flag, []).append(_msg(r.err))
        assert rt("delete", "--force", cid).rc == 0
    assert {f: m[0] for f, m in messages.items()} == {f: m[1] for f, m in messages.items()}


# ---- ps ---------------------------------------------------------------------------------------

def test_ps_lists_every_process(pyrunc, make_bundle, cid, cg):
    b = make_bundle("sh", "-c", "sleep 100 & sleep 100 & wait")
    pid = create(pyrunc, b, cid, start=True)
    kids = wait_for(lambda: len(children(pid)) == 2 and children(pid), what="two sleeps")
    r = pyrunc("ps", "--format", "json", cid)
    assert r.rc == 0, r.err
    assert json.loads(r.out) == sorted([pid, *kids])
    r = pyrunc("ps", cid)
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split()[:3] == ["UID", "PID", "PPID"]
    rows = {int(line.split()[1]): line for line in lines[1:]}
    assert set(rows) == {pid, *kids}
    assert all(rows[k].rstrip().endswith("sleep 100") for k in kids)
    r = pyrunc("ps", cid, "-o", "pid,comm")
    assert r.rc == 0, r.err
    assert r.out.splitlines()[0].split() == ["PID", "COMMAND"]
    assert sorted(int(line.split()[0]) for line in r.out.splitlines()[1:]) == sorted([pid, *kids])
    r = pyrunc("ps", "nosuch-" + cid)
    assert (r.rc, "container does not exist" in r.err) == (1, True), r.err
    # ps's own failures, in runc's words
    r = pyrunc("ps", cid, "-o", "comm")
    assert (r.rc, r.err.count("couldn't find PID field in ps output")) == (1, 1), r.err
    r = pyrunc("ps", cid, "--no-such-ps-option")
    assert r.rc == 1 and "exit status 1: " in r.err and "internal error" not in r.err, r.err
    assert pyrunc("delete", "--force", cid).rc == 0


@pytest.mark.parametrize("runtime", ["pyrunc", "runc"])
def test_stopped_container_ps_and_events(request, make_bundle, cid, cg, runtime):
    """runc: ps of a stopped container prints null (an empty Go slice), events refuses."""
    rt = request.getfixturevalue(runtime)
    b = make_bundle("true")
    create(rt, b, cid, start=True)
    wait_for(lambda: state(rt, cid)["status"] == "stopped", what="stopped")
    r = rt("ps", "--format", "json", cid)
    assert (r.rc, r.out) == (0, "null\n"), r.err
    for args in (("events", "--stats", cid), ("events", "--interval", "1s", cid)):
        r = rt(*args, timeout=10)
        assert (r.rc, r.out) == (1, ""), (args, r.out)
        assert f"container with id {cid} is not running" in r.err, r.err
    assert rt("delete", cid).rc == 0


# ---- kill --all ---------------------------------------------------------------------------------

def test_kill_all_without_a_pid_namespace_uses_the_cgroup(pyrunc, make_bundle, cid, cg):
    b = make_bundle("sh", "-c", "sleep 100 & sleep 100 & (sleep 100 &) ; wait")
    b.linux["namespaces"] = [n for n in b.linux["namespaces"] if n["type"] != "pid"]
    b.linux["cgroupsPath"] = f"/default/{cid}"
    exp = cg.expect(b.linux["cgroupsPath"], cid)
    bystander = subprocess.Popen(["sleep", "100"])  # same pid namespace, not in the container
    try:
        pid = create(pyrunc, b, cid, start=True)
        procs_file = os.path.join(host_dir(ctrl_field("pids"), exp[ctrl_field("pids")]), "cgroup.procs")

        def procs():
            with open(procs_file) as f:
                return sorted(int(p) for p in f.read().split())
        # init, two children and a grandchild orphaned out of the init's process tree
        members = wait_for(lambda: len(procs()) == 4 and procs(), what="four processes")
        assert pid in members and len(children(pid)) == 2
        r = pyrunc("kill", "--all", cid, "KILL")
        assert r.rc == 0, r.err
        wait_for(lambda: not [p for p in members if alive(p)], what="all container processes dead")
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
    assert pyrunc("delete", cid).rc == 0
    assert gone(exp) == []


@pytest.mark.parametrize("runtime", ["pyrunc", "runc"])
def test_kill_all_reaches_leftovers_of_a_stopped_container(request, make_bundle, cid, tmp_path, cg,
                                                           runtime):
    """No pid namespace: the init exits, its background sleep stays in the cgroup. The
    container is stopped, yet `kill --all` still signals what the cgroup holds (runc 1.1)."""
    rt = request.getfixturevalue(runtime)
    b = make_bundle("sh", "-c", "sleep 100 & echo $! > /tmp/pid")
    out = share(b, tmp_path)
    b.linux["namespaces"] = [n for n in b.linux["namespaces"] if n["type"] != "pid"]
    create(rt, b, cid, start=True)
    leftover = int(read_when(os.path.join(out, "pid")))
    cg.track_pid(leftover)  # the init may be gone already
    wait_for(lambda: state(rt, cid)["status"] == "stopped", what="stopped")
    assert alive(leftover)
    r = rt("kill", cid, "KILL")
    assert (r.rc, "container not running" in r.err) == (1, True), r.err
    assert alive(leftover)
    r = rt("kill", "--all", cid, "KILL")
    assert r.rc == 0, r.err
    wait_for(lambda: not alive(leftover), what="the leftover killed")
    assert rt("delete", cid).rc == 0


# ---- delete and failed creates leave nothing ------------------------------------------------------

def test_delete_removes_every_cgroup_directory(pyrunc, make_bundle, cid, cg):
    b = make_bundle("sleep", "100")
    b.linux["cgroupsPath"] = f"/libpod_parent/libpod-{hex64()}"
    exp = cg.expect(b.linux["cgroupsPath"], cid)
    create(pyrunc, b, cid, start=True)
    dirs = [host_dir(f, p) for f, p in exp.items()]
    assert all(os.path.isdir(d) for d in dirs)
    # a sub-cgroup in every hierarchy with a process in it, as a container with a writable
    # cgroup mount makes them (made from the host here: this container's mount is read-only)
    child = subprocess.Popen(["sleep", "100"])
    try:
        for d in dirs:
            os.mkdir(os.path.join(d, "sub"))
            for name in ("cpuset.cpus", "cpuset.mems"):  # a cpuset can't take tasks without them
                if os.path.exists(os.path.join(d, name)):
                    with open(os.path.join(d, name)) as src, open(os.path.join(d, "sub", name), "w") as dst:
                        dst.write(src.read())
            with open(os.path.join(d, "sub", "cgroup.procs"), "w") as f:
                f.write(str(child.pid))
        r = pyrunc("delete", "--force", cid)
        assert r.rc == 0, r.err
        assert child.wait(timeout=5) == -signal.SIGKILL  # it was in the container's cgroup
    finally:
        child.kill()
        child.wait()
    assert [d for d in dirs if os.path.exists(d)] == []
    # parents are left, as runc leaves /docker or /libpod_parent
    assert all(os.path.isdir(os.path.dirname(d)) for d in dirs)


@pytest.mark.parametrize("case", ["nosuch-binary", "bad-cpus", "bad-cpus-default-path"])
def test_failed_create_leaves_no_cgroup_and_no_state(pyrunc, make_bundle, cid, cg, no_leaks, case):
    b = make_bundle("nosuch" if case == "nosuch-binary" else "true")
    if case != "bad-cpus-default-path":
        b.linux["cgroupsPath"] = f"/docker/{hex64()}"
    if case.startswith("bad-cpus"):
        b.linux["resources"]["cpu"] = {"cpus": "99-100"}
    exp = cg.expect(b.linux.get("cgroupsPath"), cid)
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 1
    if case == "nosuch-binary":
        assert 'exec: \\"nosuch\\": executable file not found in $PATH' in r.err, r.err
    else:
        assert "linux.resources.cpu.cpus" in r.err, r.err
    assert gone(exp) == []
    assert pyrunc.ids() == []
    assert pyrunc("state", cid).rc == 1


def test_systemd_cgroup_is_refused_cleanly(pyrunc, make_bundle, cid, cg, no_leaks):
    """Without systemd as init (this host): runc's error, nothing made (the driver itself:
    test_cgroups_systemd.py, in a VM that boots systemd)."""
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd runs here")
    b = make_bundle("true")
    b.linux["cgroupsPath"] = f"system.slice:pyrunc:{cid}"
    b.write()
    r = pyrunc("--systemd-cgroup", "create", "--bundle", b.path, cid)
    assert r.rc == 1
    assert "systemd not running on this host, cannot use systemd cgroups manager" in r.err, r.err
    assert pyrunc.ids() == []
    # nothing named after the container where either driver would have put it
    for f in FIELDS:
        for where in (OWN[f], "/", "/system.slice"):
            d = host_dir(f, where)
            if os.path.isdir(d):
                assert not [n for n in os.listdir(d) if cid in n], d


# ---- engines' configs -------------------------------------------------------------------------------

def _engine_configs():
    try:
        names = sorted(os.listdir(ENGINE_CONFIGS))
    except FileNotFoundError:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{ENGINE_CONFIGS} not available"))]
    return [n for n in names if n.endswith(".json") and not n.endswith((".process.json", ".resources.json"))]


def _unique_like(path, cid):
    """The engine's cgroupsPath with a fresh leaf in the same style."""
    parent, leaf = path.rsplit("/", 1)
    if leaf.startswith("libpod-"):
        leaf = "libpod-" + hex64()
    elif len(leaf) == 64 and all(c in "0123456789abcdef" for c in leaf):
        leaf = hex64()
    else:
        leaf = cid
    return f"{parent}/{leaf}"


def _device_rule(rule):
    num = lambda n: "*" if n is None or n == -1 else str(n)  # noqa: E731
    return f"{rule.get('type', 'a')} {num(rule.get('major'))}:{num(rule.get('minor'))} {rule['access']}"


@pytest.mark.parametrize("name", _engine_configs())
def test_engine_config_resources_land(pyrunc, make_bundle, cid, tmp_path, cg, name):
    with open(os.path.join(ENGINE_CONFIGS, name)) as f:
        engine = json.load(f)["linux"]
    b = make_bundle("sh", "-c",
                    "{ mknod /dev/t-null c 1 3 && head -c1 /dev/t-null && echo null-ok; "
                    "mknod /dev/t-fuse c 10 229 && cat /dev/t-fuse; "
                    "mknod /dev/t-loop b 7 0 && cat /dev/t-loop; "
                    "cat /sys/fs/cgroup/pids/pids.max; } > /tmp/o.tmp 2>&1; mv /tmp/o.tmp /tmp/o")
    out = share(b, tmp_path)
    for kind in ("bounding", "effective", "permitted"):
        b.process["capabilities"][kind].append("CAP_MKNOD")
    resources = engine["resources"]
    b.linux["resources"] = resources
    b.linux["cgroupsPath"] = _unique_like(engine["cgroupsPath"], cid)
    exp = cg.expect(b.linux["cgroupsPath"], cid)
    create(pyrunc, b, cid)
    listed = ctr_file(exp, "devices", "devices.list").splitlines()
    assert "a *:* rwm" not in listed
    for rule in resources.get("devices", []):
        if rule["allow"]:
            assert _device_rule(rule) in listed
    assert "c 10:229 rwm" not in listed and "c 1:3 rwm" in listed  # runc's defaults have /dev/null
    if "shares" in resources.get("cpu", {}) and resources["cpu"]["shares"]:
        assert ctr_file(exp, "cpu", "cpu.shares") == str(resources["cpu"]["shares"])
    if "pids" in resources:
        assert ctr_file(exp, "pids", "pids.max") == str(resources["pids"]["limit"])
    if "disableOOMKiller" in resources.get("memory", {}):
        oom = dict(line.split() for line in ctr_file(exp, "memory", "memory.oom_control").splitlines())
        assert oom["oom_kill_disable"] == str(int(resources["memory"]["disableOOMKiller"]))
    r = pyrunc("start", cid)
    assert r.rc == 0, r.err
    text = read_when(os.path.join(out, "o"))
    lines = text.splitlines()
    assert lines[0] == "null-ok", text
    assert text.count("Operation not permitted") == 2, text  # 10:229 (fuse) and a block device
    assert lines[-1] == (str(resources["pids"]["limit"]) if "pids" in resources else "max")
    wait_for(lambda: state(pyrunc, cid)["status"] == "stopped", what="stopped")
    assert pyrunc("delete", cid).rc == 0
    assert gone(exp) == []


# ---- differential: runc's output shapes -------------------------------------------------------------

def _shape_diff(a, b, where="data"):
    """Keys and value types that differ. Go's omitempty drops zero values, so a key only one
    side has is fine when its value there is zero (the other side omitted it)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k in a and k in b:
                out += _shape_diff(a[k], b[k], f"{where}.{k}")
            elif (a if k in a else b)[k] not in (0, "", [], {}, None):
                out.append(f"{where}.{k} only in {'pyrunc' if k in a else 'runc'}")
        return out
    if type(a) is not type(b) and not (a is None or b is None):
        return [f"{where}: {type(a).__name__} vs {type(b).__name__}"]
    if isinstance(a, list) and a and b and type(a[0]) is not type(b[0]):
        return [f"{where}[]: {type(a[0]).__name__} vs {type(b[0]).__name__}"]
    return []


def test_events_stats_and_ps_json_match_runc(pyrunc, runc, make_bundle, cid, cg):
    # a file in /dev/shm makes memory.cache non-zero in both (omitempty otherwise)
    b = make_bundle("sh", "-c", "echo x > /dev/shm/f; sleep 100 & sleep 100 & wait")
    b.linux["resources"].update(memory={"limit": 64 * MB}, pids={"limit": 64})
    shapes, counts = {}, {}
    for rt in (pyrunc, runc):
        pid = create(rt, b, cid, start=True)
        cg.track_pid(pid)
        wait_for(lambda pid=pid: len(children(pid)) == 2, what="two sleeps")
        r = rt("events", "--stats", cid)
        assert r.rc == 0, r.err
        event = json.loads(r.out)
        assert (event["type"], event["id"]) == ("stats", cid)
        data = event["data"]
        assert data["memory"]["usage"]["limit"] == 64 * MB and data["pids"] == {"current": 3, "limit": 64}
        data.pop("hugetlb")  # pyrunc also reports a hybrid host's cgroup2 hugetlb (runc: {})
        shapes[rt is runc] = data
        r = rt("ps", "--format", "json", cid)
        assert r.rc == 0, r.err
        pids = json.loads(r.out)
        assert all(type(p) is int for p in pids)
        counts[rt is runc] = (len(pids), pid in pids, r.out.endswith("\n"))
        assert rt("delete", "--force", cid).rc == 0
    assert set(shapes[False]) == set(shapes[True])
    assert _shape_diff(shapes[False], shapes[True]) == []
    assert counts[False] == counts[True] == (3, True, True)
