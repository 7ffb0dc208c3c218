"""Containers on a pure cgroup v2 host (as most current distributions are).

This machine is hybrid, so these tests skip here; `make test-v2` (part of `make test`) runs
them in a throw-away VM whose host is cgroup v2 only (../shared/vm). Each runs real
containers and checks the limits from inside (the container's /sys/fs/cgroup) and on the host.
"""

import json
import os
import time
import uuid

import pytest
from helpers import v2_host_marks  # noqa: E402

pytestmark = v2_host_marks()

RESOURCES = {"memory": {"limit": 64 << 20}, "pids": {"limit": 50},
             "cpu": {"quota": 50000, "period": 100000}}


@pytest.fixture
def cgroup_path():
    """A cgroupsPath of its own; the test fails if it is left behind."""
    parent = f"/pyrunc-test-{uuid.uuid4().hex[:8]}"
    yield parent + "/c"
    leaf = "/sys/fs/cgroup" + parent + "/c"
    assert not os.path.exists(leaf), f"{leaf} left behind"
    if os.path.isdir("/sys/fs/cgroup" + parent):
        os.rmdir("/sys/fs/cgroup" + parent)


def host_file(path, name):
    with open(f"/sys/fs/cgroup{path}/{name}") as f:
        return f.read().strip()


def test_limits_inside_and_on_the_host(pyrunc, make_bundle, cid, cgroup_path, no_leaks):
    b = make_bundle("sh", "-c", "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max "
                                "/sys/fs/cgroup/cpu.max; grep ' /sys/fs/cgroup ' /proc/self/mountinfo")
    b.linux["resources"] = RESOURCES
    b.linux["cgroupsPath"] = cgroup_path
    b.linux["namespaces"].append({"type": "cgroup"})  # runc's template has none
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    assert lines[:4] == ["0::/", str(64 << 20), "50", "50000 100000"], r.out  # cgroup namespace root
    assert " - cgroup2 " in lines[4] and " ro," in lines[4], lines[4]


def test_detached_container_pause_update_stats_delete(pyrunc, make_bundle, cid, cgroup_path, no_leaks):
    b = make_bundle("sleep", "60")
    b.linux["resources"] = RESOURCES
    b.linux["cgroupsPath"] = cgroup_path
    b.write()
    assert pyrunc("run", "-d", "--bundle", b.path, cid).rc == 0
    pid = json.loads(pyrunc("state", cid).out)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        assert f.read() == f"0::{cgroup_path}\n"
    assert (host_file(cgroup_path, "memory.max"), host_file(cgroup_path, "pids.max")) == (str(64 << 20), "50")

    assert pyrunc("pause", cid).rc == 0
    assert host_file(cgroup_path, "cgroup.freeze") == "1"
    assert json.loads(pyrunc("state", cid).out)["status"] == "paused"
    assert pyrunc("resume", cid).rc == 0
    assert host_file(cgroup_path, "cgroup.freeze") == "0"

    r = pyrunc("update", "--memory", "128m", "--pids-limit", "60", "--cpu-quota", "25000", cid)
    assert r.rc == 0, r.err
    assert host_file(cgroup_path, "memory.max") == str(128 << 20)
    assert host_file(cgroup_path, "pids.max") == "60"
    assert host_file(cgroup_path, "cpu.max") == "25000 100000"

    stats = json.loads(pyrunc("events", "--stats", cid).out)["data"]
    assert stats["pids"]["current"] >= 1 and stats["memory"]["usage"]["usage"] > 0
    assert stats["memory"]["usage"]["limit"] == 128 << 20

    assert pyrunc("delete", "--force", cid).rc == 0
    deadline = time.monotonic() + 5
    while os.path.exists(f"/sys/fs/cgroup{cgroup_path}") and time.monotonic() < deadline:
        time.sleep(0.05)


def test_exec_joins_the_cgroup(pyrunc, make_bundle, cid, cgroup_path, no_leaks):
    b = make_bundle("sleep", "60")
    b.linux["cgroupsPath"] = cgroup_path
    b.linux["namespaces"].append({"type": "cgroup"})  # runc's template has none
    b.write()
    assert pyrunc("run", "-d", "--bundle", b.path, cid).rc == 0
    r = pyrunc("exec", cid, "cat", "/proc/self/cgroup")
    assert (r.rc, r.out) == (0, "0::/\n"), r.err
    assert int(host_file(cgroup_path, "pids.current")) == 1  # the exec'd cat has gone
    assert pyrunc("delete", "--force", cid).rc == 0
