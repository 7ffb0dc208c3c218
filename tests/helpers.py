"""Assertion helpers shared by the integration tests (the fixtures are in conftest.py)."""

import errno
import json
import os
import re
import subprocess
import tempfile
import time

# runc's text-format error line (logrus), as pyrunc writes it too
TEXT_LINE = re.compile(r'time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" level=error msg="(.*)"\n\Z')


def error_of(r):
    """The message of the one text-format error line on stderr (Go %q escapes undone)."""
    m = TEXT_LINE.fullmatch(r.err)
    assert m, f"not exactly one error line: {r.err!r}"
    return m[1].replace('\\"', '"').replace("\\\\", "\\")


def fails(r, message):
    assert (r.rc, r.out) == (1, ""), (r.rc, r.out, r.err)
    assert error_of(r) == message


def state(runner, cid):
    r = runner("state", cid)
    assert r.rc == 0, r.err
    return json.loads(r.out)


def wait_for(predicate, timeout=10.0, what="condition", step=0.02):
    """The predicate's first truthy value, polled every `step` s; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


def sh(pyrunc, bundle, cid, script, *run_args, **kw):
    """Run `sh -c script` in a container from `bundle`; returns the finished process."""
    bundle.process["args"] = ["sh", "-c", script]
    bundle.write()
    return pyrunc("run", "--bundle", bundle.path, *run_args, cid, **kw)


def sh_ok(pyrunc, bundle, cid, script, *run_args, **kw):
    r = sh(pyrunc, bundle, cid, script, *run_args, **kw)
    assert r.rc == 0, f"rc={r.rc} out={r.out!r} err={r.err!r}"
    return r.out


def create(pyrunc, bundle, cid):
    """`create` (the init waits on the exec fifo) and return the init's host pid."""
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, cid)
    assert r.rc == 0, r.err
    return json.loads(pyrunc("state", cid).out)["pid"]


def destroy_cgroup(manager, procs=()):
    """Kill what is in a test cgroup (thawed first), then remove it; asserts nothing is left."""
    import os
    import signal

    from pyrunc.cgroups import CgroupError
    try:
        manager.thaw()
    except CgroupError:
        pass
    for pid in manager.pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for p in procs:
        p.kill()
        p.wait()
    deadline = time.monotonic() + 5
    while manager.pids() and time.monotonic() < deadline:
        time.sleep(0.01)
    manager.destroy()
    assert not any(os.path.exists(d) for d in manager.paths().values())


def mountpoints():
    """The mount points of this process's mount namespace, sorted (one per mount: repeats kept)."""
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split()[4] for line in f)


def proc_stat(pid):
    """(comm, state letter, ppid) of a host process from /proc/PID/stat, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    rest = raw[raw.rindex(b")") + 2:].split()
    return raw[raw.index(b"(") + 1:raw.rindex(b")")].decode(errors="replace"), rest[0].decode(), int(rest[1])


def comm_of(pid):
    """A host process's name (comm), "" once it is gone."""
    st = proc_stat(pid)
    return st[0] if st else ""


def alive(pid):
    """Running and not a zombie (this host's PID 1 does not reap, so zombies linger)."""
    st = proc_stat(pid)
    return st is not None and st[1] not in ("Z", "X")


def children(pid):
    """Host pids whose parent is pid."""
    return sorted(int(n) for n in os.listdir("/proc")
                  if n.isdigit() and (proc_stat(n) or (None, None, None))[2] == pid)


def live_inits(root):
    """Waiting container inits (comm pyrunc:init, not zombies) holding a file under root:
    a created container's init keeps its state directory open until exec."""
    out = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(name)
        if st is None or st[0] != "pyrunc:init" or st[1] in ("Z", "X"):
            continue
        try:
            for fd in os.listdir(f"/proc/{name}/fd"):
                if os.readlink(f"/proc/{name}/fd/{fd}").startswith(root + "/"):
                    out.add(int(name))
                    break
        except OSError:
            continue
    return out


class CgroupHarness:
    """A cgroup Manager for a test's fresh cgroup, and the processes the test started in it."""

    def __init__(self, m):
        self.m = m
        self.procs = []

    def spawn(self, *argv, **kw):
        import subprocess
        p = subprocess.Popen(list(argv) or ["sleep", "60"], **kw)
        self.procs.append(p)
        return p

    def read(self, key, name):
        import os
        with open(os.path.join(self.m.paths()[key], name)) as f:
            return f.read().strip()

    def cleanup(self):
        destroy_cgroup(self.m, self.procs)


class Runner:
    """Runs a runtime binary with its own --root; result has .rc .out .err."""

    def __init__(self, argv, root):
        self.argv = argv
        self.root = root

    def __call__(self, *args, input=None, timeout=30, global_args=(), check=False, **kw):
        """Output goes to files, not pipes: a created container keeps the caller's stdio open."""
        cmd = [*self.argv, "--root", self.root, *global_args, *args]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(cmd, input=input.encode() if isinstance(input, str) else input,
                               stdin=None if input is not None else subprocess.DEVNULL,
                               stdout=out, stderr=err, timeout=timeout, **kw)
            out.seek(0)
            err.seek(0)
            p.rc, p.out, p.err = p.returncode, out.read().decode(), err.read().decode()
        if check and p.rc != 0:
            raise AssertionError(f"{cmd} exited {p.rc}: {p.err}")
        return p

    def ids(self):
        return container_ids(self.root)

    def cleanup(self):
        leftovers = []
        for cid in self.ids():
            state = self("state", cid)
            if state.rc == 0 and json.loads(state.out)["status"] != "stopped":
                leftovers.append(cid)
            self("delete", "--force", cid)
        return leftovers


# docker's default capabilities (CAP_MKNOD among them): what most containers run with
DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
               "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
               "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def host_kmsg():
    """The host's kernel log (every record still in the ring buffer)."""
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    chunks = []
    try:
        while True:
            try:
                chunks.append(os.read(fd, 8192))
            except BlockingIOError:
                break
            except OSError as err:
                if err.errno != errno.EPIPE:  # a record was overwritten while we read: go on
                    raise
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def v2_host_marks():
    """pytestmark of the tests that need a pure cgroup v2 host: they skip on a hybrid one, and
    under `make test-v2` (PYRUNC_REQUIRE_V2) a host that is not v2 is an error, not a skip."""
    import pytest
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    if os.environ.get("PYRUNC_REQUIRE_V2") and not v2:
        raise RuntimeError("PYRUNC_REQUIRE_V2 is set but /sys/fs/cgroup is not a cgroup v2 mount")
    return [pytest.mark.skipif(not v2, reason="needs a cgroup v2 (unified) host: run `make test-v2`"),
            pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def a_disk():
    """(major, minor) of a block device of this machine; loop0's when there is none (a VM on
    9p), whose open fails with ENXIO, not EPERM, when nothing filters it."""
    try:
        for name in sorted(os.listdir("/sys/class/block")):
            with open(f"/sys/class/block/{name}/dev") as f:
                major, minor = f.read().split(":")
                return int(major), int(minor)
    except OSError:
        pass
    return 7, 0


def bpf_prog_exists(prog_id):
    """Whether the kernel still has the BPF program `prog_id` (freed asynchronously)."""
    from pyrunc.linux import bpf
    try:
        os.close(bpf.prog_get_fd_by_id(prog_id))
        return True
    except OSError as err:
        assert err.errno == errno.ENOENT
        return False


def systemd_host_marks():
    """pytestmark of the tests that need systemd as init (the --systemd-cgroup driver): they
    skip elsewhere; with PYRUNC_REQUIRE_SYSTEMD set (the systemd VM lanes) that is an error."""
    import pytest
    running = os.path.isdir("/run/systemd/system") and not os.path.islink("/run/systemd/system")
    if os.environ.get("PYRUNC_REQUIRE_SYSTEMD") and not running:
        raise RuntimeError("PYRUNC_REQUIRE_SYSTEMD is set but systemd is not running as init "
                           "(/run/systemd/system is missing)")
    return [pytest.mark.skipif(not running, reason="needs systemd as init: run the systemd VM lane"),
            pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def container_ids(root):
    """Entries under a --root that are containers (names with "@" never are)."""
    try:
        return sorted(n for n in os.listdir(root) if not n.startswith("@"))
    except FileNotFoundError:
        return []
