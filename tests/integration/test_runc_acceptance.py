"""Configs runc 1.1.5 accepts (and a few it refuses) compared with pyrunc (issue 11).

Each case runs the same bundle under Debian's runc and pyrunc and compares what the container
printed, the exit status and the error or warning lines (runtime name and timestamps aside).
"""

import os
import re
import signal
import subprocess
import uuid

import pytest
from helpers import wait_for  # noqa: E402

pytestmark = pytest.mark.differential

STAMP = re.compile(r'time="[^"]*"')


def _norm(text):
    return re.sub(r"\b(py)?runc\b", "RUNTIME", STAMP.sub('time="T"', text))


def _runc_only_lines(err):
    # runc also logs its validator's complaint with a Go struct dump (no pyrunc equivalent)
    return "".join(line for line in err.splitlines(True) if 'msg="invalid configuration"' not in line)


def _same(runc, pyrunc, bundle, cid):
    a = runc("run", "--bundle", bundle.path, cid)
    b = pyrunc("run", "--bundle", bundle.path, cid)
    ra = (a.rc, a.out, _norm(_runc_only_lines(a.err)))
    rb = (b.rc, b.out, _norm(b.err))
    assert rb == ra, f"\nrunc:   {ra}\npyrunc: {rb}"
    return b


def _devrule(access):
    return lambda c: c["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": access})


ACCEPTED = [
    ("unknown-capability", ["sh", "-c", "grep CapBnd /proc/self/status"],
     lambda c: c["process"]["capabilities"]["bounding"].append("CAP_NO_SUCH_THING")),
    ("user-uid-only", ["id"], lambda c: c["process"].update(user={"uid": 1000})),
    ("user-missing", ["id"], lambda c: c["process"].pop("user")),
    ("device-access-rwa", ["sh", "-c", "echo x > /dev/null && echo wrote"], _devrule("rwa")),
    ("device-access-rwx", ["sh", "-c", "echo x > /dev/null && echo wrote"], _devrule("rwx")),
    ("device-access-x", ["sh", "-c", "echo x > /dev/null && echo wrote"], _devrule("x")),
    ("device-outside-dev", ["sh", "-c", "ls -ln /mnt/mynull | cut -c1-10,30-45"],
     lambda c: c["linux"].update(devices=[{"path": "/mnt/mynull", "type": "c", "major": 1, "minor": 3}])),
    ("device-trailing-slash", ["sh", "-c", "ls -ln /dev/mynull | cut -c1-10,30-45"],
     lambda c: c["linux"].update(devices=[{"path": "/dev/mynull/", "type": "c", "major": 1, "minor": 3}])),
    ("ioPriority-without-priority", ["echo", "ran"],
     lambda c: c["process"].update(ioPriority={"class": "IOPRIO_CLASS_BE"})),
    ("timeOffsets-null", ["echo", "ran"], lambda c: c["linux"].update(timeOffsets=None)),
    ("relative-mount-destination", ["sh", "-c", "grep ' /mnt ' /proc/self/mountinfo | cut -d' ' -f5,9"],
     lambda c: c["mounts"].append({"destination": "mnt", "type": "tmpfs", "source": "tmpfs"})),
    ("relative-mount-destination-dotdot", ["sh", "-c", "grep ' /mnt ' /proc/self/mountinfo | cut -d' ' -f5,9"],
     lambda c: c["mounts"].append({"destination": "../mnt/x/..", "type": "tmpfs", "source": "tmpfs"})),
]


@pytest.mark.parametrize("name, args, edit", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted_like_runc(runc, pyrunc, make_bundle, cid, name, args, edit):
    b = make_bundle(*args)
    edit(b.config)
    b.config["root"]["readonly"] = False  # a device outside /dev is made in the rootfs itself
    b.write()
    r = _same(runc, pyrunc, b, cid)
    assert r.rc == 0, r.err


def test_exec_process_without_user(runc, pyrunc, make_bundle, cid, tmp_path):
    import json
    b = make_bundle("sleep", "100")
    doc = tmp_path / "process.json"
    doc.write_text(json.dumps({"args": ["/bin/id"], "cwd": "/", "env": ["PATH=/bin"]}))
    results = []
    for runner in (runc, pyrunc):
        assert runner("run", "-d", "--bundle", b.path, cid).rc == 0
        results.append(runner("exec", "--process", str(doc), cid))
        runner("delete", "-f", cid)
    a, p = results
    assert (p.rc, p.out, p.err) == (a.rc, a.out, a.err) == (0, "uid=0(root) gid=0(root)\n", "")


REFUSED = [
    ("sysctl-kernel-hostname", lambda c: c["linux"].update(sysctl={"kernel.hostname": "x"})),
    ("device-access-empty", _devrule("")),
]


@pytest.mark.parametrize("name, edit", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_like_runc(runc, pyrunc, make_bundle, cid, name, edit):
    b = make_bundle("true")
    edit(b.config)
    b.write()
    a = runc("run", "--bundle", b.path, cid)
    p = pyrunc("run", "--bundle", b.path, cid)
    assert a.rc == p.rc == 1
    runc_msg = re.search(r'msg="runc run failed: (.*)"', a.err)[1]
    assert runc_msg in p.err, (a.err, p.err)
    assert not pyrunc.ids()


def test_notify_on_write_is_refused_like_runc(runc, pyrunc, make_bundle, cid, tmp_path):
    """runc refuses SCMP_ACT_NOTIFY for write (the init would block on its own listener
    before anyone holds it: pyrunc used to hang) and as the default action."""
    for seccomp in ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(tmp_path / "nosock"),
                     "syscalls": [{"names": ["getpid", "write"], "action": "SCMP_ACT_NOTIFY"}]},
                    {"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": str(tmp_path / "nosock"),
                     "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ALLOW"}]}):
        b = make_bundle("echo", "hi")
        b.linux["seccomp"] = seccomp
        b.write()
        a = runc("run", "--bundle", b.path, cid, timeout=20)
        p = pyrunc("run", "--bundle", b.path, cid, timeout=20)
        assert (p.rc, p.out, _norm(p.err)) == (a.rc, a.out, _norm(a.err)), (a.err, p.err)
        assert a.rc == 1 and not pyrunc.ids()
        runc("delete", "-f", cid)


# --------------------------------------------------------------------------- existing cgroups

def _unified():
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def _dirs(name):
    if _unified():
        return ["/sys/fs/cgroup" + name]
    return [os.path.join("/sys/fs/cgroup", c) + name for c in sorted(os.listdir("/sys/fs/cgroup"))
            if os.path.isdir(os.path.join("/sys/fs/cgroup", c, ""))
            and not os.path.islink(os.path.join("/sys/fs/cgroup", c))
            and os.path.exists(os.path.join("/sys/fs/cgroup", c, "cgroup.procs"))]


@pytest.fixture
def own_cgroup():
    """A cgroup made by the test (every hierarchy), removed at the end."""
    name = "/pyrunc-acceptance-" + uuid.uuid4().hex[:10]
    dirs = _dirs(name)
    for d in dirs:
        os.mkdir(d)
        if os.path.basename(os.path.dirname(d)) == "cpuset":
            for f in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(os.path.dirname(d), f)) as src, open(os.path.join(d, f), "w") as dst:
                    dst.write(src.read())
    yield name, dirs
    for d in dirs:
        if os.path.exists(d):
            _set_frozen(d, False)
            for pid in open(os.path.join(d, "cgroup.procs")).read().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            wait_for(lambda d=d: not open(os.path.join(d, "cgroup.procs")).read().strip(), what="empty")
            os.rmdir(d)


def _set_frozen(d, frozen):
    if os.path.exists(os.path.join(d, "cgroup.freeze")):
        with open(os.path.join(d, "cgroup.freeze"), "w") as f:
            f.write("1" if frozen else "0")
    elif os.path.exists(os.path.join(d, "freezer.state")):
        with open(os.path.join(d, "freezer.state"), "w") as f:
            f.write("FROZEN" if frozen else "THAWED")


def test_frozen_cgroup_is_refused_like_runc(runc, pyrunc, make_bundle, cid, own_cgroup):
    """A cgroupsPath naming a frozen cgroup: runc refuses it; pyrunc used to wait forever for
    an init that could never run. The cgroup (not the container's) stays."""
    name, dirs = own_cgroup
    for d in dirs:
        _set_frozen(d, True)
    b = make_bundle("echo", "hi")
    b.linux["cgroupsPath"] = name
    b.write()
    a = runc("run", "-d", "--bundle", b.path, cid, timeout=20)
    p = pyrunc("run", "-d", "--bundle", b.path, cid, timeout=20)
    assert (p.rc, _norm(p.err)) == (a.rc, _norm(a.err)) == (1, 'time="T" level=error msg="RUNTIME run failed: '
                                                           'container\'s cgroup unexpectedly frozen"\n'), (a.err, p.err)
    assert not pyrunc.ids()
    assert all(os.path.isdir(d) for d in dirs)


def test_non_empty_cgroup_is_refused_as_runc_1_2(pyrunc, make_bundle, cid, own_cgroup):
    """A cgroup that already has processes is refused, as runc >= 1.2 does (1.1.5 ran the
    container with two warnings): runc's words, the process and the cgroup left alone, no
    state."""
    name, dirs = own_cgroup
    sleeper = subprocess.Popen(["sleep", "100"])
    try:
        for d in dirs:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(sleeper.pid))
        b = make_bundle("echo", "hi")
        b.linux["cgroupsPath"] = name
        b.write()
        p = pyrunc("run", "--bundle", b.path, cid, timeout=20)
        assert p.rc == 1 and p.out == "", p.err
        assert "container's cgroup is not empty: 1 process(es) found" in p.err
        assert sleeper.poll() is None and all(os.path.isdir(d) for d in dirs)
        assert not pyrunc.ids()
    finally:
        sleeper.kill()
        sleeper.wait()
