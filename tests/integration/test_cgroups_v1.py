"""pyrunc.cgroups on this host's real cgroup v1 hierarchies (legacy or hybrid host).

The cgroup path is relative, as runc's default: each hierarchy's directory is made below
this process's own cgroup there, so a test's processes stay inside whatever limits the
test runner itself lives under. Every test removes its cgroups, killing what is left in
them, even on failure.
"""

import os
import select
import signal
import subprocess
import sys
import time
import uuid

import pytest
from helpers import CgroupHarness as Harness  # noqa: E402

from pyrunc.cgroups import CgroupError, Manager, manager_for, probe

HOST = probe()
pytestmark = [
    pytest.mark.skipif(HOST.mode == "unified" or "memory" not in HOST.v1,
                       reason="no cgroup v1 memory hierarchy on this host"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

MB = 1 << 20


@pytest.fixture
def h():
    name = f"pyrunc-test-{uuid.uuid4().hex[:12]}"
    harness = Harness(manager_for(name, name))
    try:
        harness.m.create()
        yield harness
    finally:
        harness.cleanup()


def test_every_hierarchy_gets_the_process(h):
    m = h.m
    paths = m.paths()
    assert set(HOST.v1) <= set(paths)
    p = h.spawn()
    m.apply(p.pid)
    with open(f"/proc/{p.pid}/cgroup") as f:
        lines = dict(line.split(":", 2)[1:] for line in f.read().splitlines())
    for key, (mountpoint, root) in HOST.v1.items():
        want = "/" + os.path.relpath(paths[key], mountpoint)
        got = [path for ctrls, path in lines.items() if key in ctrls.split(",")][0]
        assert got == (want if root == "/" else root.rstrip("/") + want)
    assert m.pids() == [p.pid]


def test_limits_are_written_and_read_back(h):
    m = h.m
    res = {"memory": {"limit": 64 * MB, "reservation": 32 * MB, "swappiness": 20},
           "cpu": {"shares": 256, "quota": 25000, "period": 100000, "cpus": "0", "mems": "0"},
           "pids": {"limit": 50},
           "devices": [{"allow": False, "access": "rwm"}]}
    if os.path.exists(os.path.join(m.paths()["memory"], "memory.memsw.limit_in_bytes")):
        res["memory"]["swap"] = 128 * MB
    m.set(res)
    assert h.read("memory", "memory.limit_in_bytes") == str(64 * MB)
    assert h.read("memory", "memory.soft_limit_in_bytes") == str(32 * MB)
    assert h.read("memory", "memory.swappiness") == "20"
    if "swap" in res["memory"]:
        assert h.read("memory", "memory.memsw.limit_in_bytes") == str(128 * MB)
    assert (h.read("cpu", "cpu.shares"), h.read("cpu", "cpu.cfs_quota_us"),
            h.read("cpu", "cpu.cfs_period_us")) == ("256", "25000", "100000")
    assert (h.read("cpuset", "cpuset.cpus"), h.read("cpuset", "cpuset.mems")) == ("0", "0")
    assert h.read("pids", "pids.max") == "50"
    # what runc 1.1.5 leaves in devices.list for the same rules (checked on this host)
    assert sorted(h.read("devices", "devices.list").splitlines()) == sorted(
        ["b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
         "c 5:0 rwm", "c 5:2 rwm", "c 10:200 rwm", "c 136:* rwm"])


@pytest.mark.skipif("memory" in HOST.v1 and not os.path.exists(
    os.path.join(HOST.v1["memory"][0], "memory.memsw.limit_in_bytes")), reason="no swap accounting")
def test_update_raises_and_lowers_memory_with_swap(h):
    m = h.m
    m.set({"memory": {"limit": 64 * MB, "swap": 96 * MB}})
    m.set({"memory": {"limit": 256 * MB, "swap": 512 * MB}}, update=True)
    assert (h.read("memory", "memory.limit_in_bytes"), h.read("memory", "memory.memsw.limit_in_bytes")) \
        == (str(256 * MB), str(512 * MB))
    m.set({"memory": {"limit": 32 * MB, "swap": 48 * MB}}, update=True)
    assert (h.read("memory", "memory.limit_in_bytes"), h.read("memory", "memory.memsw.limit_in_bytes")) \
        == (str(32 * MB), str(48 * MB))
    m.set({"memory": {"limit": 0, "swap": 0}, "pids": {"limit": 0}}, update=True)  # docker's zeros
    assert h.read("memory", "memory.limit_in_bytes") == str(32 * MB)
    with pytest.raises(CgroupError, match="linux.resources.memory.limit: writing .* invalid argument"):
        m.set({"memory": {"limit": 64 * MB}}, update=True)  # above memory+swap


def test_freezer_freezes_a_real_process(h):
    m = h.m
    p = h.spawn("sh", "-c", "while :; do :; done")
    m.apply(p.pid)
    m.freeze()
    assert h.read("freezer", "freezer.state") == "FROZEN"
    assert m.state() == "paused"
    ticks = _cpu_ticks(p.pid)
    time.sleep(0.2)
    assert _cpu_ticks(p.pid) == ticks  # a frozen busy loop uses no cpu
    m.thaw()
    assert h.read("freezer", "freezer.state") == "THAWED"
    assert m.state() == "running"
    assert Manager.from_state(m.to_state()).state() == "running"


def _cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_stats_are_sane(h):
    m = h.m
    m.set({"memory": {"limit": 64 * MB}, "pids": {"limit": 50}})
    p = h.spawn(sys.executable, "-c", "x = b'x' * (8 << 20); import time; time.sleep(60)",
                preexec_fn=lambda: m.apply(os.getpid()))
    deadline = time.monotonic() + 5
    while m.stats()["memory"]["usage"].get("usage", 0) < 4 * MB and time.monotonic() < deadline:
        time.sleep(0.02)
    s = m.stats()
    assert s["pids"] == {"current": 1, "limit": 50}
    assert s["memory"]["usage"]["limit"] == 64 * MB
    assert 4 * MB <= s["memory"]["usage"]["usage"] <= 64 * MB
    assert s["memory"]["usage"]["max"] >= s["memory"]["usage"]["usage"]
    assert "total_rss" in s["memory"]["raw"] or "rss" in s["memory"]["raw"]
    if "cpuacct" in m.paths():
        assert s["cpu"]["usage"]["total"] > 0 and len(s["cpu"]["usage"]["percpu"]) == os.cpu_count()
    assert set(s) == {"cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
                      "network_interfaces"}
    assert m.oom_kill_count() == 0
    p.kill()


def test_oom_is_counted_and_signalled(h):
    m = h.m
    res = {"memory": {"limit": 32 * MB}}
    if os.path.exists(os.path.join(m.paths()["memory"], "memory.memsw.limit_in_bytes")):
        res["memory"]["swap"] = 32 * MB  # no swap to escape to
    m.set(res)
    fd = m.oom_event_fd()
    try:
        p = h.spawn(sys.executable, "-c", "x = b'x' * (256 << 20)",
                    preexec_fn=lambda: m.apply(os.getpid()), stderr=subprocess.DEVNULL)
        assert p.wait(timeout=30) == -signal.SIGKILL
        assert select.select([fd], [], [], 5)[0] == [fd]
        assert int.from_bytes(os.read(fd, 8), sys.byteorder) >= 1
        assert m.oom_kill_count() >= 1
    finally:
        os.close(fd)


@pytest.mark.skipif(HOST.mode != "hybrid" or "hugetlb" in HOST.v1
                    or "hugetlb" not in HOST.unified_controllers
                    or not os.listdir("/sys/kernel/mm/hugepages"),
                    reason="needs hugetlb on the cgroup2 side of a hybrid host")
def test_hybrid_hugetlb_goes_to_cgroup2(h):
    m = h.m
    m.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MB}]})
    assert h.read("", "hugetlb.2MB.max") == str(4 * MB)
    assert "2MB" in m.stats()["hugetlb"]


def test_destroy_removes_sub_cgroups(h):
    m = h.m
    for d in set(m.paths().values()):
        os.mkdir(os.path.join(d, "child"))
    m.destroy()
    assert not any(os.path.exists(d) for d in m.paths().values())
