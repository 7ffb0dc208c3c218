"""--systemd-cgroup: containers in transient systemd units, on a host whose init is systemd.

This machine has no systemd as init, so these skip here; the systemd VM lanes run them
(PYRUNC_REQUIRE_SYSTEMD=1 turns the skip into a failure): a pure cgroup v2 VM and a hybrid one
(cgroup v1 + name=systemd). The VMs emulate the CPU (TCG): one create takes seconds there, so
each test checks many things on the same container, and every call has a generous timeout.
"""

import json
import os
import subprocess
import sys

import pytest
from helpers import error_of, systemd_host_marks, wait_for  # noqa: E402

pytestmark = systemd_host_marks()

T = 240  # seconds per CLI call (TCG emulation is slow)
V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
RESOURCES = {"memory": {"limit": 64 << 20}, "pids": {"limit": 50},
             "cpu": {"shares": 1024, "quota": 50000, "period": 100000}}


def err_text(r):
    """The error without pyrunc's "<verb> failed: " lead."""
    text = error_of(r)
    return text.split(" failed: ", 1)[1] if text.startswith("pyrunc ") else text


def show(unit, *props):
    out = subprocess.run(["systemctl", "show", unit, *[f"-p{p}" for p in props]],
                         capture_output=True, text=True, timeout=60).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def unit_gone(unit):
    return show(unit, "LoadState")["LoadState"] == "not-found"


def unit_dirs(unit, slice_path="/system.slice"):
    """Where the unit's cgroup is in each hierarchy this host has."""
    if V2:
        return [f"/sys/fs/cgroup{slice_path}/{unit}"]
    dirs = []
    for name in ("memory", "pids", "cpu,cpuacct", "devices", "freezer", "systemd", "blkio"):
        if os.path.isdir(f"/sys/fs/cgroup/{name}"):
            dirs.append(f"/sys/fs/cgroup/{name}{slice_path}/{unit}")
    return dirs


def cgroup_file(unit, v2_name, v1_dir, v1_name, slice_path="/system.slice"):
    path = (f"/sys/fs/cgroup{slice_path}/{unit}/{v2_name}" if V2
            else f"/sys/fs/cgroup/{v1_dir}{slice_path}/{unit}/{v1_name}")
    with open(path) as f:
        return f.read().strip()


@pytest.fixture
def sd(pyrunc):
    """pyrunc with --systemd-cgroup and a long timeout."""
    def call(*args, **kw):
        kw.setdefault("timeout", T)
        return pyrunc("--systemd-cgroup", *args, **kw)
    call.runner = pyrunc
    return call


@pytest.fixture
def units():
    """Units the test names; each must be gone at the end (stopped if the test failed).
    Request it before `sd`: its check runs after the containers' clean-up."""
    made = []
    yield made
    left = [u for u in made if not unit_gone(u)]
    for u in left:
        # a container's pid 1 ignores SIGTERM: stop would wait for TimeoutStopSec
        subprocess.run(["systemctl", "kill", "-s", "KILL", u], timeout=60)
        subprocess.run(["systemctl", "stop", u], timeout=60)
        subprocess.run(["systemctl", "reset-failed", u], timeout=60, stderr=subprocess.DEVNULL)
    assert not left, f"units left behind: {left}"


def test_container_in_a_unit_limits_update_pause_ps_events_delete(units, sd, make_bundle, cid):
    """One container through its life: the unit and its properties, the init in the unit's
    cgroup, limits seen inside (cgroup namespace) and on the host, update, pause/resume, ps,
    events, kill --all, delete."""
    unit = f"pyrunctest-{cid}.scope"
    units.append(unit)
    slice_path = "/pyrunc.slice/pyrunc-test.slice"  # a nested slice: runc's ExpandSlice
    b = make_bundle("sh", "-c", "sleep 1000 & sleep 1000")
    b.linux["namespaces"].append({"type": "cgroup"})  # runc's template has none
    b.linux["resources"] = RESOURCES
    b.linux["cgroupsPath"] = f"pyrunc-test.slice:pyrunctest:{cid}"
    b.write()
    r = sd("run", "-d", "--bundle", b.path, cid)
    assert r.rc == 0, r.err
    pid = json.loads(sd("state", cid).out)["pid"]
    p = show(unit, "Delegate", "MemoryMax", "TasksMax", "ControlGroup", "CPUQuotaPerSecUSec",
             "DefaultDependencies", "Slice", "DevicePolicy", "Description", "ActiveState",
             "CPUWeight", "CPUShares", "MemoryLimit")
    assert p["ActiveState"] == "active" and p["Delegate"] == "yes", p
    assert p["ControlGroup"] == f"{slice_path}/{unit}" and p["Slice"] == "pyrunc-test.slice", p
    assert p["TasksMax"] == "50" and p["CPUQuotaPerSecUSec"] == "500ms", p
    assert p["DevicePolicy"] == "strict" and p["Description"] == f"pyrunc container {cid}", p
    if V2:
        assert p["MemoryMax"] == str(64 << 20) and p["CPUWeight"] == "39", p
    else:
        assert p["MemoryLimit"] == str(64 << 20) and p["CPUShares"] == "1024", p
    # the init in the unit's cgroup, in every hierarchy
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    assert lines and all(line.endswith(f"{slice_path}/{unit}") for line in lines
                         if line.split(":")[1] != "misc"), lines
    for d in unit_dirs(unit, slice_path):
        with open(d + "/cgroup.procs") as f:
            assert pid in [int(x) for x in f.read().split()], d
    # the limits: on the host, and inside through the cgroup namespace
    assert cgroup_file(unit, "memory.max", "memory", "memory.limit_in_bytes", slice_path) == str(64 << 20)
    assert cgroup_file(unit, "pids.max", "pids", "pids.max", slice_path) == "50"
    inside = "/sys/fs/cgroup/memory.max" if V2 else "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    r = sd("exec", cid, "sh", "-c", f"cat /proc/self/cgroup; cat {inside}")
    assert r.rc == 0, r.err
    assert str(64 << 20) in r.out.splitlines(), r.out
    if V2:
        assert r.out.splitlines()[0] == "0::/", r.out
    # update: the unit's properties and the files
    r = sd("update", "--memory", str(96 << 20), "--pids-limit", "60", cid)
    assert r.rc == 0, r.err
    p = show(unit, "MemoryMax", "MemoryLimit", "TasksMax")
    assert p["TasksMax"] == "60" and p["MemoryMax" if V2 else "MemoryLimit"] == str(96 << 20), p
    assert cgroup_file(unit, "memory.max", "memory", "memory.limit_in_bytes", slice_path) == str(96 << 20)
    assert cgroup_file(unit, "pids.max", "pids", "pids.max", slice_path) == "60"
    # pause / resume / ps / events
    assert sd("pause", cid).rc == 0
    assert json.loads(sd("state", cid).out)["status"] == "paused"
    assert sd("resume", cid).rc == 0
    assert json.loads(sd("state", cid).out)["status"] == "running"
    r = sd("ps", "--format", "json", cid)
    assert r.rc == 0, r.err
    procs = json.loads(r.out)
    assert pid in procs and len(procs) == 2, procs  # sh execs the last sleep
    r = sd("events", "--stats", cid)
    assert r.rc == 0, r.err
    data = json.loads(r.out)["data"]
    assert data["pids"]["current"] == 2 and data["memory"]["usage"]["usage"] > 0, data
    # kill --all: every process of the unit; the scope then ends on its own
    assert sd("kill", "--all", cid, "KILL").rc == 0
    wait_for(lambda: json.loads(sd("state", cid).out)["status"] == "stopped", timeout=60, what="stopped")
    r = sd("delete", cid)
    assert r.rc == 0, r.err
    assert unit_gone(unit)
    assert not [d for d in unit_dirs(unit, slice_path) if os.path.exists(d)]


def test_default_unit_annotations_and_forced_delete(units, sd, make_bundle, cid):
    """No cgroupsPath: <prefix>-<id>.scope in system.slice; org.systemd.property.* annotations
    reach the unit; delete --force stops a running unit and removes its cgroup."""
    unit = f"pyrunc-{cid}.scope"
    units.append(unit)
    b = make_bundle("sleep", "1000")
    b.linux.pop("cgroupsPath", None)
    b.config["annotations"] = {"org.systemd.property.TimeoutStopUSec": "uint64 7000000",
                               "org.systemd.property.CollectMode": "'inactive-or-failed'",
                               "org.systemd.property.RuntimeMaxSec": "1000"}
    b.write()
    r = sd("create", "--bundle", b.path, cid)
    assert r.rc == 0, r.err
    pid = json.loads(sd("state", cid).out)["pid"]
    p = show(unit, "TimeoutStopUSec", "CollectMode", "RuntimeMaxUSec", "ControlGroup", "PIDs")
    assert p["TimeoutStopUSec"] == "7s" and p["CollectMode"] == "inactive-or-failed", p
    assert p["RuntimeMaxUSec"] == "16min 40s" and p["ControlGroup"] == f"/system.slice/{unit}", p
    assert sd("start", cid).rc == 0
    r = sd("delete", "--force", cid)
    assert r.rc == 0, r.err
    assert not os.path.exists(f"/proc/{pid}")
    assert unit_gone(unit)
    assert not [d for d in unit_dirs(unit) if os.path.exists(d)]


def test_same_unit_twice_fails_and_leaves_the_first_alone(units, sd, make_bundle, cid):
    unit = f"pyrunctest-{cid}.scope"
    units.append(unit)
    b = make_bundle("sleep", "1000")
    b.linux["cgroupsPath"] = f"system.slice:pyrunctest:{cid}"
    b.write()
    assert sd("run", "-d", "--bundle", b.path, cid).rc == 0
    pid = json.loads(sd("state", cid).out)["pid"]
    r = sd("run", "-d", "--bundle", b.path, cid + "-2")
    assert r.rc == 1
    assert err_text(r).startswith(f'unable to start unit "{unit}": org.freedesktop.systemd1.UnitExists: '), r.err
    assert sd.runner.ids() == [cid]
    # the first container is untouched: still running, still in its unit
    assert json.loads(sd("state", cid).out)["status"] == "running"
    assert show(unit, "ActiveState")["ActiveState"] == "active"
    with open(unit_dirs(unit)[0] + "/cgroup.procs") as f:
        assert [int(x) for x in f.read().split()] == [pid]
    assert sd("delete", "--force", cid).rc == 0
    assert unit_gone(unit)


@pytest.mark.parametrize("path, annotations, message", [
    ("nope:p:x", {}, "linux.cgroupsPath: invalid slice name: nope"),
    ("a--b.slice:p:x", {}, "linux.cgroupsPath: invalid slice name: a--b.slice"),
    ("/a/b", {}, 'linux.cgroupsPath: expected cgroupsPath to be of format "slice:prefix:name" for '
                 "systemd cgroups, got '/a/b' instead"),
    ("system.slice:pyrunctest:{cid}", {"org.systemd.property.NoSuchThing": "true"},
     'unable to start unit "pyrunctest-{cid}.scope": org.freedesktop.DBus.Error.PropertyReadOnly: '
     "Cannot set property NoSuchThing, or unknown property."),
    ("system.slice:pyrunctest:{cid}", {"org.systemd.property.TimeoutStopUSec": "'soon'"},
     'unable to start unit "pyrunctest-{cid}.scope": System.Error.ENXIO: Failed to set unit properties: '
     "Unexpected message contents"),
], ids=["slice", "slice-dashes", "syntax", "unknown-property", "property-type"])
def test_bad_input_leaves_nothing(units, sd, make_bundle, cid, path, annotations, message):
    unit = f"pyrunctest-{cid}.scope"
    units.append(unit)
    b = make_bundle("true")
    b.linux["cgroupsPath"] = path.format(cid=cid)
    b.config["annotations"] = annotations
    b.write()
    r = sd("create", "--bundle", b.path, cid)
    assert r.rc == 1, r.err
    assert err_text(r).startswith(message.format(cid=cid)), r.err
    assert sd.runner.ids() == []
    assert not [d for d in unit_dirs(unit) if os.path.exists(d)]


def test_same_properties_as_runc(units, sd, make_bundle, cid):
    """Differential: the same bundle under runc --systemd-cgroup and pyrunc --systemd-cgroup
    gives units with the same properties."""
    if not os.path.exists("/usr/sbin/runc"):
        pytest.skip("Debian's runc is not installed")
    from helpers import Runner
    root = os.path.join(os.path.dirname(sd.runner.root), "runc-root")
    runc = Runner(["/usr/sbin/runc"], root)
    b = make_bundle("sleep", "1000")
    b.linux["resources"] = RESOURCES  # (no blockIO.weight: runc 1.1.5 fails on a VM disk without it)
    props = ("Delegate", "MemoryMax", "MemoryLimit", "TasksMax", "CPUWeight", "CPUShares",
             "CPUQuotaPerSecUSec", "CPUQuotaPeriodUSec", "DevicePolicy", "DefaultDependencies",
             "MemoryAccounting", "CPUAccounting", "TasksAccounting", "BlockIOWeight", "Slice")
    got = {}
    for name, rt in (("runc", runc), ("pyrunc", sd.runner)):
        unit = f"{name}diff-{cid}.scope"
        units.append(unit)
        b.linux["cgroupsPath"] = f"system.slice:{name}diff:{cid}"
        b.write()
        r = rt("--systemd-cgroup", "create", "--bundle", b.path, cid, timeout=T)
        assert r.rc == 0, (name, r.err)
        try:
            got[name] = show(unit, *props)
            got[name]["memory file"] = cgroup_file(unit, "memory.max", "memory", "memory.limit_in_bytes")
            got[name]["cpu file"] = cgroup_file(unit, "cpu.max", "cpu,cpuacct", "cpu.cfs_quota_us")
        finally:
            assert rt("delete", "--force", cid, timeout=T).rc == 0
    assert got["pyrunc"] == got["runc"]


USER_SCRIPT = """
import json, os, subprocess, sys
sys.path.insert(0, sys.argv[1])
from pyrunc.cgroups import manager_for
from pyrunc.cgroups.systemd import bus
sleeper = subprocess.Popen(["sleep", "60"])
m = manager_for("", sys.argv[2], systemd=True, rootless=True)
m.create()
m.set({"pids": {"limit": 20}})
m.apply(sleeper.pid)
d = m.paths()[""]
with open(f"/proc/{sleeper.pid}/cgroup") as f:
    cgroup = f.read().strip()
with open(d + "/pids.max") as f:
    pids_max = f.read().strip()
out = {"euid": os.geteuid(), "host_uid": bus.host_uid(), "dir": d, "cgroup": cgroup, "pids_max": pids_max}
m.destroy()
sleeper.wait(timeout=30)
out["left"] = os.path.exists(d)
print(json.dumps(out))
"""


@pytest.mark.parametrize("userns", [False, True], ids=["user", "user-in-userns"])
def test_systemd_user_instance(userns, cid):
    """runc's systemdUser: the user manager of uid 1000 (started here as root), reached on the
    user's bus as that uid; inside a user namespace (euid 0 there) the bus still sees 1000.
    The driver only: rootless containers themselves are the rootless mode's."""
    import pwd
    if not V2:
        pytest.skip("the systemd user instance can only delegate cgroup v2")
    try:
        pwd.getpwuid(1000)
    except KeyError:
        pytest.skip("no user with uid 1000 on this host")
    r = subprocess.run(["systemctl", "start", "user@1000.service"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: os.path.exists("/run/user/1000/bus"), timeout=60, what="the user's bus")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cmd = ["setpriv", "--reuid", "1000", "--regid", "1000", "--clear-groups",
           "env", "-i", "XDG_RUNTIME_DIR=/run/user/1000", "PATH=/usr/bin:/bin"]
    if userns:
        cmd += ["unshare", "--user", "--map-root-user"]
    cmd += [os.path.realpath(sys.executable), "-I", "-c", USER_SCRIPT, root, cid]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=T, cwd="/")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    unit = f"pyrunc-{cid}.scope"
    assert out["euid"] == (0 if userns else 1000) and out["host_uid"] == 1000, out
    assert out["dir"] == f"/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/{unit}", out
    assert out["cgroup"] == "0::" + out["dir"][len("/sys/fs/cgroup"):], out
    assert out["pids_max"] == "20" and out["left"] is False, out
