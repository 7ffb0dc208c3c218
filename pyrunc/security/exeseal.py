"""Executable sealing: no container can overwrite the interpreter pyrunc runs on (runc's
CVE-2019-5736).

pyrunc's container-side processes (the init until its execve, exec's second stage) are forked
from the host process, so their /proc/PID/exe is the interpreter the launcher started. An
image whose entrypoint starts with `#!/proc/self/exe` makes the kernel run that interpreter
inside the container, as a dumpable process with the container's credentials; container root
then opens /proc/PID/exe (O_PATH, reopened for writing once the process is gone) and writes
the host's interpreter. The defence: the file behind /proc/self/exe of every create/run/exec
is reached through a READ-ONLY mount. Opening it for writing through /proc/PID/exe then fails
with EROFS, and a container cannot make that mount writable: remount, mount_setattr and
open_tree all refuse a mount of another mount namespace (or a detached one), even with
CAP_SYS_ADMIN.

    ensure_sealed()   called by the CLI before create/run/exec

* The common path: /proc/self/exe is already on a read-only mount (statvfs, a few µs).
* Our own copy (`make setup` copies the interpreter to .venv/bin/pyrunc-python and points
  bin/pyrunc at it): a read-only bind of it onto itself, in the caller's mount namespace, so
  every later launch through the same path is sealed for free; then one re-exec through it.
  Made with open_tree + mount_setattr + move_mount: the bind is never writable, not even for
  an instant.
* Any other interpreter (a pip console script on /usr/bin/python3.11, `python -m pyrunc`):
  never a mount over a file a package manager owns (dpkg could no longer replace it). A
  detached read-only clone of the mount of our exe instead, and a re-exec through it on every
  create/run/exec (~25 ms): it lives as long as the processes running it, nothing to clean up.
* No CAP_SYS_ADMIN (not root): if this uid cannot write the interpreter, no container of this
  user can either: run unsealed. Otherwise refuse with ExecutableNotSealed.
"""

import os
import sys

from ..errors import PyruncError

# The name `make setup` gives the interpreter copy of bin/pyrunc: a file of ours, safe to seal
# with a mount that outlives us. Any other interpreter gets a private, temporary seal.
OWN_NAME = "pyrunc-python"


class ExecutableNotSealed(PyruncError):
    """pyrunc's interpreter could be overwritten from a container and cannot be sealed."""


def ensure_sealed(reexec=True):
    """Return once the interpreter behind /proc/self/exe is on a read-only mount (or cannot be
    written by this user at all). Otherwise seal it and re-exec this process through the sealed
    file with the same argv (sys.orig_argv): does not return. Call it at the start of a program
    that creates or execs containers in-process (the CLI calls it before create/run/exec),
    before anything was read from stdin. Raises ExecutableNotSealed when sealing is impossible,
    or, with reexec=False, when a re-exec would be needed."""
    if os.statvfs("/proc/self/exe").f_flag & os.ST_RDONLY:
        return
    if not reexec:
        if _unwritable_by_us():
            return
        raise ExecutableNotSealed(
            f"the interpreter {os.readlink('/proc/self/exe')} is not sealed against containers "
            f"overwriting it: call pyrunc.security.exeseal.ensure_sealed() when the program starts")
    _seal_and_reexec()


def _seal_and_reexec():
    exe = os.readlink("/proc/self/exe")
    try:
        own = _own_copy(exe)
        sealed = _seal_in_place(own) if own is not None else _private_seal()
    except OSError as e:
        _refuse_unless_unwritable(exe, e)
        return
    if not os.fstatvfs(sealed).f_flag & os.ST_RDONLY:  # never loop on a seal that did not take
        raise ExecutableNotSealed(f"sealing the interpreter {exe}: its mount is still writable")
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    # argv as we were started (interpreter flags, launcher script, verb and flags); the fd is
    # close-on-exec: the kernel has opened the image by then
    os.execv(f"/proc/self/fd/{sealed}", sys.orig_argv)


def _own_copy(exe):
    """An O_PATH fd of `make setup`'s interpreter copy at the path we run from (a new copy if
    ours was replaced meanwhile), or None when our exe is some other interpreter."""
    path = exe[:-len(" (deleted)")] if exe.endswith(" (deleted)") else exe
    if not path.startswith("/") or os.path.basename(path) != OWN_NAME:
        return None
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    st = os.fstat(fd)
    if (st.st_mode & 0o170000) != 0o100000 or st.st_uid != os.geteuid():
        os.close(fd)
        return None
    return fd


def _readonly_clone(fd):
    """A detached clone of the mount at the O_PATH fd, rooted at what fd names, made read-only
    before anything can see it (the new mount API: no writable window, unlike bind + remount)."""
    from ..linux import syscalls as sc
    tree = sc.open_tree(fd, "", sc.OPEN_TREE_CLONE | sc.AT_EMPTY_PATH | sc.OPEN_TREE_CLOEXEC)
    sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH, sc.MOUNT_ATTR_RDONLY)
    return tree


def _seal_in_place(fd):
    """Attach a read-only bind of the file at fd onto itself; returns an O_PATH fd of the
    sealed file. Two first calls racing are serialised by a lock on the file."""
    import fcntl
    path = os.readlink(f"/proc/self/fd/{fd}")
    lock = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)  # flock needs a real open
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # resolve again: whoever held the lock may have sealed it meanwhile (its mount is on top)
        top = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        a, b = os.fstat(fd), os.fstat(top)
        if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
            raise OSError(16, f"{path} was replaced while being sealed")  # EBUSY
        if os.fstatvfs(top).f_flag & os.ST_RDONLY:
            return top
        from ..linux import syscalls as sc
        tree = _readonly_clone(top)
        sc.move_mount(tree, "", top, "", sc.MOVE_MOUNT_F_EMPTY_PATH | sc.MOVE_MOUNT_T_EMPTY_PATH)
        return tree
    finally:
        os.close(lock)


def _private_seal():
    """A detached read-only clone of the mount of the file we run (not of its path: the very
    inode), gone once nothing runs it any more."""
    return _readonly_clone(os.open("/proc/self/exe", os.O_PATH | os.O_CLOEXEC))


def _unwritable_by_us():
    """Neither we nor any process of our uid can write the interpreter: not its owner (an owner
    can chmod), no group/other write bit, no write access."""
    st = os.stat("/proc/self/exe")
    return (st.st_uid != os.geteuid() and not st.st_mode & 0o022
            and not os.access("/proc/self/exe", os.W_OK))


def _refuse_unless_unwritable(exe, error):
    """Sealing needs CAP_SYS_ADMIN over our mount namespace. Without it, run unsealed only if
    no process of this user (hence no container this user can start: its ids map to ours or to
    subordinate ids) can write the interpreter: not its owner (an owner can chmod), no
    group/other write bit, no write access."""
    if _unwritable_by_us():
        return
    reason = error.strerror.lower() if error.strerror else "failed"
    raise ExecutableNotSealed(
        f"cannot seal the interpreter {exe} against containers overwriting it (CVE-2019-5736): "
        f"{reason}; this user can write it, so a container could replace it: run pyrunc as root "
        f"(with CAP_SYS_ADMIN) or from an interpreter this user cannot write")


if __name__ == "__main__":  # `python -m pyrunc.security.exeseal`: seal the running interpreter now
    ensure_sealed()
