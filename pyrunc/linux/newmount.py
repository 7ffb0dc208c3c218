"""The new mount API (Linux 5.2+; mount_setattr 5.12+): open_tree, mount_setattr, move_mount.

Why: a read-only bind mount made with the old API is a read-write bind first and a remount
after; cloning a mount with open_tree, making the detached clone read-only and only then
attaching it (move_mount) never shows a writable window. Every wrapper raises
OSError(errno, message). The syscall numbers are the same on every architecture.
"""

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_MOUNT_SETATTR = 442

AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(ret, what):
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err).lower()}")
    return ret


def clone_tree(fd):
    """open_tree(fd, "", OPEN_TREE_CLONE|AT_EMPTY_PATH|OPEN_TREE_CLOEXEC): a detached copy of
    the mount at the O_PATH fd, rooted at what fd names (a file or a directory). Returns an fd;
    the copy vanishes when the last reference to it (the fd, an exec'd image) goes."""
    return _check(_libc.syscall(_SYS_OPEN_TREE, fd, b"",
                                OPEN_TREE_CLONE | AT_EMPTY_PATH | OPEN_TREE_CLOEXEC), "open_tree")


def set_attrs(fd, attr_set, attr_clr=0):
    """mount_setattr(fd, "", AT_EMPTY_PATH): set/clear MOUNT_ATTR_* on the mount at fd."""
    attr = _MountAttr(attr_set, attr_clr, 0, 0)
    _check(_libc.syscall(_SYS_MOUNT_SETATTR, fd, b"", AT_EMPTY_PATH, ctypes.byref(attr),
                         ctypes.sizeof(attr)), "mount_setattr")


def attach(tree_fd, target_fd):
    """move_mount: attach the detached mount tree_fd onto what the O_PATH fd target_fd names."""
    _check(_libc.syscall(_SYS_MOVE_MOUNT, tree_fd, b"", target_fd, b"",
                         MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH), "move_mount")
