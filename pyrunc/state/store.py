"""One directory per container under the root: state.json, the exec fifo, a lock.

Layout (see docs/ARCHITECTURE.md):
    <root>/<id>/state.json     the record (0600: it holds process.env), replaced atomically
    <root>/<id>/creating.json  the provisional record of a create in progress: the creator's
                               pid and the cgroup, so `delete` can clean up a killed create
    <root>/<id>/exec.fifo      the start barrier; exists only while the container is "created"
The container directory itself is the lock (flock), so concurrent commands on one
container serialise while commands on different containers do not.

Everything read back is checked first (state/hostfile.py): the container directory and the
files in it are opened without following symlinks and must be ours and not writable by
others, or the command fails naming the file.
"""

import fcntl
import os
import time

from .. import jsonio
from ..errors import ContainerExists, ContainerNotFound, InvalidIDError
from . import hostfile
from .hostfile import HostFileError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypedDict

    class Record(TypedDict, total=False):
        """state.json (and creating.json: id, creator_pid, creator_start, cgroup)."""
        id: str
        pid: int                    # the init's host pid
        start_time: int             # its start time (/proc/PID/stat), against pid reuse
        bundle: str
        rootfs: str
        created: str                # RFC 3339
        owner: str
        annotations: dict[str, str]
        config: dict[str, Any]      # config.json as create read it: spec.model.build(it)
        cgroup: dict[str, Any] | None  # the cgroup manager's to_state()
        creator_pid: int            # creating.json: the `create` at work
        creator_start: int

STATE_FILE = "state.json"
CREATING_FILE = "creating.json"
EXEC_FIFO = "exec.fifo"
# runc's modes. Nothing in the container opens anything below the root by path: bind
# sources (the NOTIFY_SOCKET directory <root>/<id>/notify) are opened by stage1 on the host,
# before the user namespace (shim/rootfs.py open_bind_sources), and the init holds exec.fifo
# by the fd the host opened. state.json and creating.json are 0600 besides.
ROOT_MODE = 0o700  # state/cache.py makes it too, the same
DIR_MODE = 0o711

# runc's rule: ASCII letters, digits and _ + , - . ; not "." or ".." (they name the root or
# its parent); at most 255 bytes, the longest directory name. (A set, not a regex: `re` costs
# milliseconds to import on every call.)
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+,.-")


def check_id(container_id):
    if not container_id:
        raise InvalidIDError("container id cannot be empty")
    if container_id in (".", "..") or not _ID_CHARS.issuperset(container_id) or len(container_id) > 255:
        raise InvalidIDError("invalid container ID format")  # runc's exact text, no id appended


def make_private_root(root):
    """The default root of a non-root caller, `$XDG_RUNTIME_DIR/pyrunc` (runc's rule,
    pyrunc/rootless.py): made 0700 where missing, then checked as every store file is (no
    symlink, ours, not writable by others: another user cannot hand us a store) and given the
    sticky bit, which XDG's runtime-directory cleaners honour (as runc)."""
    try:
        try:
            fd = hostfile.open_dir(root, root)  # the common case: made by an earlier call
        except FileNotFoundError:
            os.makedirs(os.path.dirname(root), ROOT_MODE, exist_ok=True)
            try:
                os.mkdir(root, ROOT_MODE)
            except FileExistsError:
                pass
            fd = hostfile.open_dir(root, root)
    except hostfile.Untrusted as e:
        raise HostFileError(f"the path in $XDG_RUNTIME_DIR must be writable by the user: {e}") from None
    except OSError as e:
        raise HostFileError(f"the path in $XDG_RUNTIME_DIR must be writable by the user: "
                            f"{root}: {hostfile.reason(e)}") from None
    try:
        os.fchmod(fd, ROOT_MODE | 0o1000)
    except OSError as e:
        raise HostFileError(f"you should check permission of the path in $XDG_RUNTIME_DIR: "
                            f"chmod {root}: {hostfile.reason(e)}") from None
    finally:
        os.close(fd)


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
        path = self.path(container_id)
        try:
            os.makedirs(self.root, mode=ROOT_MODE, exist_ok=True)
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            # runc's wording: engines look for "already exists"
            raise ContainerExists("container with given ID already exists") from None
        except OSError as e:
            raise HostFileError(f"cannot create the container's state directory {path}: "
                                f"{hostfile.reason(e)}") from None
        try:
            lock = _DirLock(path).__enter__()
        except ContainerNotFound:  # removed (and maybe re-made) between our mkdir and our flock
            raise ContainerNotFound("container was deleted while it was being created") from None
        # not what the caller's umask left (see DIR_MODE)
        os.fchmod(lock.fd, DIR_MODE)
        return lock

    def exists(self, container_id):
        return os.path.isfile(self.path(container_id, STATE_FILE))

    def _open_dir(self, container_id):
        """The container directory's fd, checked to be ours; ContainerNotFound if missing."""
        try:
            return hostfile.open_dir(self.path(container_id), self.path(container_id))
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound("container does not exist") from None

    def _read(self, container_id, name):
        """A checked JSON file of the container; FileNotFoundError if it is not there."""
        dir_fd = self._open_dir(container_id)
        try:
            data = hostfile.read_trusted(dir_fd, name, self.path(container_id, name))
        finally:
            os.close(dir_fd)
        try:
            return jsonio.loads(data)
        except ValueError:
            # half a file cannot be: it is written to a temp file and renamed
            raise HostFileError(f"{self.path(container_id, name)}: not valid JSON") from None

    def load(self, container_id) -> "Record":
        check_id(container_id)
        try:
            return self._read(container_id, STATE_FILE)
        except FileNotFoundError:
            raise ContainerNotFound("container does not exist") from None

    def load_creating(self, container_id) -> "Record | None":
        """The provisional record of an unfinished create, or None."""
        try:
            return self._read(container_id, CREATING_FILE)
        except (FileNotFoundError, ContainerNotFound):
            return None

    def save(self, container_id, record: "Record", name=STATE_FILE):
        dir_fd = self._open_dir(container_id)
        try:
            hostfile.write_atomic(dir_fd, name, jsonio.dumps(record).encode(), 0o600,
                                  path=self.path(container_id, name), what="state file")
        finally:
            os.close(dir_fd)

    def save_creating(self, container_id, record: "Record"):
        """What `delete` needs to clean up if this create dies before state.json exists."""
        self.save(container_id, record, CREATING_FILE)

    def created(self, container_id):
        """state.json is written: the provisional record is no longer needed."""
        try:
            os.unlink(self.path(container_id, CREATING_FILE))
        except FileNotFoundError:
            pass

    def remove(self, container_id):
        """Delete the directory and everything in it; a missing one is fine."""
        try:
            root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            hostfile.remove_tree(root_fd, container_id)
        except OSError as e:
            raise HostFileError(f"cannot remove {self.path(container_id)}: "
                                f"{hostfile.reason(e)}") from None
        finally:
            os.close(root_fd)

    def ids(self):
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        return [n for n in names if os.path.isfile(os.path.join(self.root, n, STATE_FILE))]

    def lock(self, container_id, while_waiting=None):
        """The container directory's flock. while_waiting(): called every ~50 ms while another
        process holds it (delete uses it to end a killed create's orphans, which may hold it)."""
        return _DirLock(self.path(container_id), while_waiting)


class _DirLock:
    """flock on the container directory, held for the duration of a with-block."""

    def __init__(self, path, while_waiting=None):
        self.path = path
        self.fd = None
        self.while_waiting = while_waiting

    def __enter__(self):
        try:
            self.fd = hostfile.open_dir(self.path, self.path)
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound("container does not exist") from None
        try:
            if self.while_waiting is None:
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            else:
                self._poll()
        except BaseException:
            os.close(self.fd)
            raise
        try:
            same = os.path.samestat(os.fstat(self.fd), os.lstat(self.path))
        except FileNotFoundError:
            same = False
        if not same:
            # removed while we waited (a failed create undoes itself; another delete), and
            # maybe made again by a new create: what we locked is not the container any more
            self.release()
            raise ContainerNotFound("container does not exist")
        return self

    def _poll(self):
        assert self.fd is not None
        delay, next_call = 0.001, 0.0
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            now = time.monotonic()
            if now >= next_call:
                self.while_waiting()
                next_call = now + 0.05
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    def __exit__(self, *exc):
        self.release()
        return False

    def release(self):
        # Unlock explicitly: a process forked meanwhile (create's shim) shares the open file
        # description, and closing our fd alone would leave the lock held by its copy.
        assert self.fd is not None
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
