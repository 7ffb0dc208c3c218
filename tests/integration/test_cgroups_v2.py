"""pyrunc.cgroups on this host's real cgroup2 hierarchy, driven as a pure cgroup v2 host.

On a hybrid host that is the cgroup2 mount beside the v1 ones (/sys/fs/cgroup/unified):
the Manager gets a Layout that shows only that mount, so every v2 code path runs against
the real kernel. Every test removes its cgroup, killing what is left in it, even on failure.
"""

import os
import signal
import uuid

import pytest

from pyrunc.cgroups import CgroupError, Layout, manager_for, probe
from pyrunc.cgroups.convert import hugepage_size_name
from helpers import CgroupHarness as Harness  # noqa: E402

HOST = probe()
pytestmark = [
    pytest.mark.skipif(HOST.unified is None, reason="no cgroup2 hierarchy on this host"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]


def _v2_layout():
    return Layout(unified=HOST.unified, mode="unified", own=HOST.own)


@pytest.fixture
def h():
    name = f"pyrunc-test-{uuid.uuid4().hex[:12]}"
    # a hybrid host's cgroup2 root has no processes of its own: use it; on a unified host
    # stay below our own cgroup's parent, as runc's default path does
    path = "/" + name if HOST.mode == "hybrid" else name
    harness = Harness(manager_for(path, name, layout=_v2_layout()))
    try:
        yield harness
    finally:
        harness.cleanup()


def _read(m, name):
    with open(os.path.join(m.paths()[""], name)) as f:
        return f.read().strip()


def _cgroup_of(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return [line.split(":", 2)[2] for line in f.read().splitlines() if line.startswith("0::")][0]


def test_create_apply_pids_destroy(h):
    m = h.m
    m.create()
    d = m.paths()[""]
    assert os.path.isdir(d) and os.path.exists(d + "/cgroup.procs")
    p = h.spawn()
    m.apply(p.pid)
    assert _cgroup_of(p.pid) == "/" + os.path.relpath(d, HOST.unified[0])
    # a sub-cgroup the container made for itself: pids() and destroy() see through it
    os.mkdir(d + "/sub")
    q = h.spawn()
    with open(d + "/sub/cgroup.procs", "w") as f:
        f.write(str(q.pid))
    assert m.pids() == sorted([p.pid, q.pid])
    assert m.stats()["pids"]["current"] >= 1
    for proc in (p, q):
        proc.kill()
        proc.wait()
    m.destroy()
    assert not os.path.exists(d)
    m.destroy()  # already gone: fine


def _page_sizes():
    try:
        return sorted(filter(None, map(hugepage_size_name, os.listdir("/sys/kernel/mm/hugepages"))))
    except OSError:
        return []


@pytest.mark.skipif(not _page_sizes(), reason="no huge page sizes on this kernel")
def test_hugetlb_limits(h):
    m = h.m
    if "hugetlb" not in HOST.unified_controllers:
        pytest.skip("the cgroup2 hierarchy has no hugetlb controller")
    m.create()
    assert "hugetlb" in _read(m, "cgroup.controllers").split()  # enabled down the path
    limits = []
    for size in _page_sizes():
        unit = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[size[-2:]]
        limits.append({"pageSize": size, "limit": 2 * int(size[:-2]) * unit})
    m.set({"hugepageLimits": limits})
    for item in limits:
        assert _read(m, f"hugetlb.{item['pageSize']}.max") == str(item["limit"])
        if os.path.exists(os.path.join(m.paths()[""], f"hugetlb.{item['pageSize']}.rsvd.max")):
            assert _read(m, f"hugetlb.{item['pageSize']}.rsvd.max") == str(item["limit"])
    p = h.spawn()
    m.apply(p.pid)
    stats = m.stats()
    assert set(stats["hugetlb"]) == {item["pageSize"] for item in limits}
    assert all(entry.get("usage", 0) == 0 for entry in stats["hugetlb"].values())


def test_freeze_and_thaw(h):
    m = h.m
    m.create()
    p = h.spawn()
    m.apply(p.pid)
    assert m.state() == "running"
    m.freeze()
    assert m.state() == "paused"
    assert "frozen 1" in _read(m, "cgroup.events").splitlines()
    m.thaw()
    assert m.state() == "running"
    assert "frozen 0" in _read(m, "cgroup.events").splitlines()
    p.send_signal(signal.SIGTERM)  # a thawed task runs and dies
    assert p.wait(timeout=5) == -signal.SIGTERM


def test_unified_map_is_written_verbatim(h):
    m = h.m
    m.create()
    m.set({"unified": {"cgroup.max.descendants": "3", "cgroup.max.depth": "2"}})
    assert (_read(m, "cgroup.max.descendants"), _read(m, "cgroup.max.depth")) == ("3", "2")
    with pytest.raises(CgroupError, match=r"linux.resources.unified\['no.such'\]: unified resource "
                                          r"'no.such' can't be set: controller 'no' not available"):
        m.set({"unified": {"no.such": "1"}})


def test_devices_are_refused_or_warned_about(h):
    m = h.m
    m.create()
    m.set({"devices": [{"allow": False, "access": "rwm"}]})
    assert any("eBPF" in w for w in m.warnings)
    with pytest.raises(CgroupError, match=r"devices\[0\]: cannot deny 'c 1:3 rwm'"):
        m.set({"devices": [{"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]})


def test_state_survives_a_round_trip(h):
    m = h.m
    m.create()
    p = h.spawn()
    m.apply(p.pid)
    from pyrunc.cgroups import Manager
    again = Manager.from_state(m.to_state())
    assert again.pids() == [p.pid]
    again.freeze()
    assert m.state() == "paused"
    again.thaw()
