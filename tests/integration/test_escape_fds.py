"""No host fd and no host directory reachable from a container through fds (issue 9).

runc CVE-2024-21626: an fd of a host directory left open in the init (the state directory,
the caller's cwd, an fd the caller leaked without close-on-exec) is a way out: `process.cwd`
"/proc/self/fd/N" starts the process with a host cwd, and a process with CAP_SYS_PTRACE walks
/proc/1/fd/N/.. of a created container's init. A canary file in the host's tmp dir is what the
container must never see; it lives outside every rootfs.
"""

import os
import signal
import stat
import subprocess
import time
import uuid

import pytest
from bundle import make_rootfs
from helpers import alive, children, live_inits, state, wait_for

UP = "../" * 16  # more than enough to reach "/" from anywhere on the host
CWDS = [f"/proc/self/fd/{n}" for n in range(3, 11)] + ["/proc/self/cwd", "/proc/1/cwd"]
LEAKED = 47  # the caller's fd of a host directory (no close-on-exec)


@pytest.fixture(scope="module")
def own_rootfs(tmp_path_factory):
    """A rootfs of this module's own: a refused cwd may still have been created in it."""
    return make_rootfs(str(tmp_path_factory.mktemp("escape-rootfs")))


@pytest.fixture
def bundle(make_bundle, own_rootfs):
    b = make_bundle()
    b.config["root"]["path"] = own_rootfs
    return b.write()


@pytest.fixture
def canary():
    """A file in the host's tmp dir (not below any rootfs): (its name, its content)."""
    token = uuid.uuid4().hex
    path = f"/tmp/pyrunc-canary-{token}"
    with open(path, "w") as f:
        f.write(f"HOST-CANARY-{token}\n")
    yield f"pyrunc-canary-{token}", f"HOST-CANARY-{token}"
    os.unlink(path)


def escape_script(canary_name):
    """Climb from the cwd and look for the canary; ends with `true`, so exit 0 means it ran."""
    return f"pwd; ls -a {UP}tmp; cat {UP}tmp/{canary_name}; true"


def sees_canary(text, canary):
    """The canary listed by ls (a line of its own) or its content printed by cat (a failing
    cat names the path in its error: that is not seeing it)."""
    name, content = canary
    return content in text or name in text.splitlines()


def assert_contained(rc, out, err, canary, cwd):
    """Either refused with an error naming the cwd, or ran inside the container."""
    assert not sees_canary(out + err, canary), f"host reached from {cwd}: {out!r}"
    if rc != 0:
        assert "cwd" in err and cwd in err, (cwd, rc, err)
        assert "Error" not in err and "Traceback" not in err, err  # no Python exception name
    return rc == 0


def pyrunc_cmd(pyrunc, *args):
    return [*pyrunc.argv, "--root", pyrunc.root, *args]


def leak_and_run(cmd, directory, fd=LEAKED, **kw):
    """Run cmd with an fd of `directory` at `fd`, inheritable, as a careless caller would
    (bash's `exec N<dir`: no close-on-exec)."""
    line = f'exec {fd}<"$1" || exit 99; shift; exec "$@"'
    return subprocess.run(["bash", "-c", line, "_", directory, *cmd], stdin=subprocess.DEVNULL,
                          timeout=30, **kw)


def create_and_start(pyrunc, b, cid, tmp_path, leak=None):
    """`create` with stdio in files (the init keeps them), then `start`; (rc, out, err).
    leak: the cwd, to leak the host's tmp dir at its fd number (run_leaking)."""
    out_path, err_path = tmp_path / f"{cid}.out", tmp_path / f"{cid}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        cmd = pyrunc_cmd(pyrunc, "create", "--bundle", b.path, cid)
        r = run_leaking(cmd, leak or "/", stdout=out, stderr=err)
    if r.returncode != 0:
        return r.returncode, out_path.read_text(), err_path.read_text()
    s = pyrunc("start", cid)
    assert s.rc == 0, s.err
    wait_for(lambda: state(pyrunc, cid)["status"] == "stopped", what="the container to exit")
    assert pyrunc("delete", cid).rc == 0
    return 0, out_path.read_text(), err_path.read_text()


def host_dirs_among_fds(pid):
    """(fd, target) of every fd of a host process that is a directory."""
    found = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            st = os.stat(f"/proc/{pid}/fd/{name}")
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            found.append((int(name), target))
    return found


# ---------------------------------------------------------------- process.cwd through an fd
# For /proc/self/fd/N the caller also leaks a host directory (the host's tmp dir, where the
# canary is) at fd N, so each case is a real way out unless pyrunc closes it or refuses the cwd.

def leaked_at(cwd):
    prefix = "/proc/self/fd/"
    return int(cwd[len(prefix):]) if cwd.startswith(prefix) else None


def run_leaking(cmd, cwd, **kw):
    n = leaked_at(cwd)
    if n is None:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, timeout=30, **kw)
    return leak_and_run(cmd, "/tmp", fd=n, **kw)


@pytest.mark.parametrize("cwd", CWDS)
def test_cwd_through_an_fd_create_start(pyrunc, bundle, cid, tmp_path, canary, cwd):
    bundle.process["cwd"] = cwd
    bundle.process["args"] = ["sh", "-c", escape_script(canary[0])]
    bundle.write()
    rc, out, err = create_and_start(pyrunc, bundle, cid, tmp_path, leak=cwd)
    assert_contained(rc, out, err, canary, cwd)


@pytest.mark.parametrize("cwd", CWDS)
def test_cwd_through_an_fd_run(pyrunc, bundle, cid, canary, cwd):
    bundle.process["cwd"] = cwd
    bundle.process["args"] = ["sh", "-c", escape_script(canary[0])]
    bundle.write()
    r = run_leaking(pyrunc_cmd(pyrunc, "run", "--bundle", bundle.path, cid), cwd,
                    capture_output=True, text=True)
    assert_contained(r.returncode, r.stdout, r.stderr, canary, cwd)


@pytest.fixture
def sleeping(pyrunc, bundle, cid):
    bundle.process["args"] = ["sleep", "1000"]
    bundle.write()
    r = pyrunc("run", "-d", "--bundle", bundle.path, cid)
    assert r.rc == 0, r.err
    yield state(pyrunc, cid)["pid"]
    pyrunc("delete", "--force", cid)


@pytest.mark.parametrize("cwd", CWDS)
def test_cwd_through_an_fd_exec(pyrunc, sleeping, cid, canary, cwd):
    r = run_leaking(pyrunc_cmd(pyrunc, "exec", "--cwd", cwd, cid, "sh", "-c",
                               escape_script(canary[0])), cwd, capture_output=True, text=True)
    assert_contained(r.returncode, r.stdout, r.stderr, canary, cwd)


# ---------------------------------------------------------------- a caller's leaked fd

def test_leaked_fd_reaches_no_created_init(pyrunc, bundle, cid, tmp_path, canary):
    """The init waits for `start` with none of the caller's fds; its cwd cannot be the leak."""
    bundle.process["cwd"] = f"/proc/self/fd/{LEAKED}"
    bundle.process["args"] = ["sh", "-c", escape_script(canary[0])]
    bundle.write()
    with open(tmp_path / "out", "w") as out:
        r = leak_and_run(pyrunc_cmd(pyrunc, "create", "--bundle", bundle.path, cid), "/tmp",
                         stdout=out, stderr=subprocess.PIPE, text=True)
    # refused (the fd is not there, or is a magic link): nothing was created
    assert_contained(r.returncode, "", r.stderr, canary, f"/proc/self/fd/{LEAKED}")
    assert r.returncode != 0 and not pyrunc.ids()
    # with an ordinary cwd the init is created: none of its fds is a directory
    bundle.process["cwd"] = "/"
    bundle.write()
    with open(tmp_path / "out", "w") as out:
        r = leak_and_run(pyrunc_cmd(pyrunc, "create", "--bundle", bundle.path, cid), "/tmp",
                         stdout=out, stderr=out)
    assert r.returncode == 0
    init = state(pyrunc, cid)["pid"]
    assert host_dirs_among_fds(init) == []
    assert str(LEAKED) not in os.listdir(f"/proc/{init}/fd")
    assert pyrunc("delete", "--force", cid).rc == 0


def test_leaked_fd_as_cwd_run(pyrunc, bundle, cid, canary):
    cwd = f"/proc/self/fd/{LEAKED}"
    bundle.process["cwd"] = cwd
    bundle.process["args"] = ["sh", "-c", escape_script(canary[0])]
    bundle.write()
    r = leak_and_run(pyrunc_cmd(pyrunc, "run", "--bundle", bundle.path, cid), "/tmp",
                     capture_output=True, text=True)
    assert_contained(r.returncode, r.stdout, r.stderr, canary, cwd)


def test_leaked_fd_as_cwd_exec(pyrunc, sleeping, cid, canary):
    cwd = f"/proc/self/fd/{LEAKED}"
    r = leak_and_run(pyrunc_cmd(pyrunc, "exec", "--cwd", cwd, cid, "sh", "-c",
                                escape_script(canary[0])), "/tmp", capture_output=True, text=True)
    assert_contained(r.returncode, r.stdout, r.stderr, canary, cwd)


def test_preserved_fd_is_the_callers_choice(pyrunc, bundle, cid, tmp_path):
    """--preserve-fds 1 passes the caller's fd 3 even if it is a directory, as runc does."""
    bundle.process["args"] = ["sh", "-c", "test -d /proc/self/fd/3 && echo dir"]
    bundle.write()
    cmd = pyrunc_cmd(pyrunc, "run", "--preserve-fds", "1", "--bundle", bundle.path, cid)
    r = leak_and_run(cmd, str(tmp_path), fd=3, capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (0, "dir\n"), r.stderr


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_preserved_directory_cannot_be_the_cwd(pyrunc, bundle, cid, canary, verb):
    """A preserved fd stays open (the caller's choice), so here only the cwd walk stands
    between the process and the host: /proc/self/fd/3 is a magic link, refused."""
    cwd = "/proc/self/fd/3"
    script = escape_script(canary[0])
    if verb == "run":
        bundle.process["cwd"] = cwd
        bundle.process["args"] = ["sh", "-c", script]
        bundle.write()
        cmd = pyrunc_cmd(pyrunc, "run", "--preserve-fds", "1", "--bundle", bundle.path, cid)
    else:
        bundle.process["args"] = ["sleep", "1000"]
        bundle.write()
        assert pyrunc("run", "-d", "--bundle", bundle.path, cid).rc == 0
        cmd = pyrunc_cmd(pyrunc, "exec", "--preserve-fds", "1", "--cwd", cwd, cid, "sh", "-c", script)
    r = leak_and_run(cmd, "/tmp", fd=3, capture_output=True, text=True)
    assert r.returncode != 0  # refused, not merely contained
    assert_contained(r.returncode, r.stdout, r.stderr, canary, cwd)
    pyrunc("delete", "--force", cid)


# ---------------------------------------------------------------- a created container's init

def test_created_init_holds_no_directory(pyrunc, bundle, cid, tmp_path, canary):
    with open(tmp_path / "out", "w") as out:
        r = subprocess.run(pyrunc_cmd(pyrunc, "create", "--bundle", bundle.path, cid),
                           stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=30)
    assert r.returncode == 0
    init = state(pyrunc, cid)["pid"]
    assert host_dirs_among_fds(init) == []
    under_root = [os.readlink(f"/proc/{init}/fd/{n}") for n in os.listdir(f"/proc/{init}/fd")
                  if os.readlink(f"/proc/{init}/fd/{n}").startswith(pyrunc.root + "/")]
    assert under_root == [os.path.join(pyrunc.root, cid, "exec.fifo")]
    # From inside, with the capability that opens a non-dumpable init's /proc/1/fd:
    # every fd of the init, climbed, leads nowhere on the host.
    script = (f"ls /proc/1/fd; for f in /proc/1/fd/*; do ls -a $f/{UP}tmp; "
              f"cat $f/{UP}tmp/{canary[0]}; done; true")
    e = pyrunc("exec", "--cap", "CAP_SYS_PTRACE", cid, "sh", "-c", script)
    assert e.rc == 0, e.err
    fds = e.out.split("\n", 1)[0]
    assert fds.split(), e.out  # it could read the init's fds: the test means something
    assert not sees_canary(e.out + e.err, canary), e.out
    assert pyrunc("delete", "--force", cid).rc == 0


def test_start_after_a_start_killed_mid_way(pyrunc, bundle, cid, tmp_path):
    """A `start` that dies between opening exec.fifo and writing leaves the init waiting,
    not spinning (a read-only fifo end would see POLLHUP forever); a later start works."""
    bundle.process["args"] = ["echo", "started"]
    bundle.write()
    with open(tmp_path / "out", "w") as out:
        r = subprocess.run(pyrunc_cmd(pyrunc, "create", "--bundle", bundle.path, cid),
                           stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=30)
    assert r.returncode == 0
    init = state(pyrunc, cid)["pid"]
    fifo = os.path.join(pyrunc.root, cid, "exec.fifo")
    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # the half-done start
    ticks = _cpu_ticks(init)
    time.sleep(1.0)
    assert _cpu_ticks(init) - ticks < 10, "the init spins after a writer closed the fifo"
    assert state(pyrunc, cid)["status"] == "created"
    assert pyrunc("start", cid).rc == 0
    wait_for(lambda: state(pyrunc, cid)["status"] == "stopped")
    assert (tmp_path / "out").read_text() == "started\n"


def _cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_start_of_a_dead_init_is_runcs_error(pyrunc, bundle, cid, tmp_path):
    with open(tmp_path / "out", "w") as out:
        r = subprocess.run(pyrunc_cmd(pyrunc, "create", "--bundle", bundle.path, cid),
                           stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=30)
    assert r.returncode == 0
    init = state(pyrunc, cid)["pid"]
    os.kill(init, signal.SIGKILL)
    wait_for(lambda: not alive(init))
    s = pyrunc("start", cid)
    assert s.rc == 1 and ("has stopped" in s.err or "already dead" in s.err), s.err


# ---------------------------------------------------------------- create killed mid-way

def test_create_killed_during_the_handshake(pyrunc, bundle, cid, tmp_path):
    """create SIGKILLed while the init runs a createContainer hook: the init holds no fd of
    the state directory (so no lock), notices the host is gone, and `delete --force` removes
    everything at once instead of blocking on the lock."""
    bundle.config["hooks"] = {"createContainer": [{"path": "/bin/sleep", "args": ["sleep", "60"]}]}
    bundle.write()
    with open(tmp_path / "out", "w") as out:
        p = subprocess.Popen(pyrunc_cmd(pyrunc, "create", "--bundle", bundle.path, cid),
                             stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        def the_hook():
            for init in live_inits(pyrunc.root):  # holds exec.fifo, under our --root
                for pid in children(init):
                    if _comm(pid) == "sleep":
                        return init, pid
            return None

        init, hook = wait_for(the_hook, what="the createContainer hook")
        assert host_dirs_among_fds(init) == []  # no lock, no state dir, no cwd of the caller
        p.kill()
        p.wait()
        t0 = time.monotonic()
        d = pyrunc("delete", "--force", cid, timeout=10)
        assert d.rc == 0, d.err
        assert time.monotonic() - t0 < 5
        assert not os.path.exists(os.path.join(pyrunc.root, cid))
        wait_for(lambda: not alive(init) and not alive(hook), timeout=5,
                 what="the init and its hook to go")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        # Known leftover: the container's cgroup, empty. `create` made it and died before it
        # recorded it, so `delete --force` cannot know it (runc leaves it too).
        for d in _cgroups_named(cid):
            wait_for(lambda d=d: _empty(d), timeout=5, what=f"{d} to empty")
            os.rmdir(d)


def _cgroups_named(name):
    found = []
    for top, dirs, _ in os.walk("/sys/fs/cgroup"):
        if name in dirs:
            found.append(os.path.join(top, name))
            dirs.remove(name)
        if top.count("/") >= 7:
            dirs.clear()
    return sorted(found, key=len, reverse=True)


def _empty(cgroup):
    try:
        with open(os.path.join(cgroup, "cgroup.procs")) as f:
            return not f.read().strip()
    except FileNotFoundError:
        return True


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None
