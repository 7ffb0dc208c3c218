"""Files under /proc that a container cannot redirect (the CVE-2025-52881 class).

After pivot_root, "/proc" is whatever the config and the image made it: a bind volume, a
procfs with something mounted over /proc/sys/kernel/x, a symlink. A write by name (a sysctl,
an LSM label) could then land in a host file or in another, more dangerous procfs file. So
every /proc access of the shim goes through a `Procfs`:

* its root is a procfs nobody else can see: a fresh instance (fsopen/fsmount, detached), or,
  where the kernel refuses that, a detached clone of the top /proc mount without the mounts
  below it (open_tree), or at last /proc itself; each is checked to be the root of a procfs
  (fstatfs magic PROC_SUPER_MAGIC and inode PROC_ROOT_INO);
* paths below it are opened with openat2 RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
  RESOLVE_NO_XDEV (no symlink, no magic link, no mount crossed) and the file opened is checked
  to be on procfs again.

"self" is a symlink, so the pid is read from the instance's own "self" link.
"""

import errno
import os

from ..linux import syscalls as sc

PROC_ROOT_INO = 1
_AT_FDCWD = -100
_STRICT = sc.RESOLVE_NO_SYMLINKS | sc.RESOLVE_NO_MAGICLINKS | sc.RESOLVE_NO_XDEV


class Procfs:
    """A verified procfs root fd. Use as a context manager; nothing of it survives close()."""

    def __init__(self):
        self.fd = _open_root()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()

    def open(self, relpath, flags):
        """Open /proc/<relpath> (no leading "/") without following a symlink or crossing a
        mount. OSError with a sentence naming the path when it is redirected."""
        try:
            fd = sc.openat2(self.fd, relpath, flags | os.O_CLOEXEC | os.O_NOFOLLOW, 0, _STRICT)
        except OSError as e:
            assert e.errno is not None
            if e.errno in (errno.ELOOP, errno.EXDEV):
                raise OSError(e.errno, f"/proc/{relpath} is redirected by a symlink or a mount "
                                       f"(refused)") from None
            raise OSError(e.errno, f"/proc/{relpath}: {os.strerror(e.errno).lower()}") from None
        try:
            if sc.fstatfs_type(fd) != sc.PROC_SUPER_MAGIC:
                raise OSError(errno.EXDEV, f"/proc/{relpath} is not on procfs (refused)")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def self_path(self, relpath):
        """"<pid>/<relpath>": /proc/self/<relpath> without following "self" in a lookup."""
        pid = os.readlink("self", dir_fd=self.fd)
        if not pid.isdigit():
            raise OSError(errno.EXDEV, "/proc/self is not procfs's own link (refused)")
        return f"{pid}/{relpath}"

    def reopen(self, fd, flags):
        """A new open file description of what O_PATH `fd` is, with `flags`, through this
        process's fd directory in the verified procfs (the magic link is followed only for the
        last step, from a checked directory); the result must be the same inode."""
        fd_dir = self.open(self.self_path("fd"), os.O_PATH | os.O_DIRECTORY)
        try:
            new = os.open(str(fd), flags | os.O_CLOEXEC, dir_fd=fd_dir)
        finally:
            os.close(fd_dir)
        want, got = os.fstat(fd), os.fstat(new)
        if (want.st_dev, want.st_ino) != (got.st_dev, got.st_ino):
            os.close(new)
            raise OSError(errno.EXDEV, f"reopening fd {fd} through /proc gave another file (refused)")
        return new


def write_file(relpath, data, proc=None):
    """Write `data` (str or bytes) to /proc/<relpath> in one write, through a verified procfs."""
    if isinstance(data, str):
        data = data.encode()
    own = proc is None
    proc = proc or Procfs()
    try:
        fd = proc.open(relpath, os.O_WRONLY)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    finally:
        if own:
            proc.close()


def _open_root():
    errors = []
    for opener in (_private_instance, _detached_clone, _plain):
        try:
            fd = opener()
        except OSError as e:
            errors.append(e)
            continue
        try:
            _verify_root(fd)
            return fd
        except OSError as e:
            os.close(fd)
            errors.append(e)
    raise OSError(errors[-1].errno, "no usable procfs: " + "; ".join(
        (e.strerror or str(e)).lower() for e in errors))


def _private_instance():
    """A new procfs of our pid namespace, mounted nowhere: nothing can be stacked on it."""
    ctx = sc.fsopen("proc", sc.FSOPEN_CLOEXEC)
    try:
        sc.fsconfig(ctx, sc.FSCONFIG_CMD_CREATE)
        return sc.fsmount(ctx, sc.FSMOUNT_CLOEXEC,
                          sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV | sc.MOUNT_ATTR_NOEXEC)
    finally:
        os.close(ctx)


def _detached_clone():
    """The top /proc mount alone (not AT_RECURSIVE): the mounts stacked below are left out."""
    return sc.open_tree(_AT_FDCWD, "/proc",
                        sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC | sc.AT_SYMLINK_NOFOLLOW)


def _plain():
    return os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _verify_root(fd):
    if sc.fstatfs_type(fd) != sc.PROC_SUPER_MAGIC:
        raise OSError(errno.EXDEV, "/proc is not procfs")
    if os.fstat(fd).st_ino != PROC_ROOT_INO:
        raise OSError(errno.EXDEV, "/proc is not the root of a procfs")
