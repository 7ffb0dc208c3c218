"""A cache under --root (<root>/@cache/<kind>/<key>) whose entries are used only if ours.

What is cached can decide what a container may do (a compiled seccomp program): an entry is
read only if it and every directory from <root>/@cache down is ours (our euid, not writable by
group or others, no symlink; state/hostfile.py). A foreign entry reads as a miss, and `put`
replaces it through a temp file + rename that never follows what was planted. A cache that
cannot be used (not ours, a full or read-only root) is no error: the caller computes instead.
"""

import os

from . import hostfile

ROOT_MODE = 0o700  # as Store makes the root (state/store.py): the cache may be first


class TrustedCache:
    def __init__(self, root, *parts):
        self.root = root
        self.parts = parts  # e.g. ("@cache", "seccomp")

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
