"""pyrunc.cgroups against a fake cgroupfs: plain directories and files in tmp_path.

`FakeKernel` plays the kernel's part: mkdir fills a cgroup with its controllers' files,
rmdir removes them, and a few writes have the side effects the code relies on (memory vs
memory+swap ordering, cgroup.freeze -> cgroup.events, subtree_control -> children's
controllers). Every write is recorded, so tests check values *and* order.
"""

import errno
import json
import os

import pytest

from pyrunc.cgroups import CgroupError, Layout, Manager, convert, ebpf_attach, fsio, manager_for
from pyrunc.cgroups import layout as layout_mod
from pyrunc.cgroups.devices import DEFAULT_ALLOW
from pyrunc.cgroups.paths import clean_path

V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
                  "hugetlb", "net_cls", "net_prio", "rdma")
UNLIMITED = "9223372036854771712"

V1_FILES = {
    "cpu": {"cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1",
            "cpu.cfs_burst_us": "0", "cpu.idle": "0", "cpu.rt_period_us": "1000000",
            "cpu.rt_runtime_us": "0", "cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0"},
    "cpuacct": {"cpuacct.usage": "0", "cpuacct.usage_percpu": "0 0",
                "cpuacct.usage_all": "cpu user system\n0 0 0\n1 0 0", "cpuacct.stat": "user 0\nsystem 0"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": "", "cpuset.cpu_exclusive": "0",
               "cpuset.sched_load_balance": "1", "cpuset.sched_relax_domain_level": "-1"},
    "memory": {"memory.limit_in_bytes": UNLIMITED, "memory.memsw.limit_in_bytes": UNLIMITED,
               "memory.soft_limit_in_bytes": UNLIMITED, "memory.swappiness": "60",
               "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0",
               "memory.usage_in_bytes": "0", "memory.max_usage_in_bytes": "0", "memory.failcnt": "0",
               "memory.memsw.usage_in_bytes": "0", "memory.memsw.max_usage_in_bytes": "0",
               "memory.memsw.failcnt": "0", "memory.kmem.usage_in_bytes": "0",
               "memory.kmem.max_usage_in_bytes": "0", "memory.kmem.failcnt": "0",
               "memory.kmem.limit_in_bytes": UNLIMITED, "memory.stat": "cache 0\nrss 0",
               "memory.use_hierarchy": "1", "cgroup.event_control": ""},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm"},
    "freezer": {"freezer.state": "THAWED", "freezer.self_freezing": "0"},
    "blkio": {"blkio.weight": "500", "blkio.leaf_weight": "500", "blkio.weight_device": "",
              "blkio.leaf_weight_device": "", "blkio.throttle.read_bps_device": "",
              "blkio.throttle.write_bps_device": "", "blkio.throttle.read_iops_device": "",
              "blkio.throttle.write_iops_device": ""},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "hugetlb": {"hugetlb.2MB.limit_in_bytes": UNLIMITED, "hugetlb.1GB.limit_in_bytes": UNLIMITED},
    "net_cls": {"net_cls.classid": "0"},
    "net_prio": {"net_prio.ifpriomap": ""},
    "rdma": {"rdma.max": "", "rdma.current": ""},
}
V2_CORE = {"cgroup.procs": "", "cgroup.subtree_control": "", "cgroup.freeze": "0",
           "cgroup.events": "populated 0\nfrozen 0", "cgroup.type": "domain", "cpu.stat": "usage_usec 0"}
V2_FILES = {
    "memory": {"memory.max": "max", "memory.high": "max", "memory.swap.max": "max", "memory.low": "0",
               "memory.current": "0",
               "memory.swap.current": "0", "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0",
               "memory.stat": "anon 0\nfile 0"},
    "cpu": {"cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.idle": "0"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "io": {"io.weight": "default 100", "io.max": "", "io.stat": ""},
    "hugetlb": {"hugetlb.2MB.max": "max", "hugetlb.2MB.rsvd.max": "max", "hugetlb.2MB.current": "0",
                "hugetlb.2MB.events": "max 0", "hugetlb.1GB.max": "max", "hugetlb.1GB.current": "0",
                "hugetlb.1GB.events": "max 0"},
    "rdma": {"rdma.max": ""},
}


def _put(path, text):
    with open(path, "w") as f:
        f.write(text + ("\n" if text else ""))


def _get(path):
    with open(path) as f:
        return f.read().strip()


class FakeKernel:
    """A cgroupfs tree under `root`: v1 mounts root/<controller>, root/systemd, cgroup2 root/unified."""

    def __init__(self, root, mode, v2_controllers=("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"),
                 v1_controllers=V1_CONTROLLERS):
        self.root = str(root)
        self.mode = mode
        self.writes = []        # (path relative to root, value)
        self.bpf = []           # (path relative to root, program bytes, allow_all) installed
        self.fail = {}          # file name -> errno, injected once per write
        self.rmdir_busy = 0     # rmdir refusals (EBUSY) still to play
        self.v1 = {} if mode == "unified" else {c: f"{self.root}/{c}" for c in v1_controllers}
        if mode != "unified":
            self.v1["name=systemd"] = f"{self.root}/systemd"
        self.unified = f"{self.root}/unified" if mode != "legacy" else None
        for key, mount in self.v1.items():
            os.makedirs(mount)
            self._fill_v1(mount, key)
        if "cpuset" in self.v1:  # the root cpuset owns every cpu; new children own none
            _put(self.v1["cpuset"] + "/cpuset.cpus", "0-3")
            _put(self.v1["cpuset"] + "/cpuset.mems", "0")
        if self.unified:
            os.makedirs(self.unified)
            _put(self.unified + "/cgroup.controllers", " ".join(v2_controllers))
            for name, text in V2_CORE.items():
                _put(f"{self.unified}/{name}", text)

    def layout(self, own=None):
        v1 = {k: (m, "/") for k, m in self.v1.items()}
        unified = (self.unified, "/") if self.unified else None
        return Layout(v1=v1, unified=unified, own=own or {})

    def hierarchy(self, path):
        for key, mount in list(self.v1.items()) + [("", self.unified)]:
            if mount and (path == mount or path.startswith(mount + "/")):
                return key, mount
        raise AssertionError(f"{path} is in no hierarchy")

    def _fill_v1(self, d, key):
        _put(d + "/cgroup.procs", "")
        _put(d + "/tasks", "")
        for name, text in V1_FILES.get(key, {}).items():
            _put(f"{d}/{name}", text)

    # the kernel's side of fsio
    def mkdir(self, path):
        os.mkdir(path)
        key, _ = self.hierarchy(path)
        if key != "":
            self._fill_v1(path, key)
            return
        enabled = _get(os.path.dirname(path) + "/cgroup.subtree_control").split()
        _put(path + "/cgroup.controllers", " ".join(enabled))
        for name, text in V2_CORE.items():
            _put(f"{path}/{name}", text)
        for controller in enabled:
            for name, text in V2_FILES[controller].items():
                _put(f"{path}/{name}", text)

    def rmdir(self, path):
        if self.rmdir_busy:
            self.rmdir_busy -= 1
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), path)
        if any(e.is_dir() for e in os.scandir(path)):
            raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY), path)
        for e in os.scandir(path):
            os.unlink(e.path)
        os.rmdir(path)

    def write(self, real_write, directory, name, value, field):
        old_subtree = set()
        if directory is not None:
            path = f"{directory}/{name}"
            if name in self.fail:
                raise _refused(field, value, path, self.fail.pop(name))
            self._check(directory, name, value, field)
            if name == "cgroup.subtree_control":
                old_subtree = set(_get(path).split())
        real_write(directory, name, value, field)
        self.writes.append((os.path.relpath(f"{directory}/{name}", self.root), value))
        if name == "cgroup.freeze":
            _put(directory + "/cgroup.events", f"populated 0\nfrozen {value}")
        elif name == "cgroup.subtree_control":
            offered = set(_get(f"{directory}/cgroup.controllers").split())
            asked = {v[1:] for v in value.split() if v.startswith("+")}
            _put(f"{directory}/{name}", " ".join(sorted(old_subtree | (offered & asked))))
        elif name == "cpu.shares" and int(value) > 262144:
            _put(f"{directory}/{name}", "262144")  # the kernel clamps

    @staticmethod
    def _check(d, name, value, field):
        """The kernel's rule: memory.limit_in_bytes <= memory.memsw.limit_in_bytes."""
        if value == "-1":
            return
        if name == "memory.limit_in_bytes" and int(value) > int(_get(d + "/memory.memsw.limit_in_bytes")):
            raise _refused(field, value, f"{d}/{name}", errno.EINVAL)
        if name == "memory.memsw.limit_in_bytes" and int(value) < int(_get(d + "/memory.limit_in_bytes")):
            raise _refused(field, value, f"{d}/{name}", errno.EINVAL)

    def written(self, suffix):
        """Values written to files whose relative path ends with suffix, in order."""
        return [v for p, v in self.writes if p.endswith(suffix)]


def _refused(field, value, path, err):
    """The error fsio.write raises when the kernel refuses a write."""
    return CgroupError(f"{field}: writing {value} to {path}: {os.strerror(err).lower()}", err)


def _install(monkeypatch, kernel):
    real_write = fsio.write
    monkeypatch.setattr(fsio, "mkdir", kernel.mkdir)
    monkeypatch.setattr(fsio, "rmdir", kernel.rmdir)
    monkeypatch.setattr(fsio, "write", lambda d, n, v, f: kernel.write(real_write, d, n, v, f))
    # a plain directory takes no eBPF program: record what would be attached
    monkeypatch.setattr(ebpf_attach, "install", lambda d, prog, allow_all=False: kernel.bpf.append(
        (os.path.relpath(d, kernel.root), prog, allow_all)))
    return kernel


@pytest.fixture
def v1host(tmp_path, monkeypatch):
    return _install(monkeypatch, FakeKernel(tmp_path / "cg", "hybrid"))


@pytest.fixture
def legacy(tmp_path, monkeypatch):
    return _install(monkeypatch, FakeKernel(tmp_path / "cg", "legacy"))


@pytest.fixture
def v2host(tmp_path, monkeypatch):
    return _install(monkeypatch, FakeKernel(tmp_path / "cg", "unified"))


@pytest.fixture
def hybrid_no_v1_hugetlb(tmp_path, monkeypatch):
    v1 = tuple(c for c in V1_CONTROLLERS if c not in ("hugetlb", "net_cls"))
    return _install(monkeypatch, FakeKernel(tmp_path / "cg", "hybrid", v2_controllers=("hugetlb",),
                                            v1_controllers=v1))


def created(kernel, path="/c1", **kw):
    m = manager_for(path, "c1", layout=kernel.layout(), **kw)
    m.create()
    kernel.writes.clear()
    return m


def read(m, key, name):
    return _get(f"{m.paths()[key]}/{name}")


DOCKER_LIKE = {
    "devices": [{"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
    "memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200, "swappiness": 10,
               "disableOOMKiller": True, "kernel": 0, "kernelTCP": 0},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "realtimeRuntime": 950,
            "realtimePeriod": 1000, "cpus": "0-1", "mems": "0", "idle": 1, "burst": 1000},
    "pids": {"limit": 100},
    "blockIO": {"weight": 500, "leafWeight": 300,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 200}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 200}]},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}, {"pageSize": "1GB", "limit": 0}],
    "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5},
                                                   {"name": "lo", "priority": 1}]},
    "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
}


# --- probing ----------------------------------------------------------------------------------

HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 /sub /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
42 31 0:39 / /sys/fs/cgroup/misc rw,relatime - cgroup cgroup rw,misc
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 23 0:40 / /mnt/with\\040space rw - cgroup cgroup rw,cpuset
"""


def test_parse_mountinfo_hybrid():
    lay = layout_mod.parse_mountinfo(HYBRID_MOUNTINFO)
    assert lay.mode == "hybrid"
    assert lay.v1["cpu"] == lay.v1["cpuacct"] == ("/sys/fs/cgroup/cpu,cpuacct", "/")
    assert lay.v1["memory"] == ("/sys/fs/cgroup/memory", "/sub")
    assert lay.v1["cpuset"] == ("/sys/fs/cgroup/cpuset", "/")  # first mount wins
    assert lay.v1["name=systemd"] == ("/sys/fs/cgroup/systemd", "/")
    assert "misc" not in lay.v1  # runc does not manage it
    assert lay.unified == ("/sys/fs/cgroup/unified", "/")


def test_parse_mountinfo_modes_and_escapes():
    unified = layout_mod.parse_mountinfo("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    assert (unified.mode, unified.v1, unified.unified) == ("unified", {}, ("/sys/fs/cgroup", "/"))
    legacy = layout_mod.parse_mountinfo("50 23 0:40 / /a\\040b rw - cgroup cgroup rw,pids\n")
    assert (legacy.mode, legacy.v1) == ("legacy", {"pids": ("/a b", "/")})
    with pytest.raises(CgroupError, match="no cgroup filesystem"):
        layout_mod.parse_mountinfo("31 23 0:28 / /tmp rw - tmpfs tmpfs rw\n")


def test_probe_is_cached_and_sees_this_host():
    lay = layout_mod.probe()
    assert lay is layout_mod.probe()
    assert lay.mode in ("legacy", "hybrid", "unified")
    with open("/proc/self/mountinfo") as f:
        text = f.read()
    if " - cgroup2 " in text and " - cgroup " in text:
        assert lay.mode == "hybrid"


def test_proc_cgroup_parsing():
    own = layout_mod.parse_proc_cgroup("2:cpu,cpuacct:/a\n1:name=systemd:/s\n0::/u\n")
    assert own == {"cpu": "/a", "cpuacct": "/a", "name=systemd": "/s", "": "/u"}


# --- cgroupsPath ------------------------------------------------------------------------------

def test_clean_path_like_runc():
    assert [clean_path(p) for p in ("", "a/b", "../../a", "/a/../b", "//x//y/", "a/./b/..")] == \
        ["", "a/b", "a", "/b", "/x/y", "a"]


def test_absolute_path_is_under_every_hierarchy_root(v1host):
    m = manager_for("/docker/abc", "abc", layout=v1host.layout())
    paths = m.paths()
    assert paths["memory"] == f"{v1host.root}/memory/docker/abc"
    assert paths["name=systemd"] == f"{v1host.root}/systemd/docker/abc"
    assert paths[""] == f"{v1host.root}/unified/docker/abc"
    assert set(paths) == set(V1_CONTROLLERS) | {"name=systemd", ""}


def test_relative_path_is_under_our_own_cgroup(v1host):
    lay = v1host.layout(own={"memory": "/user/me", "cpu": "/", "": "/session/me"})
    paths = manager_for("foo/bar", "x", layout=lay).paths()
    assert paths["memory"] == f"{v1host.root}/memory/user/me/foo/bar"
    assert paths["cpu"] == f"{v1host.root}/cpu/foo/bar"
    # hybrid cgroup2: runc's GetOwnCgroupPath("") is the mountpoint itself
    assert paths[""] == f"{v1host.root}/unified/foo/bar"


def test_relative_path_inside_a_mount_root(v1host):
    lay = v1host.layout(own={"memory": "/sub/me"})
    lay.v1["memory"] = (lay.v1["memory"][0], "/sub")
    assert manager_for("x", "x", layout=lay).paths()["memory"] == f"{v1host.root}/memory/me/x"


def test_default_path_is_the_id_below_our_cgroup(v1host):
    """runc's rule: "<id>" below our own cgroup (no prefix: issue 11)."""
    lay = v1host.layout(own={"memory": "/m"})
    paths = manager_for(None, "ctr", layout=lay).paths()
    assert paths["memory"] == f"{v1host.root}/memory/m/ctr"
    assert paths["pids"] == f"{v1host.root}/pids/ctr"


def test_unified_relative_path_is_beside_our_cgroup(v2host):
    lay = v2host.layout(own={"": "/user.slice/session-1.scope"})
    assert manager_for(None, "ctr", layout=lay).paths() == {"": f"{v2host.root}/unified/user.slice/ctr"}
    assert manager_for("/a/b", "ctr", layout=lay).paths() == {"": f"{v2host.root}/unified/a/b"}


@pytest.mark.parametrize("path", ["/", "..", "/../"])
def test_root_or_own_cgroup_is_refused(v1host, path):
    with pytest.raises(CgroupError, match="linux.cgroupsPath"):
        manager_for(path, "x", layout=v1host.layout())


def test_systemd_driver_without_systemd_on_this_host():
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd runs here")
    with pytest.raises(CgroupError, match="systemd not running"):
        manager_for("system.slice:pyrunc:abc", "abc", systemd=True)
    with pytest.raises(CgroupError, match="slice:prefix:name"):
        manager_for("/not/systemd", "abc", systemd=True)


# --- create, apply, destroy --------------------------------------------------------------------

def test_create_makes_every_directory_and_fills_cpuset(v1host):
    m = manager_for("/docker/c1", "c1", layout=v1host.layout())
    m.create()
    for d in m.paths().values():
        assert os.path.isdir(d)
    for d in (f"{v1host.root}/cpuset/docker", m.paths()["cpuset"]):
        assert (_get(d + "/cpuset.cpus"), _get(d + "/cpuset.mems")) == ("0-3", "0")
    m.create()  # idempotent


def test_create_enables_controllers_down_a_v2_path(v2host):
    m = manager_for("/a/b", "c1", layout=v2host.layout())
    m.create()
    assert _get(f"{v2host.root}/unified/cgroup.subtree_control").split() == \
        sorted(["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"])
    assert "memory" in _get(m.paths()[""] + "/cgroup.controllers").split()
    assert os.path.exists(m.paths()[""] + "/memory.max")


def test_create_failure_removes_what_it_made(v1host):
    with open(f"{v1host.root}/pids/blocker", "w"):
        pass  # a file where the container's directory should go
    m = manager_for("/blocker/c1", "c1", layout=v1host.layout())
    with pytest.raises(CgroupError, match="linux.cgroupsPath: creating .*blocker"):
        m.create()
    assert not os.path.exists(f"{v1host.root}/memory/blocker")


def test_apply_writes_the_pid_everywhere(v1host):
    m = created(v1host)
    m.apply(4242)
    for d in set(m.paths().values()):
        assert _get(d + "/cgroup.procs") == "4242"


def test_apply_retries_einval_and_names_failures(v1host, monkeypatch):
    m = created(v1host)
    monkeypatch.setattr("time.sleep", lambda s: None)
    v1host.fail["cgroup.procs"] = errno.EINVAL  # once: the retry succeeds
    m.apply(7)
    v1host.fail["cgroup.procs"] = errno.ENOSPC
    with pytest.raises(CgroupError, match="writing 7 to .*cgroup.procs: no space left on device"):
        m.apply(7)


def test_destroy_removes_sub_cgroups_and_retries_ebusy(v1host, monkeypatch):
    m = created(v1host)
    v1host.mkdir(m.paths()["memory"] + "/sub")
    v1host.mkdir(m.paths()["memory"] + "/sub/deeper")
    v1host.rmdir_busy = 3
    monkeypatch.setattr("time.sleep", lambda s: None)
    m.destroy()
    assert not any(os.path.exists(d) for d in m.paths().values())
    m.destroy()  # missing is fine


def test_destroy_gives_up_with_a_clear_error(v1host, monkeypatch):
    m = created(v1host)
    v1host.rmdir_busy = 10 ** 6
    monkeypatch.setattr("time.sleep", lambda s: None)
    with pytest.raises(CgroupError, match="removing cgroup .*: device or resource busy"):
        m.destroy()


def test_pids_are_recursive_and_sorted(v1host):
    m = created(v1host)
    d = m.paths()["pids"]
    _put(d + "/cgroup.procs", "30\n10")
    v1host.mkdir(d + "/child")
    _put(d + "/child/cgroup.procs", "20\n10")
    assert m.pids() == [10, 20, 30]


def test_state_round_trip(v1host):
    m = created(v1host)
    data = json.loads(json.dumps(m.to_state()))
    again = Manager.from_state(data)
    assert again.paths() == m.paths() and again.mode == m.mode == "hybrid"
    again.set({"pids": {"limit": 5}})
    assert read(m, "pids", "pids.max") == "5"
    with pytest.raises(CgroupError, match="invalid cgroup state"):
        Manager.from_state({"paths": {}})


# --- set(): cgroup v1 --------------------------------------------------------------------------

def test_set_v1_every_field(v1host):
    m = created(v1host)
    m.set(DOCKER_LIKE)
    k = v1host
    assert read(m, "memory", "memory.limit_in_bytes") == "104857600"
    assert read(m, "memory", "memory.memsw.limit_in_bytes") == "209715200"
    assert read(m, "memory", "memory.soft_limit_in_bytes") == "52428800"
    assert read(m, "memory", "memory.swappiness") == "10"
    assert k.written("memory.oom_control") == ["1"]
    assert read(m, "cpu", "cpu.shares") == "512"
    assert read(m, "cpu", "cpu.cfs_quota_us") == "50000"
    assert read(m, "cpu", "cpu.cfs_period_us") == "100000"
    assert read(m, "cpu", "cpu.cfs_burst_us") == "1000"
    assert read(m, "cpu", "cpu.idle") == "1"
    assert read(m, "cpu", "cpu.rt_period_us") == "1000"
    assert read(m, "cpu", "cpu.rt_runtime_us") == "950"
    assert read(m, "cpuset", "cpuset.cpus") == "0-1"
    assert read(m, "cpuset", "cpuset.mems") == "0"
    assert read(m, "pids", "pids.max") == "100"
    assert read(m, "blkio", "blkio.weight") == "500"
    assert read(m, "blkio", "blkio.leaf_weight") == "300"
    assert k.written("blkio.weight_device") == ["8:0 600"]
    assert k.written("blkio.leaf_weight_device") == ["8:0 200"]
    assert k.written("blkio.throttle.read_bps_device") == ["8:0 1048576"]
    assert k.written("blkio.throttle.write_bps_device") == ["8:0 2097152"]
    assert k.written("blkio.throttle.read_iops_device") == ["8:16 100"]
    assert k.written("blkio.throttle.write_iops_device") == ["8:16 200"]
    assert k.written("hugetlb.2MB.limit_in_bytes") == ["4194304"]
    assert k.written("hugetlb.1GB.limit_in_bytes") == ["0"]
    assert read(m, "net_cls", "net_cls.classid") == "1048577"
    assert k.written("net_prio.ifpriomap") == ["eth0 5", "lo 1"]
    assert k.written("rdma.max") == ["mlx5_1 hca_handle=3 hca_object=10000"]
    assert m.warnings == []


def test_set_v1_devices_deny_all_then_rules_then_defaults(v1host):
    m = created(v1host)
    m.set({"devices": DOCKER_LIKE["devices"]})
    writes = [(p.rsplit("/", 1)[1], v) for p, v in v1host.writes]
    defaults = [("devices.allow", f"{t} {'*' if a == -1 else a}:{'*' if b == -1 else b} {acc}")
                for _, t, a, b, acc in DEFAULT_ALLOW]
    assert writes == [("devices.deny", "a"), ("devices.deny", "a *:* rwm"),
                      ("devices.allow", "c 1:3 rwm")] + defaults
    assert ("devices.allow", "c 136:* rwm") in writes and ("devices.allow", "c *:* m") in writes


def test_devices_defaults_dropped_for_redefined_paths_and_checked(v1host):
    m = created(v1host)
    from pyrunc.spec.model import Device
    m.set({}, linux_devices=[Device({"path": "/dev/null", "type": "c", "major": 1, "minor": 3})])
    assert "c 1:3 rwm" not in v1host.written("devices.allow")
    with pytest.raises(CgroupError, match=r"linux.resources.devices\[0\].type: invalid cgroup device type"):
        m.set({"devices": [{"allow": True, "type": "x", "access": "r"}]})
    with pytest.raises(CgroupError, match=r"linux.resources.devices\[1\].access"):
        m.set({"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c"}]})


def test_memory_and_swap_order_when_raising_and_lowering(v1host):
    m = created(v1host)
    m.set({"memory": {"limit": 100 << 20, "swap": 200 << 20}})
    v1host.writes.clear()
    m.set({"memory": {"limit": 300 << 20, "swap": 400 << 20}}, update=True)  # up: swap first
    assert [p.rsplit("/", 1)[1] for p, _ in v1host.writes] == \
        ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    v1host.writes.clear()
    m.set({"memory": {"limit": 50 << 20, "swap": 60 << 20}}, update=True)   # down: memory first
    assert [p.rsplit("/", 1)[1] for p, _ in v1host.writes] == \
        ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    assert read(m, "memory", "memory.limit_in_bytes") == str(50 << 20)
    # unlimited memory lifts memory+swap too (runc)
    m.set({"memory": {"limit": -1}}, update=True)
    assert read(m, "memory", "memory.memsw.limit_in_bytes") == "-1"


def test_memory_above_memsw_explains_itself(v1host):
    m = created(v1host)
    m.set({"memory": {"limit": 100 << 20, "swap": 100 << 20}})
    with pytest.raises(CgroupError) as err:
        m.set({"memory": {"limit": 200 << 20}}, update=True)
    assert "linux.resources.memory.limit: writing 209715200 to " in str(err.value)
    assert "memory.limit_in_bytes: invalid argument" in str(err.value)
    assert "linux.resources.memory.swap" in str(err.value)


def test_memory_limit_below_usage_is_reported_like_runc(v1host):
    m = created(v1host)
    _put(m.paths()["memory"] + "/memory.usage_in_bytes", "5000")
    _put(m.paths()["memory"] + "/memory.max_usage_in_bytes", "9000")
    v1host.fail["memory.limit_in_bytes"] = errno.EBUSY
    with pytest.raises(CgroupError, match=r"unable to set memory limit to 4096 \(current usage: 5000, "
                                          r"peak usage: 9000\)"):
        m.set({"memory": {"limit": 4096}})
    with pytest.raises(CgroupError, match="rejecting memory limit 4096 <= usage 5000"):
        m.set({"memory": {"limit": 4096, "checkBeforeUpdate": True}}, update=True)


def test_update_with_docker_zeros_leaves_everything_alone(v1host):
    m = created(v1host)
    m.set(DOCKER_LIKE)
    v1host.writes.clear()
    docker_update = {"memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0},
                     "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0,
                             "realtimePeriod": 0, "cpus": "", "mems": ""},
                     "blockIO": {"weight": 0}, "pids": {"limit": 0}}
    m.set(docker_update, update=True)
    assert v1host.writes == []
    m.set({"cpu": {"shares": 256}, "pids": {"limit": 0}}, update=True)
    assert v1host.writes == [(os.path.relpath(m.paths()["cpu"], v1host.root) + "/cpu.shares", "256")]
    assert read(m, "pids", "pids.max") == "100"


def test_pids_zero_or_minus_one_mean_max_on_create(v1host):
    m = created(v1host)
    for limit in (0, -1):
        m.set({"pids": {"limit": 7}})
        m.set({"pids": {"limit": limit}})
        assert read(m, "pids", "pids.max") == "max"


def test_cpu_period_retried_after_quota(v1host):
    m = created(v1host)
    v1host.fail["cpu.cfs_period_us"] = errno.EINVAL
    m.set({"cpu": {"quota": 20000, "period": 50000}})
    assert v1host.written("cpu.cfs_period_us") == ["50000"]
    assert read(m, "cpu", "cpu.cfs_period_us") == "50000"


def test_cpu_shares_clamped_by_the_kernel_is_an_error(v1host):
    m = created(v1host)
    with pytest.raises(CgroupError, match="linux.resources.cpu.shares: the maximum allowed cpu-shares is 262144"):
        m.set({"cpu": {"shares": 500000}})


def test_v1_errors_name_the_field_and_file(v1host):
    m = created(v1host)
    v1host.fail["memory.limit_in_bytes"] = errno.EINVAL
    d = m.paths()["memory"]
    with pytest.raises(CgroupError) as err:
        m.set({"memory": {"limit": 1000}})
    assert str(err.value) == \
        f"linux.resources.memory.limit: writing 1000 to {d}/memory.limit_in_bytes: invalid argument"
    with pytest.raises(CgroupError, match="memory.swappiness: invalid memory swappiness value: 101"):
        m.set({"memory": {"swappiness": 101}})
    with pytest.raises(CgroupError, match="linux.resources.cpu.quota: expected an integer"):
        m.set({"cpu": {"quota": "lots"}})
    with pytest.raises(CgroupError, match=r"linux.resources.blockIO.throttleReadBpsDevice\[0\]: major and minor"):
        m.set({"blockIO": {"throttleReadBpsDevice": [{"rate": 1}]}})
    with pytest.raises(CgroupError, match="linux.resources.unified: invalid configuration: cannot use "
                                          "unified on cgroup v1"):
        m.set({"unified": {"memory.high": "1"}})
    m.set({"unified": {}})  # empty is fine
    os.unlink(d + "/memory.swappiness")
    with pytest.raises(CgroupError, match="linux.resources.memory.swappiness: writing 5 to .*: no such file"):
        m.set({"memory": {"swappiness": 5}})


def test_kernel_memory_is_ignored_with_a_warning(v1host):
    m = created(v1host)
    m.set({"memory": {"kernel": 1 << 20}})
    assert v1host.writes[-1][0].endswith("devices.allow")  # nothing written for it
    assert m.warnings == ["Kernel memory settings are ignored and will be removed"]  # runc's


def test_missing_controller_is_named(legacy, monkeypatch):
    legacy.v1.pop("net_cls")
    lay = legacy.layout()
    m = manager_for("/c1", "c1", layout=lay)
    m.create()
    m.set({"network": {"classID": 0}})  # nothing asked: fine
    with pytest.raises(CgroupError, match="network.classID: the net_cls controller is not available"):
        m.set({"network": {"classID": 5}})


def test_hybrid_uses_cgroup2_for_controllers_v1_lacks(hybrid_no_v1_hugetlb):
    k = hybrid_no_v1_hugetlb
    m = created(k)
    assert "hugetlb" in _get(m.paths()[""] + "/cgroup.controllers").split()
    m.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}], "memory": {"limit": 1 << 30}})
    assert read(m, "", "hugetlb.2MB.max") == "2097152"
    assert read(m, "", "hugetlb.2MB.rsvd.max") == "2097152"
    assert read(m, "memory", "memory.limit_in_bytes") == str(1 << 30)  # v1 where v1 has it
    with pytest.raises(CgroupError, match="linux.resources.network.classID: the net_cls controller"):
        m.set({"network": {"classID": 1}})


# --- set(): cgroup v2 --------------------------------------------------------------------------

def test_set_v2_every_field(v2host):
    from pyrunc import trace
    m = created(v2host)
    res = dict(DOCKER_LIKE, unified={"memory.high": "500000000", "pids.max": "42"})
    res["devices"] = [{"allow": False, "access": "rwm"}]
    seen = []
    trace.enable(seen.append)
    try:
        m.set(res)
    finally:
        trace.enable(None)
    r = lambda name: read(m, "", name)  # noqa: E731
    assert r("memory.max") == "104857600"
    assert r("memory.swap.max") == str(209715200 - 104857600)  # swap only on v2
    assert r("memory.low") == "52428800"
    assert r("cpu.weight") == "20"  # 1 + (510 * 9999) // 262142
    assert r("cpu.max") == "50000 100000"
    assert r("cpu.max.burst") == "1000"
    assert r("cpu.idle") == "1"
    assert (r("cpuset.cpus"), r("cpuset.mems")) == ("0-1", "0")
    assert r("pids.max") == "42"  # unified wins: written last, verbatim
    assert r("memory.high") == "500000000"
    assert r("io.weight") == str(convert.blkio_weight_to_io_weight(500))
    assert v2host.written("io.max") == ["8:0 rbps=1048576", "8:0 wbps=2097152", "8:16 riops=100",
                                        "8:16 wiops=200"]
    assert v2host.written("hugetlb.2MB.max") == ["4194304"]
    assert v2host.written("rdma.max") == ["mlx5_1 hca_handle=3 hca_object=10000"]
    # runc's fs2 ignores these without a word: so do we, but for a --debug line each
    assert m.warnings == []
    debugged = " ".join(seen)
    for ignored in ("disableOOMKiller", "swappiness", "realtime", "leafWeight", "network",
                    "weightDevice"):
        assert ignored in debugged
    assert [(p, a) for p, _, a in v2host.bpf] == [("unified/c1", False)]  # devices: eBPF


def test_v2_cpu_quota_forms(v2host):
    m = created(v2host)
    m.set({"cpu": {"quota": -1}})
    assert read(m, "", "cpu.max") == "max 100000"
    m.set({"cpu": {"period": 50000}})
    assert read(m, "", "cpu.max") == "max 50000"
    m.set({"cpu": {"quota": 25000, "period": 50000}})
    m.set({"cpu": {"quota": 10000}}, update=True)  # keeps the period in force
    assert read(m, "", "cpu.max") == "10000 50000"
    m.set({"cpu": {"period": 20000}}, update=True)  # keeps the quota
    assert read(m, "", "cpu.max") == "10000 20000"


def test_v2_swap_conversion_and_update(v2host):
    m = created(v2host)
    m.set({"memory": {"limit": 1000 << 10, "swap": 1000 << 10}})
    assert read(m, "", "memory.swap.max") == "0"  # memory+swap == memory: no swap
    m.set({"memory": {"limit": -1}})
    assert (read(m, "", "memory.max"), read(m, "", "memory.swap.max")) == ("max", "max")
    m.set({"memory": {"limit": 100 << 20}})
    m.set({"memory": {"swap": 150 << 20}}, update=True)  # uses the memory limit in force
    assert read(m, "", "memory.swap.max") == str(50 << 20)
    with pytest.raises(CgroupError, match=r"memory.swap: memory\+swap limit should be >= memory limit"):
        m.set({"memory": {"limit": 100 << 20, "swap": 50 << 20}})
    with pytest.raises(CgroupError, match="memory.swap: unable to set swap limit without memory limit"):
        m.set({"memory": {"swap": 150 << 20}})


def test_v2_devices_become_an_ebpf_program(v2host):
    m = created(v2host)
    m.set({"devices": [{"allow": True, "access": "rwm"}]})  # privileged
    (path, prog, allow_all), = v2host.bpf
    assert path == "unified/c1" and allow_all and m.warnings == []
    m.set({"devices": [{"allow": False, "access": "rwm"}]})  # deny all + runc's defaults
    assert not v2host.bpf[-1][2] and len(v2host.bpf[-1][1]) > len(prog)
    with pytest.raises(CgroupError, match=r"devices\[1\]: cannot deny 'c 1:3 rwm' after 'c 1:\* rwm': "
                                          r"device rules cannot punch a hole"):
        m.set({"devices": [{"allow": True, "type": "c", "major": 1, "access": "rwm"},
                           {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]})
    v2host.bpf.clear()
    m.set({"memory": {"limit": 1 << 30}}, update=True)  # an update without rules keeps the program
    assert v2host.bpf == []
    m.set({"devices": [{"allow": False, "access": "rwm"}]}, update=True)  # with rules: replaced
    assert len(v2host.bpf) == 1 and m.warnings == []


def test_v1_update_with_devices_warns(v1host):
    m = created(v1host)
    m.set({"devices": [{"allow": False, "access": "rwm"}]}, update=True)
    assert v1host.written("devices.allow") == [] and any("not changed by update" in w for w in m.warnings)


def test_v2_unified_errors(v2host):
    m = created(v2host)
    with pytest.raises(CgroupError, match="must be a file name"):
        m.set({"unified": {"../memory.max": "1"}})
    with pytest.raises(CgroupError, match="controller 'misc' not available"):
        m.set({"unified": {"misc.max": "1"}})


def test_v2_errors_name_field_and_file(v2host):
    m = created(v2host)
    v2host.fail["memory.max"] = errno.EINVAL
    with pytest.raises(CgroupError) as err:
        m.set({"memory": {"limit": 1000}})
    assert str(err.value) == (f"linux.resources.memory.limit: writing 1000 to {m.paths()['']}/memory.max: "
                              "invalid argument")


# --- freezer, stats, oom ----------------------------------------------------------------------

def test_freeze_thaw_v1(v1host):
    m = created(v1host)
    assert m.state() == "running"
    m.freeze()
    assert read(m, "freezer", "freezer.state") == "FROZEN"
    _put(m.paths()["freezer"] + "/freezer.self_freezing", "1")
    assert m.state() == "paused"
    m.thaw()
    assert read(m, "freezer", "freezer.state") == "THAWED"
    assert m.state() == "running"


def test_freeze_thaw_v2(v2host):
    m = created(v2host)
    m.freeze()
    assert (read(m, "", "cgroup.freeze"), m.state()) == ("1", "paused")
    m.thaw()
    assert (read(m, "", "cgroup.freeze"), m.state()) == ("0", "running")


def test_stats_v1_shapes_match_runc(v1host):
    m = created(v1host)
    p = m.paths()
    _put(p["cpuacct"] + "/cpuacct.usage", "3000")
    _put(p["cpuacct"] + "/cpuacct.usage_percpu", "1000 2000")
    _put(p["cpuacct"] + "/cpuacct.usage_all", "cpu user system\n0 700 300\n1 1500 500")
    _put(p["cpuacct"] + "/cpuacct.stat", "user 2\nsystem 1")
    _put(p["cpu"] + "/cpu.stat", "nr_periods 4\nnr_throttled 1\nthrottled_time 99")
    _put(p["memory"] + "/memory.stat", "rss 5\ncache 7")
    _put(p["memory"] + "/memory.usage_in_bytes", "4096")
    _put(p["pids"] + "/pids.current", "3")
    _put(p["cpuset"] + "/cpuset.cpus", "0-2,5")
    _put(p["blkio"] + "/blkio.throttle.io_service_bytes_recursive", "8:0 Read 10\n8:0 Write 0\nTotal 10")
    _put(p["blkio"] + "/blkio.throttle.io_serviced_recursive", "8:0 Read 1\nTotal 1")
    s = m.stats()
    assert s["cpu"] == {"usage": {"total": 3000, "percpu": [1000, 2000], "percpu_kernel": [300, 500],
                                  "percpu_user": [700, 1500], "kernel": 10000000, "user": 20000000},
                        "throttling": {"periods": 4, "throttledPeriods": 1, "throttledTime": 99}}
    assert s["memory"]["cache"] == 7 and s["memory"]["raw"] == {"cache": 7, "rss": 5}
    assert list(s["memory"]["raw"]) == ["cache", "rss"]  # sorted, as Go writes maps
    assert s["memory"]["usage"] == {"limit": int(UNLIMITED), "usage": 4096, "failcnt": 0}
    assert s["pids"] == {"current": 3}  # limit "max" -> 0 -> omitted
    assert s["cpuset"]["cpus"] == [0, 1, 2, 5] and s["cpuset"]["sched_load_balance"] == 1
    assert s["blkio"] == {"ioServicedRecursive": [{"major": 8, "op": "Read", "value": 1}],
                          "ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 10},
                                                      {"major": 8, "op": "Write"}]}
    assert s["intel_rdt"] == {} and s["network_interfaces"] is None
    json.dumps(s)


def test_stats_v2(v2host):
    m = created(v2host)
    d = m.paths()[""]
    _put(d + "/cpu.stat", "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 1\nthrottled_usec 4")
    _put(d + "/memory.current", "100")
    _put(d + "/memory.max", "1000")
    _put(d + "/memory.swap.current", "10")
    _put(d + "/memory.swap.max", "50")
    _put(d + "/memory.stat", "file 9\nanon 1")
    _put(d + "/pids.current", "2")
    _put(d + "/pids.max", "10")
    _put(d + "/io.stat", "8:0 rbytes=4 wbytes=5 rios=1 wios=2 dbytes=0 dios=0")
    s = m.stats()
    assert s["cpu"]["usage"] == {"total": 5000, "kernel": 2000, "user": 3000}
    assert s["cpu"]["throttling"] == {"periods": 1, "throttledTime": 4000}
    assert s["memory"]["usage"] == {"limit": 1000, "usage": 100, "failcnt": 0}
    assert s["memory"]["swap"] == {"limit": 1050, "usage": 110, "failcnt": 0}  # memory+swap
    assert s["memory"]["cache"] == 9
    assert s["pids"] == {"current": 2, "limit": 10}
    assert s["blkio"]["ioServiceBytesRecursive"] == [{"major": 8, "op": "Read", "value": 4},
                                                     {"major": 8, "op": "Write", "value": 5}]
    assert s["hugetlb"]["2MB"] == {"failcnt": 0} or "2MB" not in s["hugetlb"]


def test_oom_counters(v1host):
    m1 = created(v1host)
    _put(m1.paths()["memory"] + "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3")
    assert m1.oom_kill_count() == 3
    fd = m1.oom_event_fd()  # a plain file accepts the registration line
    try:
        assert isinstance(fd, int)
        efd, cfd = read(m1, "memory", "cgroup.event_control").split()
        assert int(efd) == fd
    finally:
        os.close(fd)


def test_oom_v2(v2host):
    m = created(v2host)
    _put(m.paths()[""] + "/memory.events", "oom 2\noom_kill 2")
    assert m.oom_kill_count() == 2
    assert m.oom_event_fd() is None


# --- conversions --------------------------------------------------------------------------------

def test_conversions_match_runc_1_1():
    assert [convert.cpu_shares_to_weight(s) for s in (0, 2, 1024, 262144)] == [0, 1, 39, 10000]
    assert convert.cpu_shares_to_weight(512) == 1 + (510 * 9999) // 262142 == 20
    assert [convert.blkio_weight_to_io_weight(w) for w in (0, 10, 100, 500, 1000)] == \
        [0, 1, 910, 4950, 10000]
    assert convert.memory_swap_to_v2(0, -1) == -1
    assert convert.memory_swap_to_v2(-1, 100) == -1
    assert convert.memory_swap_to_v2(300, 100) == 200
    assert convert.memory_swap_to_v2(0, 100) == 0
    assert convert.cpu_max(-1, 0) == "max 100000"
    assert convert.cpu_max(5000, 10000) == "5000 10000"
    assert [convert.hugepage_size_name(n) for n in ("hugepages-2048kB", "hugepages-1048576kB",
                                                    "hugepages-64kB", "other")] == ["2MB", "1GB", "64KB", None]


def test_import_is_cheap():
    import subprocess
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = f"import sys; sys.path.insert(0, {repo!r}); import pyrunc.cgroups; print(*sys.modules)"
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    for heavy in ("json", "re", "logging", "subprocess", "pyrunc.cgroups.stats", "pyrunc.cgroups.freezer"):
        assert heavy not in out


def test_rootless_v2_skipped_hierarchy_sets_nothing(tmp_path):
    """A rootless container on a cgroup v2 host whose cgroup the user may not create (runc's
    rootless cgroups: the hierarchy is skipped): set() with no limits is a no-op, not a
    lookup of the dropped directory; a unified limit then names the field."""
    m = Manager("unified", {}, {"": str(tmp_path)}, rootless=True, skipped=[""])
    m.set({})
    m.set({"pids": {}})
    with pytest.raises(CgroupError, match=r"^linux.resources.unified: cannot set unified limit: "
                                          r"container could not join or create cgroup"):
        m.set({"unified": {"pids.max": "5"}})
