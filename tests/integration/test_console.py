"""process.terminal with --console-socket: the pty master reaches the socket, the slave is the
process's stdio, controlling terminal and /dev/console; consoleSize is applied. Without one, in
the foreground, pyrunc proxies the pty to its own terminal as runc does."""

import array
import fcntl
import json
import os
import select
import signal
import socket
import stat
import struct
import termios
import threading
import time

import pytest
from bundle import make_rootfs
from helpers import Runner, error_of


class ConsoleReceiver:
    """A console socket like an engine's: takes one message with the master fd, then reads it."""

    def __init__(self, path):
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.payload, self.fds, self.output = None, [], b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.server.accept()
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(4 * fds.itemsize))
        conn.close()
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data)
        self.payload, self.fds = msg, list(fds)
        master = self.fds[0]
        deadline = time.monotonic() + 10
        # up to DONE's line end: stopping at "DONE" itself races the "\r\n" in a later read
        while time.monotonic() < deadline and b"DONE\r\n" not in self.output:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.output += chunk
        os.close(master)

    def wait(self):
        self.thread.join(12)
        self.server.close()
        return self.output.decode().replace("\r\n", "\n")


def run_with_console(runner, bundle, cid, tmp_path, name):
    bundle.process["terminal"] = True
    bundle.write()
    receiver = ConsoleReceiver(str(tmp_path / f"{name}.sock"))
    r = runner("create", "--bundle", bundle.path, "--console-socket", receiver.path, cid)
    assert r.rc == 0, r.err
    assert runner("start", cid).rc == 0
    out = receiver.wait()
    runner("delete", "--force", cid)
    return receiver, out


SCRIPT = "tty; stty size; [ -c /dev/console ] && echo console-is-a-tty-device; " \
         "cut -d' ' -f7 /proc/self/stat; echo DONE"


def test_console_socket_gets_the_master_and_the_process_a_tty(pyrunc, make_bundle, cid, tmp_path):
    b = make_bundle("sh", "-c", SCRIPT)
    b.process["consoleSize"] = {"height": 30, "width": 100}
    receiver, out = run_with_console(pyrunc, b, cid, tmp_path, "pyrunc")
    assert receiver.payload == b"/dev/ptmx" and len(receiver.fds) == 1
    lines = out.splitlines()
    assert lines[0] == "/dev/pts/0"
    assert lines[1] == "30 100"
    assert lines[2] == "console-is-a-tty-device"
    assert int(lines[3]) == 136 << 8  # tty_nr: the controlling terminal is pts/0 (major 136)


@pytest.mark.differential
def test_console_output_matches_runc(pyrunc, runc, make_bundle, cid, tmp_path):
    b = make_bundle("sh", "-c", "tty; stty size; echo DONE")
    b.process["consoleSize"] = {"height": 24, "width": 80}
    _, theirs = run_with_console(runc, b, cid, tmp_path, "runc")
    _, mine = run_with_console(pyrunc, b, cid, tmp_path, "pyrunc")
    assert mine == theirs


@pytest.mark.differential
def test_console_is_handed_to_the_process_user(pyrunc, runc, make_bundle, cid, tmp_path):
    """runc's fixStdioPermissions: the pty slave becomes the user's (its gid, devpts' gid=5,
    is kept), so a uid-1000 process can reopen its tty."""
    b = make_bundle("sh", "-c", "stat -c %u:%g $(tty); echo hi > $(tty) && echo reopened")
    b.process["user"] = {"uid": 1000, "gid": 1000}
    _, theirs = run_with_console(runc, b, cid, tmp_path, "runc")
    _, mine = run_with_console(pyrunc, b, cid, tmp_path, "pyrunc")
    assert mine == theirs
    assert mine.splitlines()[0] == "1000:5" and "reopened" in mine


CONSOLE_SCRIPT = "stat -c '%t:%T %F' /dev/console; tty; touch /probe 2>/dev/null || echo ro; echo DONE"


def readonly_root_without_dev_mount(make_bundle, tmp_path, name):
    """root.readonly and no /dev mount: /dev/console can only be made on the root itself, so
    the console must come before the root is made read-only (runc's setupConsole before
    finalizeRootfs). A rootfs of the test's own: /dev/console and the devices land in it."""
    b = make_bundle("sh", "-c", CONSOLE_SCRIPT)
    rootfs = make_rootfs(str(tmp_path / f"rootfs-{name}"))
    b.config["root"] = {"path": rootfs, "readonly": True}
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/dev"]
    return b, rootfs


def test_console_on_a_read_only_root_without_a_dev_mount(pyrunc, make_bundle, cid, tmp_path):
    b, rootfs = readonly_root_without_dev_mount(make_bundle, tmp_path, "pyrunc")
    _, out = run_with_console(pyrunc, b, cid, tmp_path, "pyrunc")
    # the pty slave (pts/0 is 136:0, "88:0" in stat's hex) is mounted over /dev/console
    assert out.splitlines() == ["88:0 character special file", "/dev/pts/0", "ro", "DONE"]
    # the mount point: an empty regular file made on the root before it went read-only
    st = os.lstat(os.path.join(rootfs, "dev/console"))
    assert stat.S_ISREG(st.st_mode) and st.st_size == 0


@pytest.mark.differential
def test_console_on_a_read_only_root_matches_runc(pyrunc, runc, make_bundle, cid, tmp_path):
    b, _ = readonly_root_without_dev_mount(make_bundle, tmp_path, "runc")
    _, theirs = run_with_console(runc, b, cid, tmp_path, "runc")
    b, _ = readonly_root_without_dev_mount(make_bundle, tmp_path, "pyrunc")
    _, mine = run_with_console(pyrunc, b, cid, tmp_path, "pyrunc")
    assert mine == theirs
    assert mine.startswith("88:0 character special file\n")


def test_terminal_without_console_socket_is_refused(pyrunc, make_bundle, cid, no_leaks):
    b = make_bundle("true")
    b.process["terminal"] = True
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 1 and "cannot allocate tty if pyrunc will detach without setting console socket" in r.err
    assert not pyrunc.ids()


def test_console_socket_without_terminal_is_refused(pyrunc, make_bundle, cid, tmp_path, no_leaks):
    b = make_bundle("true")
    r = pyrunc("create", "--bundle", b.path, "--console-socket", str(tmp_path / "x.sock"), cid)
    assert r.rc == 1 and "cannot use console socket" in r.err
    assert not pyrunc.ids()


def test_unreachable_console_socket_leaves_nothing(pyrunc, make_bundle, cid, tmp_path, no_leaks):
    b = make_bundle("true")
    b.process["terminal"] = True
    b.write()
    r = pyrunc("create", "--bundle", b.path, "--console-socket", str(tmp_path / "nobody.sock"), cid)
    assert r.rc == 1 and "nobody.sock" in r.err and "no such file or directory" in r.err
    assert not pyrunc.ids()


def test_exec_tty_with_console_socket(pyrunc, make_bundle, cid, tmp_path):
    """docker exec -it / conmon: exec --tty --console-socket S --detach gives the process a pty."""
    b = make_bundle("sleep", "30")
    b.write()
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    assert pyrunc("start", cid).rc == 0
    receiver = ConsoleReceiver(str(tmp_path / "exec.sock"))
    r = pyrunc("exec", "--tty", "--console-socket", receiver.path, "--detach",
               "--pid-file", str(tmp_path / "exec.pid"), cid, "sh", "-c",
               "tty; cut -d' ' -f7 /proc/self/stat; [ -c /dev/console ] || echo no-console; echo DONE")
    assert r.rc == 0, r.err
    out = receiver.wait().splitlines()
    assert receiver.payload == b"/dev/ptmx"
    assert out[0].startswith("/dev/pts/") and int(out[1]) == (136 << 8) + int(out[0].rsplit("/", 1)[1])
    assert "no-console" in out  # /dev/console stays the init's: this container has none
    assert pyrunc("delete", "--force", cid).rc == 0


# ---------------------------------------------------------------- pyrunc's own terminal
# Foreground `run` / `exec -t` without --console-socket: pyrunc receives the master itself and
# proxies it to its own stdio, as runc does. The runtime runs here with a real pty as its
# controlling terminal and stdio (stdin optionally a pipe).


class Terminal:
    """argv in a new session whose controlling terminal and stdio are a fresh pty (rows x cols);
    with stdin_data, stdin is a pipe that gets those bytes and is then closed."""

    def __init__(self, argv, rows=24, cols=80, stdin_data=None):
        self.master, slave = os.openpty()
        self.set_size(rows, cols)
        self.before = termios.tcgetattr(self.master)  # the pty's mode, as the runtime finds it
        r = w = None
        if stdin_data is not None:
            r, w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.setsid()
                fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
                os.dup2(slave, 0)
                os.dup2(slave, 1)
                os.dup2(slave, 2)
                if r is not None:
                    os.dup2(r, 0)
                os.closerange(3, 1024)
                os.execv(argv[0], argv)
            finally:
                os._exit(127)
        os.close(slave)
        if r is not None:
            os.close(r)
            os.write(w, stdin_data)
            os.close(w)
        self.output = b""
        self.status = None

    def set_size(self, rows, cols):
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def mode(self):
        return termios.tcgetattr(self.master)

    def send(self, data):
        os.write(self.master, data)

    def _read(self, timeout):
        if not select.select([self.master], [], [], timeout)[0]:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: nobody holds the slave any more
            chunk = b""
        self.output += chunk
        return bool(chunk)

    def expect(self, text, timeout=15):
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            assert time.monotonic() < deadline, f"no {text!r} in {self.output!r}"
            if not self._read(0.1):
                assert text.encode() in self.output, f"no {text!r} in {self.output!r} (EOF)"

    def wait(self, timeout=20):
        """Read to EOF and reap; returns (exit status, output with "\\r\\n" as "\\n")."""
        deadline = time.monotonic() + timeout
        try:
            while self._read(0.1):
                if time.monotonic() > deadline:
                    os.kill(self.pid, signal.SIGKILL)
                    raise AssertionError(f"still running after {timeout}s: {self.output!r}")
        finally:
            _, status = os.waitpid(self.pid, 0)
            self.status = os.waitstatus_to_exitcode(status)
        return self.status, self.text()

    def text(self):
        return self.output.decode(errors="replace").replace("\r\n", "\n")

    def close(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
        os.close(self.master)


@pytest.fixture
def terminal():
    """terminal(argv, **Terminal kwargs) runs argv under a pty; closed at teardown."""
    opened = []

    def start(argv, **kw):
        t = Terminal(argv, **kw)
        opened.append(t)
        return t

    yield start
    for t in opened:
        t.close()


def cli(runner, *args):
    """The runtime's command line with its --root."""
    return [*runner.argv, "--root", runner.root, *args]


def is_raw(mode):
    """The host terminal as runc leaves it while proxying: cfmakeraw, OPOST kept."""
    iflag, oflag, _, lflag, _, _, cc = mode
    return (not lflag & (termios.ICANON | termios.ECHO | termios.ISIG | termios.IEXTEN)
            and not iflag & (termios.ICRNL | termios.IXON) and oflag & termios.OPOST
            and cc[termios.VMIN] == 1 and cc[termios.VTIME] == 0)


def tty_bundle(make_bundle, script):
    b = make_bundle("sh", "-c", script)
    b.process["terminal"] = True
    return b.write()


def test_run_proxies_the_pty_to_its_own_terminal(pyrunc, make_bundle, cid, terminal, no_leaks):
    b = tty_bundle(make_bundle, "tty; stty size; cut -d' ' -f7 /proc/self/stat; "
                                "stty -a | grep -o -- -onlcr; echo READY; read x; echo \"got $x\"; exit 3")
    t = terminal(cli(pyrunc, "run", "--bundle", b.path, cid), rows=33, cols=111)
    t.expect("READY")
    assert is_raw(t.mode())  # keys go to the container's line discipline untouched
    t.send(b"hello\r")  # Enter in a raw terminal; the container's pty turns it into "\n"
    rc, out = t.wait()
    lines = out.splitlines()
    assert lines[:5] == ["/dev/pts/0", "33 111", str(136 << 8), "-onlcr", "READY"], out
    assert lines[5:] == ["hello", "got hello"], out  # the pty's echo, then the process
    assert rc == 3
    assert t.mode() == t.before  # the host terminal's mode is restored
    assert pyrunc.ids() == []


def test_run_follows_resizes_and_forwards_other_signals(pyrunc, make_bundle, cid, terminal, no_leaks):
    b = tty_bundle(make_bundle, "trap 'echo TERM; exit 9' TERM; stty size; echo READY; read x; "
                                "stty size; echo AGAIN; while :; do sleep 0.05; done")
    t = terminal(cli(pyrunc, "run", "--bundle", b.path, cid), rows=20, cols=70)
    t.expect("READY")
    t.set_size(41, 93)  # the kernel sends the runtime SIGWINCH; it copies the size to the pty
    t.send(b"\r")
    t.expect("AGAIN")
    os.kill(t.pid, signal.SIGTERM)  # forwarded to the container's process, as without a tty
    rc, out = t.wait()
    assert out.split() == ["20", "70", "READY", "41", "93", "AGAIN", "TERM"], out
    assert rc == 9
    assert t.mode() == t.before


def test_run_with_a_pipe_as_stdin(pyrunc, make_bundle, cid, terminal, no_leaks):
    """stdin is copied until EOF; the EOF is not passed on (no ^D), as in runc: `cat` keeps
    waiting until `timeout` ends it. The output still reaches the terminal on stdout."""
    b = tty_bundle(make_bundle, "read x; echo \"got $x\"; tty; timeout 1 cat; echo \"cat $?\"; exit 4")
    t = terminal(cli(pyrunc, "run", "--bundle", b.path, cid), stdin_data=b"piped\n")
    rc, out = t.wait()
    lines = [line for line in out.splitlines() if line != "Terminated"]  # busybox timeout's
    assert lines == ["piped", "got piped", "/dev/pts/0", "cat 143"], out
    assert rc == 4
    assert t.mode() == t.before


def test_run_output_is_complete_and_without_cr(pyrunc, make_bundle, cid, terminal, tmp_path, no_leaks):
    """ONLCR is cleared on the pty: stdout redirected to a file gets the process's bytes as they
    are; all of a large output arrives before the runtime exits."""
    b = tty_bundle(make_bundle, "seq 1 50000; printf end")
    out = tmp_path / "out"
    cmd = " ".join(f"'{a}'" for a in cli(pyrunc, "run", "--bundle", b.path, cid))
    t = terminal(["/bin/sh", "-c", f"{cmd} > {out}"])
    assert t.wait()[0] == 0
    assert t.mode() == t.before
    assert out.read_bytes() == "".join(f"{i}\n" for i in range(1, 50001)).encode() + b"end"


def test_run_without_any_terminal_fails_as_runc(pyrunc, make_bundle, cid, no_leaks):
    """No terminal among stderr, stdout, stdin and no controlling terminal (/dev/tty)."""
    b = tty_bundle(make_bundle, "true")
    r = pyrunc("run", "--bundle", b.path, cid, start_new_session=True)
    assert r.rc == 1 and r.out == ""
    assert error_of(r) == "pyrunc run failed: open /dev/tty: no such device or address"
    assert pyrunc.ids() == []


def test_detached_run_with_a_terminal_needs_a_console_socket(pyrunc, make_bundle, cid, no_leaks):
    b = tty_bundle(make_bundle, "true")
    r = pyrunc("run", "-d", "--bundle", b.path, cid)
    assert r.rc == 1
    assert error_of(r) == ("pyrunc run failed: cannot allocate tty if pyrunc will detach without "
                           "setting console socket")
    assert pyrunc.ids() == []


def test_foreground_run_with_a_console_socket_is_refused(pyrunc, make_bundle, cid, tmp_path, no_leaks):
    b = tty_bundle(make_bundle, "true")
    r = pyrunc("run", "--console-socket", str(tmp_path / "x.sock"), "--bundle", b.path, cid)
    assert r.rc == 1
    assert error_of(r) == ("pyrunc run failed: cannot use console socket if pyrunc will not detach "
                           "or allocate tty")
    assert pyrunc.ids() == []


@pytest.fixture
def sleeping(pyrunc, make_bundle, cid):
    b = make_bundle("sleep", "60")
    r = pyrunc("run", "-d", "--bundle", b.path, cid)
    assert r.rc == 0, r.err
    yield cid
    pyrunc("delete", "--force", cid)


def test_exec_tty_proxies_the_pty(pyrunc, sleeping, terminal, no_leaks):
    t = terminal(cli(pyrunc, "exec", "-t", sleeping, "sh", "-c",
                     "tty; stty size; echo READY; read x; echo \"got $x\"; stty size; exit 7"),
                 rows=31, cols=97)
    t.expect("READY")
    assert is_raw(t.mode())
    t.set_size(50, 120)
    t.send(b"typed\r")
    rc, out = t.wait()
    lines = out.splitlines()
    assert lines[0].startswith("/dev/pts/") and lines[1:] == ["31 97", "READY", "typed", "got typed",
                                                              "50 120"], out
    assert rc == 7
    assert t.mode() == t.before


def test_exec_process_json_with_terminal_and_a_pipe_as_stdin(pyrunc, sleeping, terminal, tmp_path, no_leaks):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"args": ["sh", "-c", "read x; echo \"got $x\"; kill -TERM $$"],
                                "cwd": "/", "user": {"uid": 0, "gid": 0}, "terminal": True,
                                "env": ["PATH=/bin"]}))
    t = terminal(cli(pyrunc, "exec", "--process", str(path), sleeping), stdin_data=b"from a pipe\n")
    rc, out = t.wait()
    assert out.splitlines() == ["from a pipe", "got from a pipe"], out
    assert rc == 128 + signal.SIGTERM  # killed by a signal: 128+N, as without a terminal


def test_exec_tty_without_any_terminal_fails_as_runc(pyrunc, sleeping, no_leaks):
    r = pyrunc("exec", "-t", sleeping, "true", start_new_session=True)
    assert r.rc == 255 and r.out == ""
    assert error_of(r) == "exec failed: open /dev/tty: no such device or address"


@pytest.mark.differential
@pytest.mark.parametrize("stdin_data", [None, b"piped\n"], ids=["tty", "pipe"])
def test_terminal_run_and_exec_match_runc(pyrunc, runc, make_bundle, cid, terminal, stdin_data):
    """Output, exit status and the restored terminal, runc vs pyrunc, for run and exec -t
    (a short sleep first: runc sizes the pty only after the process started)."""
    script = "sleep 0.3; tty; stty size; echo READY; read x; echo \"got $x\"; exit 5"
    b = tty_bundle(make_bundle, script)
    results = {}
    for runner in (runc, pyrunc):
        t = terminal(cli(runner, "run", "--bundle", b.path, cid), rows=27, cols=101, stdin_data=stdin_data)
        if stdin_data is None:
            t.expect("READY")
            t.send(b"keys\r")
        results[runner] = [*t.wait(), t.mode() == t.before]
        assert runner("run", "-d", "--bundle", make_bundle("sleep", "60").path, cid).rc == 0
        t = terminal(cli(runner, "exec", "-t", cid, "sh", "-c", script), rows=27, cols=101,
                     stdin_data=stdin_data)
        if stdin_data is None:
            t.expect("READY")
            t.send(b"keys\r")
        results[runner] += [*t.wait(), t.mode() == t.before]
        assert runner("delete", "--force", cid).rc == 0
    assert results[pyrunc] == results[runc]
    assert results[pyrunc][:3] == [5, "/dev/pts/0\n27 101\nREADY\nkeys\ngot keys\n" if stdin_data is None
                                   else "piped\n/dev/pts/0\n27 101\nREADY\ngot piped\n", True]


@pytest.mark.differential
def test_console_on_a_read_only_dev_tmpfs_matches_runc(pyrunc, runc, make_bundle, cid, tmp_path):
    """/dev a tmpfs asked "ro": runc mounts it writable and makes it read-only only after the
    console (finalizeRootfs), so /dev/console is made in it."""
    outs = []
    for name, runner in (("runc", runc), ("pyrunc", pyrunc)):
        b = make_bundle("sh", "-c", CONSOLE_SCRIPT.replace("/probe", "/dev/probe"))
        dev = next(m for m in b.config["mounts"] if m["destination"] == "/dev")
        dev["options"].append("ro")
        outs.append(run_with_console(runner, b, cid, tmp_path, name)[1])
    assert outs[1] == outs[0]
    assert outs[1].splitlines() == ["88:0 character special file", "/dev/pts/0", "ro", "DONE"]


def test_console_of_a_caller_without_stdio(pyrunc, make_bundle, cid, tmp_path):
    """Started without stdio, the init's fds 0-2 are free: the pty slave may land on one (it
    must still be the process's stdio after execve, not closed by its close-on-exec flag), and
    the host's /dev/null, cloned for the masks before the pivot, must not be on one, which the
    console's dup2 would replace (the mask would be the pty slave). pyrunc itself exits 0."""
    b = make_bundle("sh", "-c", "stat -c %t:%T /etc/passwd; readlink /proc/self/fd/2; echo DONE")
    b.linux["maskedPaths"] = ["/etc/passwd"]
    closed = Runner(["/bin/sh", "-c", 'exec "$@" 0<&- 1>&- 2>&-', "sh", *pyrunc.argv], pyrunc.root)
    _, out = run_with_console(closed, b, cid, tmp_path, "closed")
    assert out.splitlines() == ["1:3", "/dev/pts/0", "DONE"]
