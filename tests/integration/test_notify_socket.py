"""NOTIFY_SOCKET (sd_notify passthrough) with real containers.

A unix datagram socket of the test plays systemd: the runtime runs with NOTIFY_SOCKET=<it>, the
container finds NOTIFY_SOCKET=/run/notify/notify.sock and sends READY=1 there, and the runtime
forwards "READY=1\\n" then "MAINPID=<pid>\\n" (runc 1.1.5's behaviour; runtime/notify_socket.py).

busybox has no applet that can send a unix datagram (its nc has no -U, logger only writes
"<PRI>date tag: msg" to /dev/log), so the container sends with the host's own python: the host's
/usr is bind-mounted read-only at /usr and python is started through the ELF loader by path
(the rootfs has no /lib64; PATH=/bin keeps the shell on busybox's applets). The host's python
and loader must live under /usr (Debian's do), else these tests skip.

The container talks to the test through a host directory mounted at /ctl: it writes what it
sees there and waits for /ctl/go before it notifies, so a test can tell that `start` (or
`run -d`) is still waiting. Each container gets its own rootfs (the runtime creates /run/notify
in it, as runc does) so the session's shared rootfs is left alone.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from bundle import make_rootfs
from helpers import error_of, state, wait_for

ENV = "NOTIFY_SOCKET"
IN_CONTAINER = "/run/notify/notify.sock"
# argv[1:] are sent, one datagram each, to the container's NOTIFY_SOCKET
SEND = ("import os, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        "for m in sys.argv[1:]:\n"
        "    s.sendto(m.encode().decode('unicode_escape').encode(), os.environ['NOTIFY_SOCKET'])\n")
OBSERVE = ('{ echo "env=$NOTIFY_SOCKET"; [ -S "$NOTIFY_SOCKET" ] && stat -c "%A %F" "$NOTIFY_SOCKET"; '
           'grep " /run/notify " /proc/self/mountinfo; } > /ctl/.seen; mv /ctl/.seen /ctl/seen; ')
WAIT_GO = "i=0; while [ ! -e /ctl/go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; "


# --------------------------------------------------------------------------- fixtures and helpers

class Datagrams(socket.socket):
    """A unix datagram socket that remembers the path it is bound to."""

    def __init__(self):
        super().__init__(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.path = None


def _host_python():
    """(ELF loader, python) of this interpreter, both under /usr, or skip."""
    # the system interpreter behind a venv (the tests run on the venv's copy of it)
    python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    loader = None
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "/ld-linux" in path or "/ld-musl" in path:
                loader = os.path.realpath(path)
                break
    if not (loader and python.startswith("/usr/") and loader.startswith("/usr/")):
        pytest.skip(f"the host's python ({python}) and loader ({loader}) are not under /usr")
    return loader, python


@pytest.fixture(scope="module")
def notify_rootfs(tmp_path_factory):
    return make_rootfs(str(tmp_path_factory.mktemp("notify-rootfs")))


@pytest.fixture
def systemd():
    """The 'systemd' end: a bound unix datagram socket at a short path (sun_path is 108 bytes)."""
    directory = tempfile.mkdtemp(prefix="nfy-", dir="/tmp")
    sock = Datagrams()
    try:
        sock.path = os.path.join(directory, "notify")
        sock.bind(sock.path)
        sock.settimeout(15)
        yield sock
    finally:
        sock.close()
        shutil.rmtree(directory)


def received(sock, n):
    return [sock.recv(4096) for _ in range(n)]


def nothing_more(sock):
    timeout = sock.gettimeout()
    sock.setblocking(False)  # with a timeout, recv would wait it out even with MSG_DONTWAIT
    try:
        data = sock.recv(4096)
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(timeout)
    raise AssertionError(f"unexpected datagram {data!r}")


def env_with(notify_socket):
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if notify_socket is not None:
        env[ENV] = notify_socket
    return env


def notifying_bundle(make_bundle, rootfs, tmp_path, script, name="ctl"):
    """A bundle whose `sh -c script` can call `notify MSG...` and use /ctl (a host dir)."""
    loader, python = _host_python()
    ctl = tmp_path / name
    ctl.mkdir()
    ctl.chmod(0o777)  # the container's user may be anyone
    b = make_bundle("sh", "-c", f'notify() {{ "$LOADER" "$PYTHON" -c "$SEND" "$@"; }}; {script}')
    b.config["root"]["path"] = rootfs
    b.process["env"] = ["PATH=/bin:/sbin", f"LOADER={loader}", f"PYTHON={python}", f"SEND={SEND}"]
    b.config["mounts"] += [
        {"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]},
        {"destination": "/ctl", "type": "bind", "source": str(ctl), "options": ["bind", "rw"]},
    ]
    b.ctl = ctl
    return b.write()


def popen(runner, *args, env):
    """The runtime in the background; its output in files (a container may keep pipes open)."""
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    p = subprocess.Popen([*runner.argv, "--root", runner.root, *args], env=env,
                         stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    p.files = out, err
    return p


def finish(p, timeout=15):
    rc = p.wait(timeout=timeout)
    out, err = (f.seek(0) or f.read().decode() for f in p.files)
    for f in p.files:
        f.close()
    return rc, out, err


def seen(b):
    wait_for((b.ctl / "seen").exists, 10, "the container's report")
    return (b.ctl / "seen").read_text().splitlines()


def notify_mount(lines):
    """(mount root, mount point, per-mount options) of the /run/notify line of mountinfo."""
    fields = [line.split() for line in lines if " /run/notify " in line]
    assert len(fields) == 1, lines
    return fields[0][3], fields[0][4], fields[0][5]


def still_running(p, seconds=0.5):
    time.sleep(seconds)
    return p.poll() is None


def create_start(runner, b, cid, systemd):
    """create + start with NOTIFY_SOCKET; checks start waits for READY. -> (init pid, seen)."""
    env = env_with(systemd.path)
    r = runner("create", "--bundle", b.path, cid, env=env)
    assert (r.rc, r.out, r.err) == (0, "", ""), r.err
    notify_dir = os.path.join(runner.root, cid, "notify")
    assert (os.listdir(notify_dir), oct(os.stat(notify_dir).st_mode)) == ([], "0o40755")
    init_pid = state(runner, cid)["pid"]
    p = popen(runner, "start", cid, env=env)
    lines = seen(b)
    assert still_running(p), "start returned before the container sent READY=1"
    assert nothing_more(systemd)
    (b.ctl / "go").touch()
    got = received(systemd, 2)
    assert finish(p) == (0, "", "")
    assert got == [b"READY=1\n", b"MAINPID=%d\n" % init_pid]
    assert nothing_more(systemd)
    assert state(runner, cid)["status"] == "running"
    assert os.listdir(notify_dir) == ["notify.sock"]  # as runc: it stays until delete
    return init_pid, lines


# --------------------------------------------------------------------------- create / start

def test_start_waits_for_ready_and_forwards_it_with_mainpid(pyrunc, make_bundle, notify_rootfs,
                                                            tmp_path, cid, systemd, no_leaks):
    b = notifying_bundle(make_bundle, notify_rootfs, tmp_path,
                         OBSERVE + WAIT_GO + "notify READY=1; sleep 100")
    init_pid, lines = create_start(pyrunc, b, cid, systemd)
    assert lines[:2] == [f"env={IN_CONTAINER}", "srwxrwxrwx socket"]
    root, point, options = notify_mount(lines)
    assert (root, point) == (os.path.join(pyrunc.root, cid, "notify"), "/run/notify")
    assert set(options.split(",")) >= {"ro", "nosuid", "nodev", "noexec"}
    # delete removes the notify directory with the rest of the state
    assert pyrunc("delete", "--force", cid).rc == 0
    assert not os.path.exists(os.path.join(pyrunc.root, cid))


def test_only_ready_is_forwarded(pyrunc, make_bundle, notify_rootfs, tmp_path, cid, systemd):
    """STATUS= alone is dropped (as runc); READY= counts on any line of a datagram (runc only
    honours a datagram that starts with it) and only that line is forwarded."""
    b = notifying_bundle(make_bundle, notify_rootfs, tmp_path,
                         "notify STATUS=starting 'STATUS=up\\nREADY=1\\nMAINPID=1'; sleep 100")
    env = env_with(systemd.path)
    assert pyrunc("create", "--bundle", b.path, cid, env=env).rc == 0
    r = pyrunc("start", cid, env=env)
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert received(systemd, 2) == [b"READY=1\n", b"MAINPID=%d\n" % state(pyrunc, cid)["pid"]]
    assert nothing_more(systemd)
    assert pyrunc("delete", "--force", cid).rc == 0


@pytest.mark.parametrize("how", ["start", "run", "run -d"])
def test_exit_without_ready_ends_the_wait(pyrunc, make_bundle, notify_rootfs, tmp_path, cid,
                                          systemd, how, no_leaks):
    """runc 1.1.5 waits on /proc/PID (a zombie passes; `run` checks its own pid) and hangs in
    `run` and `run -d`; pyrunc stops waiting when the init exits, and forwards nothing."""
    b = notifying_bundle(make_bundle, notify_rootfs, tmp_path, "sleep 0.3; exit 3")
    env = env_with(systemd.path)
    t0 = time.monotonic()
    if how == "start":
        assert pyrunc("create", "--bundle", b.path, cid, env=env).rc == 0
        r = pyrunc("start", cid, env=env, timeout=15)
        expected = (0, "", "")  # as runc's start
    else:
        r = pyrunc("run", *how.split()[1:], "--bundle", b.path, cid, env=env, timeout=15)
        expected = (0, "", "") if how == "run -d" else (3, "", "")
    assert (r.rc, r.out, r.err) == expected
    assert time.monotonic() - t0 < 10
    assert nothing_more(systemd)
    if how != "run":
        wait_for(lambda: state(pyrunc, cid)["status"] == "stopped", 5, "the container to stop")
        assert pyrunc("delete", cid).rc == 0
    assert pyrunc.ids() == []


# --------------------------------------------------------------------------- run

def test_run_detached_returns_after_ready(pyrunc, make_bundle, notify_rootfs, tmp_path, cid,
                                          systemd, no_leaks):
    b = notifying_bundle(make_bundle, notify_rootfs, tmp_path,
                         OBSERVE + WAIT_GO + "notify READY=1; sleep 100")
    p = popen(pyrunc, "run", "-d", "--bundle", b.path, cid, env=env_with(systemd.path))
    assert seen(b)[0] == f"env={IN_CONTAINER}"
    assert still_running(p), "run -d returned before the container sent READY=1"
    (b.ctl / "go").touch()
    got = received(systemd, 2)
    assert finish(p) == (0, "", "")
    st = state(pyrunc, cid)
    assert st["status"] == "running"
    assert got == [b"READY=1\n", b"MAINPID=%d\n" % st["pid"]]
    assert pyrunc("delete", "--force", cid).rc == 0
    assert pyrunc.ids() == []


REMAP = [{"containerID": 0, "hostID": 231072, "size": 65536}]


@pytest.mark.parametrize("who", ["uid 1000", "user namespace"])
def test_unprivileged_container_user_can_notify(pyrunc, make_bundle, notify_rootfs, tmp_path,
                                                cid, systemd, who, no_leaks):
    """The socket is 0777 and its directory 0755, as runc's: any container user can send."""
    if who == "user namespace":
        # a remapped root cannot mkdir /run/notify in a rootfs owned by the host's root (runc
        # fails the same way): the image has the mount points
        tmp_path.chmod(0o711)  # pytest makes it 0700: the remapped root must reach in
        notify_rootfs = make_rootfs(str(tmp_path / "rootfs"))
        for d in ("run/notify", "ctl"):
            os.makedirs(os.path.join(notify_rootfs, d))
    b = notifying_bundle(make_bundle, notify_rootfs, tmp_path,
                         "id -u > /ctl/.seen; mv /ctl/.seen /ctl/seen; notify READY=1; sleep 100")
    if who == "uid 1000":
        b.process["user"] = {"uid": 1000, "gid": 1000}
    else:
        b.linux["namespaces"].append({"type": "user"})
        b.linux["uidMappings"] = b.linux["gidMappings"] = REMAP
    b.write()
    r = pyrunc("run", "-d", "--bundle", b.path, cid, env=env_with(systemd.path))
    assert (r.rc, r.out, r.err) == (0, "", ""), r.err
    assert seen(b) == ["1000" if who == "uid 1000" else "0"]
    assert received(systemd, 2) == [b"READY=1\n", b"MAINPID=%d\n" % state(pyrunc, cid)["pid"]]
    assert pyrunc("delete", "--force", cid).rc == 0


def test_run_reports_its_own_pid_and_the_exit_status(pyrunc, make_bundle, notify_rootfs,
                                                     tmp_path, cid, systemd, no_leaks):
    """As runc: the foreground `run` outlives the container, so MAINPID= is run's own pid."""
    b = notifying_bundle(make_bundle, notify_rootfs, tmp_path,
                         WAIT_GO + "notify READY=1; echo up; exit 4")
    p = popen(pyrunc, "run", "--bundle", b.path, cid, env=env_with(systemd.path))
    assert still_running(p, 1.0)
    assert nothing_more(systemd)
    (b.ctl / "go").touch()
    assert received(systemd, 2) == [b"READY=1\n", b"MAINPID=%d\n" % p.pid]
    assert finish(p) == (4, "up\n", "")
    assert nothing_more(systemd)
    assert pyrunc.ids() == []


def test_long_root_path(pyrunc, make_bundle, notify_rootfs, tmp_path, cid, systemd):
    """<root>/<id>/notify/notify.sock longer than sun_path (108 bytes) still works."""
    deep = tmp_path / ("r" * 60) / ("o" * 60)
    runner = type(pyrunc)(pyrunc.argv, str(deep))
    assert len(os.path.join(runner.root, cid, "notify", "notify.sock")) > 108
    b = notifying_bundle(make_bundle, notify_rootfs, tmp_path,
                         OBSERVE + WAIT_GO + "notify READY=1; sleep 100")
    try:
        create_start(runner, b, cid, systemd)
    finally:
        runner.cleanup()
    assert runner.ids() == []


# --------------------------------------------------------------------------- without NOTIFY_SOCKET

def test_without_notify_socket_nothing_is_added(pyrunc, make_bundle, notify_rootfs, tmp_path,
                                                cid, no_leaks):
    b = notifying_bundle(make_bundle, notify_rootfs, tmp_path,
                         '{ echo "env=${NOTIFY_SOCKET-unset}"; grep -c " /run/notify " '
                         "/proc/self/mountinfo; } > /ctl/.seen; mv /ctl/.seen /ctl/seen; "
                         "exec sleep 100")
    r = pyrunc("create", "--bundle", b.path, cid, env=env_with(None))
    assert r.rc == 0, r.err
    assert sorted(os.listdir(os.path.join(pyrunc.root, cid))) == ["exec.fifo", "state.json"]
    t0 = time.monotonic()
    assert pyrunc("start", cid, env=env_with(None)).rc == 0
    assert time.monotonic() - t0 < 5
    assert seen(b) == ["env=unset", "0"]
    assert "notify" not in os.listdir(os.path.join(pyrunc.root, cid))
    assert pyrunc("delete", "--force", cid).rc == 0


def test_podman_sdnotify_container_mode(pyrunc, make_bundle, notify_rootfs, tmp_path, cid,
                                        systemd, no_leaks):
    """podman --sdnotify=container: the runtime has no NOTIFY_SOCKET; config.json already binds
    conmon's proxy directory at /run/notify and sets process.env. The runtime adds nothing and
    does not wait: the container talks to the mounted socket directly."""
    proxy_dir = tempfile.mkdtemp(prefix="nfy-", dir="/tmp")
    proxy = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        proxy.bind(os.path.join(proxy_dir, "notify.sock"))
        proxy.settimeout(15)
        b = notifying_bundle(make_bundle, notify_rootfs, tmp_path,
                             OBSERVE + "notify READY=1; exec sleep 100")
        b.process["env"].append(f"NOTIFY_SOCKET={IN_CONTAINER}")
        b.config["mounts"].append({"destination": "/run/notify", "type": "bind",
                                   "source": proxy_dir, "options": ["bind", "ro"]})
        b.write()
        env = env_with(None)
        assert pyrunc("create", "--bundle", b.path, cid, env=env).rc == 0
        assert "notify" not in os.listdir(os.path.join(pyrunc.root, cid))
        t0 = time.monotonic()
        assert pyrunc("start", cid, env=env).rc == 0
        assert time.monotonic() - t0 < 5
        assert proxy.recv(4096) == b"READY=1"  # the container's own datagram, untouched
        lines = seen(b)
        assert lines[0] == f"env={IN_CONTAINER}" and lines[1].endswith(" socket"), lines
        assert notify_mount(lines)[:2] == (proxy_dir, "/run/notify")
        assert nothing_more(systemd)
        assert pyrunc("delete", "--force", cid).rc == 0
    finally:
        proxy.close()
        shutil.rmtree(proxy_dir)


# --------------------------------------------------------------------------- errors

def test_unreachable_host_socket_fails_start_before_the_process_runs(
        pyrunc, make_bundle, notify_rootfs, tmp_path, cid, systemd, no_leaks):
    """runc 1.1.5 execs the process first and then fails ("dial unixgram …"); pyrunc fails
    while the container is still created, leaves no socket, and a later start works."""
    b = notifying_bundle(make_bundle, notify_rootfs, tmp_path, "notify READY=1; sleep 100")
    assert pyrunc("create", "--bundle", b.path, cid, env=env_with(systemd.path)).rc == 0
    missing = systemd.path + ".missing"
    r = pyrunc("start", cid, env=env_with(missing))
    assert (r.rc, r.out) == (1, "")
    assert error_of(r) == f"{ENV}: cannot connect to {missing}: no such file or directory"
    assert state(pyrunc, cid)["status"] == "created"
    assert os.listdir(os.path.join(pyrunc.root, cid, "notify")) == []
    r = pyrunc("start", cid, env=env_with(systemd.path))
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert received(systemd, 2)[0] == b"READY=1\n"
    assert pyrunc("delete", "--force", cid).rc == 0


def test_start_with_notify_socket_of_a_container_created_without(
        pyrunc, make_bundle, notify_rootfs, tmp_path, cid, systemd, no_leaks):
    """runc fails too ("listen unixgram …/notify/notify.sock: bind: no such file or directory")."""
    b = notifying_bundle(make_bundle, notify_rootfs, tmp_path, "sleep 100")
    assert pyrunc("create", "--bundle", b.path, cid, env=env_with(None)).rc == 0
    r = pyrunc("start", cid, env=env_with(systemd.path))
    assert (r.rc, r.out) == (1, "")
    notify_dir = os.path.join(pyrunc.root, cid, "notify")
    assert error_of(r) == (f"{ENV}: the container was created without {ENV} (no {notify_dir}): "
                           "unset it for start, or set it for create too")
    assert state(pyrunc, cid)["status"] == "created"
    assert not os.path.exists(notify_dir)
    assert pyrunc("delete", cid).rc == 0


def test_failed_create_leaves_nothing(pyrunc, make_bundle, notify_rootfs, tmp_path, cid,
                                      systemd, no_leaks):
    b = notifying_bundle(make_bundle, notify_rootfs, tmp_path, "true")
    b.process["args"] = ["/no/such/program"]
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid, env=env_with(systemd.path))
    assert (r.rc, r.out) == (1, "")
    assert "/no/such/program" in error_of(r)
    assert os.listdir(pyrunc.root) in ([], ["@cache"])  # the notify directory went too
    assert nothing_more(systemd)


@pytest.mark.parametrize("detach", [True, False])
def test_run_with_unreachable_host_socket_leaves_nothing(pyrunc, make_bundle, notify_rootfs,
                                                         tmp_path, cid, detach, no_leaks):
    """runc 1.1.5 ignores the error in `run` (the container runs, systemd is never told)."""
    b = notifying_bundle(make_bundle, notify_rootfs, tmp_path, "notify READY=1; sleep 100")
    missing = str(tmp_path / "no-such-socket")
    r = pyrunc("run", *(["-d"] if detach else []), "--bundle", b.path, cid, env=env_with(missing))
    assert (r.rc, r.out) == (1, "")
    assert error_of(r) == f"pyrunc run failed: {ENV}: cannot connect to {missing}: no such file or directory"
    assert pyrunc.ids() == []


def test_abstract_host_socket(pyrunc, make_bundle, notify_rootfs, tmp_path, cid):
    """NOTIFY_SOCKET=@name is the abstract namespace (sd_notify's rule; runc's Go does it too)."""
    name = "pyrunc-test-" + cid
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(15)
    try:
        b = notifying_bundle(make_bundle, notify_rootfs, tmp_path, "notify READY=1; exit 0")
        r = pyrunc("run", "--bundle", b.path, cid, env=env_with("@" + name))
        assert (r.rc, r.out, r.err) == (0, "", "")
        assert sock.recv(4096) == b"READY=1\n"
    finally:
        sock.close()


# --------------------------------------------------------------------------- runc side by side

@pytest.mark.parametrize("how", ["create+start", "run -d", "run"])
def test_same_as_runc(runc, pyrunc, make_bundle, notify_rootfs, tmp_path, how):
    """What the container sees (env, socket mode, mount options) and what the host socket gets."""
    results = {}
    for name, runner in (("runc", runc), ("pyrunc", pyrunc)):  # (runc's argv starts with a sh)
        cid = "n-" + name
        directory = tempfile.mkdtemp(prefix="nfy-", dir="/tmp")
        with Datagrams() as sock:
            try:
                sock.path = os.path.join(directory, "notify")
                sock.bind(sock.path)
                sock.settimeout(15)
                end = "exit 5" if how == "run" else "sleep 100"
                b = notifying_bundle(make_bundle, notify_rootfs, tmp_path,
                                     OBSERVE + WAIT_GO + "notify READY=1; " + end,
                                     name="ctl-" + name)
                env = env_with(sock.path)
                if how == "create+start":
                    lines = create_start(runner, b, cid, sock)[1]
                else:
                    p = popen(runner, *how.split(), "--bundle", b.path, cid, env=env)
                    lines = seen(b)
                    assert still_running(p)
                    (b.ctl / "go").touch()
                    got = received(sock, 2)
                    rc = finish(p)
                    pid = state(runner, cid)["pid"] if how == "run -d" else p.pid
                    assert got[1] == b"MAINPID=%d\n" % pid
                    lines = lines + [got[0].decode(), str(rc)]
                root, point, options = notify_mount(lines)
                assert root == os.path.join(runner.root, cid, "notify")
                results[name] = [line for line in lines if " /run/notify " not in line] + [
                    point, ",".join(sorted(options.split(",")))]
            finally:
                runner("delete", "--force", cid)
                shutil.rmtree(directory)
    assert results["pyrunc"] == results["runc"]
