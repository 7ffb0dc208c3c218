"""pyrunc.cgroups on this host's real cgroup2 hierarchy, driven as a pure cgroup v2 host.

On a hybrid host that is the cgroup2 mount beside the v1 ones (/sys/fs/cgroup/unified):
the Manager gets a Layout that shows only that mount, so every v2 code path runs against
the real kernel. Every test removes its cgroup, killing what is left in it, even on failure.
"""

import os
import signal
import stat
import time
import uuid

import pytest
from helpers import DOCKER_CAPS, a_disk, bpf_prog_exists, host_kmsg  # noqa: E402
from helpers import CgroupHarness as Harness  # noqa: E402

from pyrunc.cgroups import CgroupError, Layout, manager_for, probe
from pyrunc.cgroups.convert import hugepage_size_name

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


# --- device rules: an eBPF program on the cgroup, enforced by the real kernel ---------------

PROBE = """
import errno, os, sys
sys.stdin.readline()  # wait until the test has moved us into the cgroup
out = []
for act in sys.argv[1:]:
    op, path, arg = act.split(",")
    try:
        if op == "mknod":
            t, major, minor = arg.split(":")
            os.mknod(path, 0o600 | (0o020000 if t == "c" else 0o060000), os.makedev(int(major), int(minor)))
        else:
            flags = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}[arg]
            os.close(os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY))
        out.append("ok")
    except OSError as e:
        out.append(errno.errorcode[e.errno])
print(" ".join(out))
"""


def _probe(h, *actions):
    """Run the actions (open,PATH,r|w|rw / mknod,PATH,c:MAJ:MIN) in a process inside h's cgroup."""
    import subprocess
    import sys
    p = h.spawn(sys.executable, "-I", "-c", PROBE, *actions, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True)
    h.m.apply(p.pid)
    out, _ = p.communicate("go\n", timeout=20)
    return out.split()


def _ours(m):
    from pyrunc.cgroups.ebpf_attach import attached
    return attached(m.paths()[""])


def _gone(prog_id, timeout=10):
    """The kernel frees a cgroup's programs asynchronously (after the last reference)."""
    deadline = time.monotonic() + timeout
    while bpf_prog_exists(prog_id):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_deny_all_blocks_kmsg_and_block_devices_mknod_included(h, tmp_path):
    m = h.m
    m.create()
    m.set({"devices": [{"allow": False, "access": "rwm"}]})  # docker's list: deny all (+ runc's defaults)
    (prog_id, name), = _ours(m)
    assert name == "pyrunc_devices"
    kmsg, disk = tmp_path / "kmsg", tmp_path / "disk"
    disk_numbers = "{:d}:{:d}".format(*a_disk())
    got = _probe(h, "open,/dev/null,rw", "open,/dev/zero,r", "open,/dev/kmsg,w", "open,/dev/kmsg,r",
                 f"mknod,{kmsg},c:1:11", f"open,{kmsg},w", f"mknod,{disk},b:{disk_numbers}", f"open,{disk},r")
    assert got == ["ok", "ok", "EPERM", "EPERM", "ok", "EPERM", "ok", "EPERM"]


def test_allow_rules_and_update_replace_the_program(h, tmp_path):
    m = h.m
    m.create()
    major, minor = a_disk()
    disk = tmp_path / "disk"
    os.mknod(disk, 0o600 | stat.S_IFBLK, os.makedev(major, minor))
    m.set({"devices": [{"allow": False, "access": "rwm"},
                       {"allow": True, "type": "b", "major": major, "minor": minor, "access": "r"}]})
    (first, _), = _ours(m)
    got = _probe(h, f"open,{disk},r", f"open,{disk},rw", "open,/dev/kmsg,r")
    assert got[0] in ("ok", "ENXIO") and got[1:] == ["EPERM", "EPERM"]  # ENXIO: no such disk (VM)
    m.set({"devices": [{"allow": False, "access": "rwm"},
                       {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]}, update=True)
    (second, name), = _ours(m)  # exactly one: the new one; the old one detached
    assert second != first and name == "pyrunc_devices"
    assert _gone(first)
    assert _probe(h, f"open,{disk},r", "open,/dev/kmsg,r", "open,/dev/kmsg,w") == ["EPERM", "ok", "EPERM"]
    m.set({"unified": {"cgroup.max.depth": "3"}}, update=True)  # an update without device rules
    assert _ours(m) == [(second, "pyrunc_devices")]


def test_privileged_allows_everything_and_destroy_leaves_nothing(h, tmp_path):
    m = h.m
    m.create()
    m.set({"devices": [{"allow": True, "access": "rwm"}]})
    (prog_id, _), = _ours(m)
    disk = tmp_path / "disk"
    disk_numbers = "{:d}:{:d}".format(*a_disk())
    got = _probe(h, "open,/dev/kmsg,r", f"mknod,{disk},b:{disk_numbers}", f"open,{disk},r")
    assert got[:2] == ["ok", "ok"] and got[2] in ("ok", "ENXIO")
    h.cleanup()
    h.procs.clear()
    assert _gone(prog_id)


def test_refused_rules_install_nothing(h):
    m = h.m
    m.create()
    with pytest.raises(CgroupError, match=r"devices\[2\]: cannot deny 'c 1:3 w' after 'c 1:\* rwm'"):
        m.set({"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1,
                                                               "access": "rwm"},
                           {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}]})
    assert _ours(m) == []


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


@pytest.mark.parametrize("filtered", [True, False], ids=["filtered", "unfiltered-control"])
def test_a_real_container_with_cap_mknod_in_a_filtered_cgroup(pyrunc, make_bundle, cid, tmp_path, filtered):
    """A pyrunc container with docker's capabilities makes /dev/kmsg's node and writes to it.
    Its device rules allow everything (so on this hybrid host the v1 devices cgroup lets it
    through); between create and start the program for docker's deny-all list is put on the
    container's cgroup2 directory. Filtered: EPERM, nothing reaches the host's kernel log.
    Unfiltered (the control): the write lands in the host's log, so the check can see it."""
    import json

    from pyrunc.cgroups import devices as devrules
    from pyrunc.cgroups import ebpf_attach, ebpf_devices
    marker = f"pyrunc-devices-{uuid.uuid4().hex}"
    out = tmp_path / "out"
    out.mkdir()
    b = make_bundle("sh", "-c", f"exec >/out/log 2>&1; mknod /dev/k c 1 11 && echo mknod-ok; "
                                f"echo {marker} > /dev/k && echo WROTE; echo done")
    b.process["capabilities"] = {k: list(DOCKER_CAPS) for k in ("bounding", "effective", "permitted")}
    b.linux["resources"] = {"devices": [{"allow": True, "access": "rwm"}]}
    b.linux["cgroupsPath"] = f"/pyrunc-test-{uuid.uuid4().hex[:8]}"
    b.config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out),
                               "options": ["rbind", "rw"]})
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 0, r.err
    with open(os.path.join(pyrunc.root, cid, "state.json")) as f:
        cgroup2 = json.load(f)["cgroup"]["paths"][""]
    if filtered:
        policy = devrules.emulate(devrules.all_rules([{"allow": False, "access": "rwm"}]))
        ebpf_attach.install(cgroup2, ebpf_devices.build(policy))
    assert pyrunc("start", cid).rc == 0
    deadline = time.monotonic() + 20
    while "done" not in (out / "log").read_text() if (out / "log").exists() else True:
        assert time.monotonic() < deadline, "the container did not finish"
        time.sleep(0.05)
    log = (out / "log").read_text()
    assert pyrunc("delete", "--force", cid).rc == 0
    if filtered:
        assert log.split("\n")[0] == "mknod-ok" and "WROTE" not in log, log
        assert "Operation not permitted" in log and marker not in host_kmsg()
    else:
        assert "WROTE" in log and marker in host_kmsg(), log
