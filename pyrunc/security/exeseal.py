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
* No mount possible (a non-root caller, or root without CAP_SYS_ADMIN): the interpreter is safe
  as it is when no container of this caller can write it: not writable by the caller (not its
  owner, no group/other write bit, no W_OK) AND owned by no uid a container of the caller can
  map (our euid, our /etc/subuid ranges; inside a user namespace any uid mapped in it), since
  a container's root has CAP_DAC_OVERRIDE/CAP_FOWNER over files of its mapped ids. A root-owned
  0755 interpreter (/usr/bin, `make setup`'s copy) is that case. Otherwise: re-exec from a
  sealed memfd copy (memfd_create + F_SEAL_WRITE|SHRINK|GROW|SEAL, as runc 1.1 did), so
  /proc/self/exe is a private, unwritable copy (~10 ms and the interpreter's size in memory
  per create/run/exec).
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
    if os.statvfs("/proc/self/exe").f_flag & os.ST_RDONLY or _running_sealed_memfd():
        return
    if not reexec:
        if _safe_unsealed():
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
        if _safe_unsealed():
            return  # nothing of ours or our containers' can write it
        sealed = _memfd_copy(exe, e)
    if not (os.fstatvfs(sealed).f_flag & os.ST_RDONLY or _sealed_memfd(sealed)):  # never loop
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


def _safe_unsealed():
    """The rule without a mount: unwritable by us and owned by no uid our containers can map
    (their root has CAP_DAC_OVERRIDE and CAP_FOWNER over files of mapped ids)."""
    return _unwritable_by_us() and not _mappable(os.stat("/proc/self/exe").st_uid)


def _mappable(uid):
    """Could a container of ours have `uid` mapped? Our euid; in the initial user namespace, our
    /etc/subuid ranges (newuidmap maps them); inside a user namespace (rootless podman runs
    us in one), any uid mapped in it (we may be its root). Root maps anything."""
    if os.geteuid() == 0 and not _in_user_namespace():
        return True
    if uid == os.geteuid():
        return True
    if _in_user_namespace():
        return any(start <= uid < start + size for start, _host, size in _ranges("/proc/self/uid_map"))
    return any(start <= uid < start + size for start, size in _subuid_ranges())


def _in_user_namespace():
    ranges = _ranges("/proc/self/uid_map")
    return ranges != [(0, 0, 4294967295)]


def _ranges(path):
    try:
        with open(path) as f:
            return [tuple(int(x) for x in line.split()) for line in f if line.strip()]
    except (OSError, ValueError):
        return []


def _subuid_ranges():
    """(start, size) of /etc/subuid lines naming our user (by name or number), as shadow's
    newuidmap reads them."""
    import pwd
    euid = os.geteuid()
    names = {str(euid)}
    try:
        names.add(pwd.getpwuid(euid).pw_name)
    except KeyError:
        pass
    out = []
    try:
        with open("/etc/subuid") as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] in names:
                    try:
                        out.append((int(parts[1]), int(parts[2])))
                    except ValueError:
                        continue
    except OSError:
        pass
    return out


def _seals():
    import fcntl
    return fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def _sealed_memfd(fd):
    """Is fd a memfd with every seal we set (so nobody can change it)?"""
    import fcntl
    try:
        have = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    except OSError:
        return False  # not a memfd (EINVAL)
    return have & _seals() == _seals()


def _running_sealed_memfd():
    """After our memfd re-exec /proc/self/exe is that copy: already sealed."""
    try:
        fd = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return _sealed_memfd(fd)
    finally:
        os.close(fd)


def _memfd_copy(exe, mount_error):
    """A sealed in-memory copy of the interpreter to re-exec from (runc 1.1's way): the
    container sees it as /proc/PID/exe and can neither write it (F_SEAL_WRITE) nor reach the
    file on disk through it."""
    import fcntl
    try:
        fd = os.memfd_create(OWN_NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            src = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
            try:
                size = os.fstat(src).st_size
                offset = 0
                while offset < size:
                    n = os.sendfile(fd, src, offset, size - offset)
                    if n == 0:
                        break
                    offset += n
            finally:
                os.close(src)
            os.fchmod(fd, 0o555)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _seals())
        except BaseException:
            os.close(fd)
            raise
    except OSError as e:
        reason = (mount_error.strerror or "failed").lower()
        raise ExecutableNotSealed(
            f"cannot seal the interpreter {exe} against containers overwriting it (CVE-2019-5736): "
            f"{reason}, and no sealed copy could be made: {(e.strerror or str(e)).lower()}; run "
            f"pyrunc from an interpreter this user cannot write") from None
    return fd


if __name__ == "__main__":  # `python -m pyrunc.security.exeseal`: seal the running interpreter now
    ensure_sealed()
