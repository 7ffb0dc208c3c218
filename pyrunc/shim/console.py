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
import stat
import struct
import termios

from ..errors import ConsoleError
from ..linux import syscalls as sc
from . import procfs
from .paths import open_in_root

TIOCGPTPEER = 0x5441  # the slave of a master, opened without a path (Linux 4.13)
TIOCSPTLCK = 0x40045431
DEVPTS_SUPER_MAGIC = 0x1CD1
SYSFS_MAGIC = 0x62656572
PTMX_INO = 2  # devpts makes its ptmx inode second (fs/devpts/inode.c)


def setup(console_fd, console_size=None, bind_console=True):
    """Allocate the pty, send the master, and make the slave fds 0-2 and the controlling tty.
    An exec'd process gets a pty too, but /dev/console stays the init's (bind_console=False).

    Nothing is looked up by a name the image controls and then used: the master comes from
    /dev/pts/ptmx checked to be a devpts ptmx (as runc), the slave from TIOCGPTPEER, and
    /dev/console is opened inside the root without following a final symlink, checked, and
    the slave is mounted onto that fd (open_tree + move_mount)."""
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        master = _open_ptmx(root)
        try:
            fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))  # unlockpt
            if console_size:
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack(
                    "HHHH", console_size.height, console_size.width, 0, 0))
            slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
            if bind_console:
                _bind_console(root, slave)
            with socket.socket(fileno=console_fd) as sock:
                sock.sendmsg([b"/dev/ptmx"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                               array.array("i", [master]))])
        except OSError as e:
            raise ConsoleError(f"setting up the console: {e.strerror.lower() if e.strerror else e}") from None
        finally:
            os.close(master)
    finally:
        os.close(root)
    for fd in (0, 1, 2):
        if fd == slave:  # the caller started us without stdio: dup2 onto itself would keep
            os.set_inheritable(fd, True)  # the close-on-exec flag, and execve close it
        else:
            os.dup2(slave, fd)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    if slave > 2:
        os.close(slave)


def _open_ptmx(root):
    """The container's own devpts ptmx (runc's checkPtmxHandle), opened for use only then."""
    try:
        handle = open_in_root(root, "/dev/pts/ptmx", os.O_PATH | os.O_NOFOLLOW)
    except OSError as e:
        assert e.errno is not None
        raise ConsoleError(f"cannot open /dev/pts/ptmx in the container (is devpts mounted at "
                           f"/dev/pts?): {os.strerror(e.errno).lower()}") from None
    try:
        st = os.fstat(handle)
        if (sc.fstatfs_type(handle) != DEVPTS_SUPER_MAGIC or st.st_ino != PTMX_INO
                or not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(5, 2)):
            raise ConsoleError("/dev/pts/ptmx in the container is not a devpts ptmx (is devpts "
                               "mounted at /dev/pts?)")
        with procfs.Procfs() as proc:
            return proc.reopen(handle, os.O_RDWR | os.O_NOCTTY)
    except OSError as e:
        raise ConsoleError(f"opening /dev/pts/ptmx: {(e.strerror or str(e)).lower()}") from None
    finally:
        os.close(handle)


def _bind_console(root, slave):
    """/dev/console becomes the pty slave, as runc does. The mount point is a regular file or
    char device at the container's /dev/console (created if missing); a symlink or anything
    else there is refused (CVE-2025-52565: the image could point it at a procfs file)."""
    try:
        target = open_in_root(root, "/dev/console", os.O_PATH | os.O_NOFOLLOW)
    except FileNotFoundError:
        target = _create_console(root)
        if target is None:
            return  # a read-only /dev: the process still gets the pty as its stdio
    try:
        st = os.fstat(target)
        if stat.S_ISLNK(st.st_mode):
            raise ConsoleError("/dev/console in the container is a symbolic link: refusing to "
                               "mount the console over it")
        if (not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode))
                or sc.fstatfs_type(target) in (sc.PROC_SUPER_MAGIC, SYSFS_MAGIC)):
            raise ConsoleError("/dev/console in the container is not a file or a character "
                               "device: refusing to mount the console over it")
        tree = sc.open_tree(slave, "", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC | sc.AT_EMPTY_PATH)
        try:
            sc.move_mount(tree, "", target, "", sc.MOVE_MOUNT_F_EMPTY_PATH | sc.MOVE_MOUNT_T_EMPTY_PATH)
        finally:
            os.close(tree)
    finally:
        os.close(target)


def _create_console(root):
    """An empty regular file at /dev/console (a mount point), or None if /dev refuses one."""
    try:
        dev = open_in_root(root, "/dev", os.O_PATH | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        os.close(os.open("console", os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=dev))
    except OSError:
        os.close(dev)
        return None
    try:
        return os.open("console", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dev)
    finally:
        os.close(dev)
