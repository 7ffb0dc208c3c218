"""Files pyrunc writes or trusts on the host, without following what another user planted.

Writing (state.json, creating.json, the pid file, seccomp cache entries): a temp file with a
random name is created with O_CREAT|O_EXCL|O_NOFOLLOW relative to an fd of the target's
directory, written, and renamed over the target. O_EXCL|O_NOFOLLOW never opens an existing
file or a symlink, and rename replaces a symlink at the target's name instead of following it,
so nothing planted in the directory is ever written through.

Reading back (state.json, creating.json, the seccomp cache): opened O_NOFOLLOW relative to a
directory fd that was itself opened O_NOFOLLOW, then fstat'ed: it must be a regular file (or
directory) owned by our euid and not writable by group or others. Anything else was not
written by us and is refused (`Untrusted`).

Every failure is a `HostFileError` whose text names the file and the reason in words.
"""

import errno
import os
import stat

from ..errors import PyruncError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


class HostFileError(PyruncError):
    """A host file pyrunc writes or reads failed: the text names the file."""


class Untrusted(HostFileError):
    """A file or directory that another user could have made or changed: never used."""


def reason(err):
    """An OSError in words, as runc prints them ("no space left on device")."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    return str(err) or "unknown error"


def check_owned(fd, path, want_dir=False):
    """Raise Untrusted unless fd is a regular file (a directory with want_dir) of our euid
    that group and others cannot write."""
    st = os.fstat(fd)
    kind_ok = stat.S_ISDIR(st.st_mode) if want_dir else stat.S_ISREG(st.st_mode)
    if not kind_ok:
        raise Untrusted(f"{path}: not a {'directory' if want_dir else 'regular file'}; "
                        f"pyrunc did not make it, refusing to use it")
    if st.st_uid != os.geteuid():
        raise Untrusted(f"{path}: owned by uid {st.st_uid}, not by uid {os.geteuid()}; "
                        f"refusing to use it")
    if st.st_mode & _WRITABLE_BY_OTHERS:
        raise Untrusted(f"{path}: writable by group or others (mode "
                        f"{stat.S_IMODE(st.st_mode):04o}); refusing to use it")
    return st


def open_dir(name, path, dir_fd=None, trusted=True):
    """An O_DIRECTORY|O_NOFOLLOW fd of name (relative to dir_fd); with trusted, checked to be
    ours (check_owned). FileNotFoundError passes through; a symlink is Untrusted."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Untrusted(f"{path}: a symlink or not a directory; pyrunc did not make it, "
                            f"refusing to use it") from None
        raise
    if trusted:
        try:
            check_owned(fd, path, want_dir=True)
        except BaseException:
            os.close(fd)
            raise
    return fd


def read_trusted(dir_fd, name, path):
    """The bytes of dir_fd/name once check_owned accepts it. FileNotFoundError passes through."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Untrusted(f"{path}: a symlink; pyrunc did not make it, refusing to use it") \
                from None
        raise
    try:
        check_owned(fd, path)
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def write_atomic(dir_fd, name, data, mode=0o600, *, sync=False, path=None, what="file"):
    """Replace dir_fd/name with data (bytes): temp file + rename, never through a symlink.

    The temp name is random (a planted file at a predictable name cannot block or redirect
    us); on any failure it is removed and HostFileError names `path` and the reason."""
    path = path or name
    tmp = f".{name}.{os.urandom(6).hex()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    if sync:
        flags |= os.O_SYNC
    try:
        fd = os.open(tmp, flags, mode, dir_fd=dir_fd)
    except OSError as e:
        raise HostFileError(f"cannot write {what} {path}: {reason(e)}") from None
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException as e:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise HostFileError(f"cannot write {what} {path}: {reason(e)}") from None
        raise


def write_pid_file(path, pid):
    """--pid-file: the pid in decimal, no newline, as runc's createPidFile.

    runc writes a temp file ".<name>" with O_EXCL|O_SYNC and mode 0666 (less the umask), then
    renames it. Here the temp name is random and opened O_NOFOLLOW relative to the directory,
    and the mode is 0644 (less the umask): what runc gives under the usual umask 022, but never
    writable by others even under umask 0 (an engine kills the pid it reads from this file).
    The directory is the caller's (an engine's bundle or run dir): its path is followed."""
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise HostFileError(f"cannot write pid file {path}: {reason(e)}") from None
    try:
        write_atomic(dir_fd, name, str(pid).encode(), 0o644, sync=True, path=path,
                     what="pid file")
    finally:
        os.close(dir_fd)


def remove_tree(dir_fd, name):
    """rm -r dir_fd/name without following a symlink anywhere: a symlink (at name too) is
    unlinked, never entered. Missing entries are fine."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        return
    try:
        for entry in os.scandir(fd):
            try:
                if entry.is_dir(follow_symlinks=False):
                    remove_tree(fd, entry.name)
                else:
                    os.unlink(entry.name, dir_fd=fd)
            except FileNotFoundError:
                pass
    finally:
        os.close(fd)
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
