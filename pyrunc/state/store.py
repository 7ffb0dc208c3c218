"""One directory per container under the root: state.json, the exec fifo, a lock.

Layout (see docs/ARCHITECTURE.md):
    <root>/<id>/state.json   the record, replaced atomically (temp file + rename)
    <root>/<id>/exec.fifo    the start barrier; exists only while the container is "created"
The container directory itself is the lock (flock), so concurrent commands on one
container serialise while commands on different containers do not.
"""

import errno
import fcntl
import os

from .. import jsonio
from ..errors import ContainerExists, ContainerNotFound, InvalidIDError

STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"

# runc's rule: ASCII letters, digits and _ + , - . ; not "." or ".." (they name the root or
# its parent); at most 255 bytes, the longest directory name. (A set, not a regex: `re` costs
# milliseconds to import on every call.)
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+,.-")


def check_id(container_id):
    if not container_id:
        raise InvalidIDError("container id cannot be empty")
    if container_id in (".", "..") or not _ID_CHARS.issuperset(container_id) or len(container_id) > 255:
        raise InvalidIDError("invalid container ID format")  # runc's exact text, no id appended


def remove_dir(path):
    """A directory and what is in it: files, and subdirectories such as NOTIFY_SOCKET's notify/
    (runtime/notify_socket.py). A missing one, or one removed meanwhile, is fine."""
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                remove_dir(entry.path)
            else:
                os.unlink(entry.path)
        except FileNotFoundError:
            pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


class Store:
    def __init__(self, root):
        self.root = os.path.abspath(root)

    def path(self, container_id, name=""):
        return os.path.join(self.root, container_id, name) if name else os.path.join(self.root, container_id)

    def claim(self, container_id):
        """Create the container's directory; it is what makes an id taken.

        Returns the directory's lock, already held: the caller releases it once state.json is
        written, so a concurrent delete waits for a complete record instead of removing the
        directory under create's feet (it would take it for an interrupted create's leftover).
        """
        check_id(container_id)
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(self.path(container_id), 0o711)
        except FileExistsError:
            # runc's wording: engines look for "already exists"
            raise ContainerExists("container with given ID already exists") from None
        lock = _DirLock(self.path(container_id)).__enter__()
        try:
            same = os.path.samestat(os.fstat(lock.fd), os.stat(self.path(container_id)))
        except FileNotFoundError:
            same = False
        if not same:  # removed (and maybe re-made) between our mkdir and our flock
            lock.release()
            raise ContainerNotFound("container was deleted while it was being created")
        # not what the caller's umask left: the init, as a non-root or remapped user, must
        # still be able to open exec.fifo in here (through the fd: the path may be gone)
        os.fchmod(lock.fd, 0o711)
        return lock

    def exists(self, container_id):
        return os.path.isfile(self.path(container_id, STATE_FILE))

    def load(self, container_id):
        check_id(container_id)
        try:
            with open(self.path(container_id, STATE_FILE), "rb") as f:
                return jsonio.loads(f.read())
        except FileNotFoundError:
            raise ContainerNotFound("container does not exist") from None

    def save(self, container_id, record):
        final = self.path(container_id, STATE_FILE)
        tmp = final + ".tmp"
        with open(tmp, "w") as f:
            f.write(jsonio.dumps(record))
        os.rename(tmp, final)

    def remove(self, container_id):
        """Delete the directory and everything in it; a missing one is fine."""
        remove_dir(self.path(container_id))

    def ids(self):
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        return [n for n in names if os.path.isfile(os.path.join(self.root, n, STATE_FILE))]

    def lock(self, container_id):
        return _DirLock(self.path(container_id))


class _DirLock:
    """flock on the container directory, held for the duration of a with-block."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def __enter__(self):
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotFound("container does not exist") from None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def release(self):
        # Unlock explicitly: a process forked meanwhile (create's shim) shares the open file
        # description, and closing our fd alone would leave the lock held by its copy.
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def fifo_exists(path):
    try:
        os.stat(path)
        return True
    except OSError as e:
        if e.errno == errno.ENOENT:
            return False
        raise
