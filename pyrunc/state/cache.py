"""pyrunc's own cache (<base>/pyrunc/<kind>/<key>), outside every --root, whose entries are used
only if ours.

Not under --root: that directory is the engine's, and runc's `list` (or an engine's cleanup)
reads every entry there as a container ("@cache: invalid container ID format"). `location()`:
$XDG_CACHE_HOME/pyrunc when set (absolute), else /var/cache/pyrunc for root and
~/.cache/pyrunc for other users.

What is cached can decide what a container may do (a compiled seccomp program): an entry is
read only if it and every directory from <base>/pyrunc down is ours (our euid, not writable by
group or others, no symlink; state/hostfile.py). A foreign entry reads as a miss, and `put`
replaces it through a temp file + rename that never follows what was planted. A cache that
cannot be used (not ours, a full or read-only disk, no home) is no error: the caller computes
instead.
"""

import os

from . import hostfile

ROOT_MODE = 0o700  # a base we make (an unset-up ~/.cache) is ours alone
NAME = "pyrunc"


def location():
    """(base, name): the cache is <base>/<name>; base None when there is nowhere to put it."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not (base and os.path.isabs(base)):
        if os.geteuid() == 0:
            base = "/var/cache"
        else:
            home = os.environ.get("HOME")
            base = os.path.join(home, ".cache") if home and os.path.isabs(home) else None
    return base, NAME


def for_kind(kind):
    """The TrustedCache of one kind of entry (e.g. "seccomp"), or None."""
    base, name = location()
    return TrustedCache(base, name, kind) if base else None


class TrustedCache:
    def __init__(self, root, *parts):
        self.root = root
        self.parts = parts  # e.g. ("pyrunc", "seccomp"): each one checked to be ours

    def _open(self):
        """An fd of the cache directory, made (0700) where missing and checked to be ours;
        None when that cannot be had."""
        fd = None
        try:
            os.makedirs(self.root, ROOT_MODE, exist_ok=True)
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the caller's
            path = self.root
            for part in self.parts:
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
                path = os.path.join(path, part)
                sub = hostfile.open_dir(part, path, dir_fd=fd)
                os.close(fd)
                fd = sub
            return fd
        except (OSError, hostfile.HostFileError):
            if fd is not None:
                os.close(fd)
            return None

    def get(self, name):
        """The bytes of our entry `name`, or None (missing, or not ours)."""
        fd = self._open()
        if fd is None:
            return None
        try:
            return hostfile.read_trusted(fd, name, os.path.join(self.root, *self.parts, name))
        except (OSError, hostfile.HostFileError):
            return None
        finally:
            os.close(fd)

    def put(self, name, data):
        """Store data as `name` (0600), replacing whatever is there; failures are ignored."""
        fd = self._open()
        if fd is None:
            return
        try:
            hostfile.write_atomic(fd, name, data, 0o600)
        except hostfile.HostFileError:
            pass
        finally:
            os.close(fd)
