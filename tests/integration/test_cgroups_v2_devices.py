"""Device rules of real containers on a pure cgroup v2 host: the eBPF device filter.

The attack: a container with CAP_MKNOD (docker grants it by default) makes the node of a
host device its /dev does not have, e.g. /dev/kmsg (c 1:11: writes go into the host's
kernel log) or a disk, and opens it. On cgroup v2 only the eBPF program on the container's
cgroup stands in the way: mknod stays allowed (runc's "c *:* m", "b *:* m"), opening does not.

Skips on this hybrid host; `make test-v2` runs it in the cgroup v2 VM (../shared/vm). The
same program against this host's cgroup2 mount: tests/integration/test_cgroups_v2.py.
"""

import json
import os
import time
import uuid

import pytest
from helpers import DOCKER_CAPS, a_disk, bpf_prog_exists, host_kmsg, v2_host_marks  # noqa: E402

pytestmark = v2_host_marks()

DENY_ALL = {"allow": False, "access": "rwm"}
KMSG_WRITE = {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}


@pytest.fixture
def cgroup_path():
    """A cgroupsPath of its own; the test fails if it is left behind. (Ask for it before
    `pyrunc`, so that the containers are deleted before this checks.)"""
    parent = f"/pyrunc-test-{uuid.uuid4().hex[:8]}"
    yield parent + "/c"
    leaf = "/sys/fs/cgroup" + parent + "/c"
    deadline = time.monotonic() + 5
    while os.path.exists(leaf) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(leaf), f"{leaf} left behind"
    if os.path.isdir("/sys/fs/cgroup" + parent):
        os.rmdir("/sys/fs/cgroup" + parent)


def docker_like(b, cgroup_path, devices):
    """docker's capabilities (CAP_MKNOD among them), a cgroupsPath and device rules."""
    b.process["capabilities"] = {k: list(DOCKER_CAPS) for k in ("bounding", "effective", "permitted")}
    b.linux["cgroupsPath"] = cgroup_path
    b.linux["resources"] = {"devices": devices}
    return b.write()


def programs(cgroup_path):
    from pyrunc.cgroups.ebpf_attach import attached
    return attached("/sys/fs/cgroup" + cgroup_path)


ATTACK = ("mknod /dev/k c 1 11 && echo mknod-c-ok; echo {marker} > /dev/k && echo WROTE; "
          "mknod /dev/d b {major} {minor} && echo mknod-b-ok; head -c 1 /dev/d >/dev/null && echo READ; "
          "echo x > /dev/null && echo null-ok")


def test_mknod_of_kmsg_and_a_disk_cannot_be_opened(cgroup_path, pyrunc, make_bundle, cid, no_leaks):
    marker = f"pyrunc-devices-{uuid.uuid4().hex}"
    major, minor = a_disk()
    b = docker_like(make_bundle("sh", "-c", ATTACK.format(marker=marker, major=major, minor=minor)),
                    cgroup_path, [DENY_ALL])
    r = pyrunc("run", "--bundle", b.path, cid)
    assert r.rc == 0, r.err
    assert r.out.split() == ["mknod-c-ok", "mknod-b-ok", "null-ok"], (r.out, r.err)
    assert r.err.count("Operation not permitted") == 2, r.err  # EPERM: the filter, not ENXIO
    assert marker not in host_kmsg()


def test_an_allow_rule_opens_exactly_that_device(cgroup_path, pyrunc, make_bundle, cid, no_leaks):
    """The positive control of the test above: the same attack with c 1:11 w allowed reaches the
    host's log (so `marker not in host_kmsg()` above can see an escape), the disk still not."""
    marker = f"pyrunc-devices-{uuid.uuid4().hex}"
    major, minor = a_disk()
    b = docker_like(make_bundle("sh", "-c", ATTACK.format(marker=marker, major=major, minor=minor)),
                    cgroup_path, [DENY_ALL, KMSG_WRITE])
    r = pyrunc("run", "--bundle", b.path, cid)
    assert r.rc == 0, r.err
    assert r.out.split() == ["mknod-c-ok", "WROTE", "mknod-b-ok", "null-ok"], (r.out, r.err)
    assert marker in host_kmsg()


def test_update_replaces_the_program_and_delete_removes_it(cgroup_path, pyrunc, make_bundle, cid,
                                                           no_leaks, tmp_path):
    b = docker_like(make_bundle("sleep", "3600"), cgroup_path, [DENY_ALL])
    assert pyrunc("run", "-d", "--bundle", b.path, cid).rc == 0
    (first, name), = programs(cgroup_path)
    assert name == "pyrunc_devices"
    r = pyrunc("exec", cid, "mknod", "/dev/k", "c", "1", "11")
    assert r.rc == 0, r.err

    def write_kmsg(allowed):
        marker = f"pyrunc-devices-{uuid.uuid4().hex}"
        r = pyrunc("exec", cid, "sh", "-c", f"echo {marker} > /dev/k")
        assert (r.rc == 0, marker in host_kmsg()) == (allowed, allowed), r.err
        if not allowed:
            assert "Operation not permitted" in r.err, r.err

    write_kmsg(False)  # (slow under emulation: hence sleep 3600)
    res = tmp_path / "resources.json"
    res.write_text(json.dumps({"devices": [DENY_ALL, KMSG_WRITE]}))
    r = pyrunc("update", "-r", str(res), cid)
    assert r.rc == 0, r.err
    (second, name), = programs(cgroup_path)  # exactly one: the new one, the old one detached
    assert second != first and name == "pyrunc_devices"
    write_kmsg(True)

    res.write_text(json.dumps({"devices": [DENY_ALL]}))
    assert pyrunc("update", "-r", str(res), cid).rc == 0
    (third, _), = programs(cgroup_path)
    assert third not in (first, second)
    write_kmsg(False)
    r = pyrunc("update", "--pids-limit", "99", cid)
    assert r.rc == 0, r.err  # no device rules: the program is kept
    assert programs(cgroup_path) == [(third, "pyrunc_devices")]

    assert pyrunc("delete", "--force", cid).rc == 0
    deadline = time.monotonic() + 10  # the kernel frees a dead cgroup's programs asynchronously
    while any(map(bpf_prog_exists, (first, second, third))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(bpf_prog_exists, (first, second, third)))
