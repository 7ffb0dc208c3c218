"""process.terminal: a pty from the container's devpts, its master handed to --console-socket.

The host connects to the console socket before forking (its path is a host path, gone after
pivot_root); the init allocates the pty inside the container, sends the master fd with
SCM_RIGHTS in one message (payload "/dev/ptmx", as runc), makes the slave its stdio and
controlling terminal, and binds it over /dev/console. The socket is the engine's
(--console-socket) or, for a foreground `run`/`exec` without one, a socketpair whose other end
pyrunc keeps to proxy the pty itself (runtime/tty_proxy.py): the shim cannot tell them apart.
"""

import array
import fcntl
import os
import socket
import struct
import termios

from ..linux import mountflags as mf
from ..linux.syscalls import mount
from .process import ProcessError

TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


class ConsoleError(ProcessError):
    pass


def setup(console_fd, console_size=None, bind_console=True):
    """Allocate the pty, send the master, and make the slave fds 0-2 and the controlling tty.
    An exec'd process gets a pty too, but /dev/console stays the init's (bind_console=False)."""
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise ConsoleError(f"cannot open /dev/ptmx in the container (is devpts mounted at "
                           f"/dev/pts?): {e.strerror.lower()}") from None
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))  # unlockpt
        number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
        slave_path = f"/dev/pts/{number}"
        if console_size:
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack(
                "HHHH", console_size.get("height", 0), console_size.get("width", 0), 0, 0))
        slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY)
        if bind_console:
            _bind_console(slave_path)
        with socket.socket(fileno=console_fd) as sock:
            sock.sendmsg([b"/dev/ptmx"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                           array.array("i", [master]))])
    except OSError as e:
        raise ConsoleError(f"setting up the console: {e.strerror.lower() if e.strerror else e}") from None
    finally:
        os.close(master)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    if slave > 2:
        os.close(slave)


def _bind_console(slave_path):
    """/dev/console is the pty slave, as runc does."""
    try:
        if not os.path.lexists("/dev/console"):
            os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        mount(slave_path, "/dev/console", None, mf.MS_BIND)
    except OSError:
        pass  # a read-only /dev: the process still gets the pty as its stdio
