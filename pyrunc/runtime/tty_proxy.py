"""runc's own terminal: foreground `run`/`exec` with process.terminal and no --console-socket.

The host makes a socketpair and gives one end to the shim as its console socket; the shim sends
the pty master over it exactly as to an engine's socket (shim/console.py). The host then:

* clears ONLCR on the pty (what the process writes reaches us with plain "\\n"),
* copies the host terminal's window size to it (before `start` for `run`; for `exec` the
  shim applies it as consoleSize), and again on every SIGWINCH,
* puts the host terminal in raw mode with OPOST kept (containerd/console's SetRaw, which runc
  uses), so keys reach the container's line discipline untouched; restored at the end,
* copies its stdin to the master and the master to its stdout in one poll loop until the
  process exits (a pidfd turns readable), then reads what output is left and returns the
  process's status (128+N if killed by N).

As in runc: the host terminal is the first of stderr, stdout, stdin that is a terminal, else
/dev/tty (no terminal at all: "open /dev/tty: no such device or address"); EOF on stdin is not
passed on (the pty gets no ^D: a process reading to EOF keeps waiting); EIO from the master
while the process lives is not the end (output written just before can become readable after
it: seen under load, ~1 run in 300, before this was handled); output left in the pty when the
process exits is read until EAGAIN/EIO (its background children may keep the slave).
"""

import array
import fcntl
import os
import select
import signal
import socket
import struct
import termios

from ..errors import PyruncError

CHUNK = 65536
MAX_PENDING = 1 << 20  # stdin read ahead of a process that does not read its terminal


class TerminalError(PyruncError):
    pass


class TerminalProxy:
    """Create before the container (it finds the host terminal and may fail), hand
    console_end() to the shim, attach() once the shim sent the master, run(pid), close()."""

    def __init__(self):
        # the shim imports it after pivot_root / setns(mnt), where imports fail: load it now
        from ..shim import console  # noqa: F401
        self.host, self._own_host = _host_console()
        self._parent: socket.socket | None
        self._parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._child: int | None = child.detach()
        self.master = None
        self._saved = None       # the host terminal's mode before raw
        self._winch = None       # the SIGWINCH handler before ours

    def console_end(self):
        """The end the shim sends the master on (inherited through the fork)."""
        return self._child

    def close_console_end(self):
        """After the fork: only the shim keeps the end it writes to."""
        if self._child is not None:
            os.close(self._child)
            self._child = None

    def window_size(self):
        """The host terminal's size as an OCI consoleSize, or None if it cannot be read."""
        try:
            rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(self.host, termios.TIOCGWINSZ, b"\0" * 8))
        except OSError:
            return None
        return {"height": rows, "width": cols}

    def attach(self):
        """Take the master the shim sent (it was sent before the shim said "ready"), size it,
        make the host terminal raw and follow SIGWINCH."""
        self.close_console_end()
        assert self._parent is not None
        self.master = _receive_master(self._parent)
        self._parent.close()
        self._parent = None
        attrs = termios.tcgetattr(self.master)
        attrs[1] &= ~termios.ONLCR
        termios.tcsetattr(self.master, termios.TCSANOW, attrs)
        self.resize()
        try:
            self._saved = termios.tcgetattr(self.host)
            termios.tcsetattr(self.host, termios.TCSANOW, _raw(self._saved))
        except termios.error as e:
            self._saved = None
            raise TerminalError(f"failed to set the terminal from the stdin: {_strerror(e)}") from None
        self._winch = signal.signal(signal.SIGWINCH, lambda _signum, _frame: self.resize())

    def resize(self):
        """Copy the host terminal's size (pixels too) to the pty; errors are ignored, as in runc
        (the host terminal may be gone after a SIGHUP)."""
        if self.master is None:
            return
        try:
            size = fcntl.ioctl(self.host, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
        except OSError:
            pass

    def run(self, pid):
        """Proxy until `pid` (our child: we are its parent or subreaper) exits; its status.
        Attaches first if not yet done (exec: the process already runs); on any failure the
        process is killed and reaped."""
        from .child import wait_for
        try:
            if self.master is None:
                self.attach()
            self._pump(pid)
        except BaseException:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_for(pid)
            raise
        return wait_for(pid)

    def close(self):
        """Restore the host terminal and SIGWINCH; close every fd we hold. Idempotent."""
        if self._winch is not None:
            signal.signal(signal.SIGWINCH, self._winch)
            self._winch = None
        if self._saved is not None:
            try:
                termios.tcsetattr(self.host, termios.TCSANOW, self._saved)
            except termios.error:
                pass
            self._saved = None
        self.close_console_end()
        if self._parent is not None:
            self._parent.close()
            self._parent = None
        for name in ("master", "_own_host"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()

    # ------------------------------------------------------------ the loop

    def _pump(self, pid):
        master = self.master
        assert master is not None
        os.set_blocking(master, False)
        try:
            exited = os.pidfd_open(pid)
        except OSError:  # no pidfds (Linux < 5.3): poll with a timeout and WNOHANG
            exited = None
        stdin_open, pending = True, b""
        # EIO from the master means "no slave open and nothing to read right now", not the
        # end: output the process wrote can still become readable after it (runc, too, waits
        # for the next event instead of giving up). poll() would report POLLHUP without end,
        # so until a read succeeds again the master is retried on a timer that backs off
        # (hup: its current interval in ms; 0 while reads work).
        hup = 0
        self._stdout_ok = True
        poller = select.poll()
        if exited is not None:
            poller.register(exited, select.POLLIN)
        try:
            while True:
                if hup:
                    _unregister(poller, master)
                else:
                    poller.register(master, select.POLLIN | (select.POLLOUT if pending else 0))
                if stdin_open and len(pending) < MAX_PENDING:
                    poller.register(0, select.POLLIN)
                else:
                    _unregister(poller, 0)
                timeout = hup or None
                if exited is None:
                    timeout = min(timeout or 50, 50)
                events = poller.poll(timeout)
                done = exited is None and _has_exited(pid)
                for fd, ev in events:
                    if fd == exited:
                        done = True
                    elif fd == 0:
                        data = b"" if ev & select.POLLNVAL else _read(0)
                        if data == b"":  # EOF or an error: runc stops copying, sends nothing
                            stdin_open = False
                        elif data:
                            pending += data
                if hup or any(fd == master for fd, _ in events):
                    got, closed = self._output(master)
                    hup = min(hup * 2 if hup and not got else 10, 1000) if closed else 0
                if pending:
                    try:
                        pending = pending[os.write(master, pending):]
                    except OSError:  # full (EAGAIN) or no slave (EIO): kept for later
                        pass
                if done:
                    break
            self._output(master)  # what the process wrote before it exited
        finally:
            if exited is not None:
                os.close(exited)

    def _output(self, master):
        """Copy what the master has to stdout until it has nothing more for now:
        (whether anything was read, whether that ended in EIO)."""
        got = False
        while True:
            try:
                data = os.read(master, CHUNK)
            except BlockingIOError:
                return got, False
            except OSError:
                return got, True
            if not data:
                return got, True
            got = True
            if self._stdout_ok:
                self._stdout_ok = _write_all(1, data)


def _host_console():
    """runc's initHostConsole: (fd, fd we opened or None)."""
    for fd in (2, 1, 0):
        try:
            termios.tcgetattr(fd)
        except termios.error:
            continue
        return fd, None
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise TerminalError(f"open /dev/tty: {(e.strerror or str(e)).lower()}") from None
    return fd, fd


def _raw(attrs):
    """cfmakeraw(3) but keeping OPOST, as containerd/console's SetRaw: the container's
    "\\n" still reaches the screen as "\\r\\n"."""
    attrs = list(attrs)
    attrs[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
                  | termios.IGNCR | termios.ICRNL | termios.IXON)
    attrs[1] |= termios.OPOST
    attrs[2] = (attrs[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cc = list(attrs[6])
    cc[termios.VMIN], cc[termios.VTIME] = 1, 0
    attrs[6] = cc
    return attrs


def _receive_master(sock):
    fds = array.array("i")
    try:
        _, anc, flags, _ = sock.recvmsg(4096, socket.CMSG_SPACE(4 * fds.itemsize), socket.MSG_DONTWAIT)
    except BlockingIOError:
        anc, flags = [], 0
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    if flags & socket.MSG_CTRUNC or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise TerminalError("the container process did not send its pty master")
    return fds[0]


def _read(fd):
    """Bytes, b"" at EOF or on an error, None if there was nothing after all (EAGAIN)."""
    try:
        return os.read(fd, CHUNK)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _write_all(fd, data):
    """Blocking write (waiting if the fd is non-blocking); False once writing fails (EPIPE):
    the rest of the output is then read and dropped so the container never blocks on it."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [])
        except OSError:
            return False
    return True


def _unregister(poller, fd):
    try:
        poller.unregister(fd)
    except KeyError:
        pass


def _has_exited(pid):
    """Without a pidfd: has our child `pid` exited? (It stays a zombie for wait_for.)"""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _strerror(e):
    return (e.args[1] if len(e.args) > 1 else str(e)).lower()

