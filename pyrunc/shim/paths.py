"""Paths inside the container's rootfs, walked by fd: what the image names can never lead out.

A path from the config or the image is never turned into a host path string and used by name
again (a symlink swapped in between, e.g. by renameat2(RENAME_EXCHANGE) in a shared volume,
would redirect the second use). Instead every function here starts from `root_fd` (an fd of
the rootfs directory) and returns an fd; callers create, chmod and mount THROUGH that fd
(`fd_path(fd)` = /proc/self/fd/N while the host's /proc is visible, before pivot_root).

API (all fds O_CLOEXEC; the caller closes what it gets):

  open_in_root(root_fd, path, flags=O_PATH)  an existing path, resolved by the kernel
        (openat2 RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS: symlinks and ".." stay below root_fd).
        Also usable after the pivot with root_fd = an fd of "/".
  walk(root_fd, path, make=None, follow_last=True) -> Node(fd, parent, name, created)
        component by component; missing directories on the way are created with mkdirat in
        their parent's fd, a missing last component by make(parent_fd, name) (make=None: a
        lookup, nothing is created, ENOENT). Symlinks are read and resolved by us with root_fd
        as "/", so an absolute or "../.." target stays inside. With follow_last=False a final
        symlink is returned as itself (O_PATH).
  mkdir_all(root_fd, path, mode=0o755) -> fd   `mkdir -p` inside the root.
"""

import errno
import os
import stat

from ..linux.syscalls import RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, openat2

_MAX_LINKS = 40  # the kernel's limit (ELOOP)
# One component at a time: nothing is followed by the kernel, we read symlinks ourselves.
_STEP = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
_O_NODE = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def fd_path(fd):
    """The magic link of fd: mount(2), chmod and chown act on the object fd was opened on."""
    return f"/proc/self/fd/{fd}"


def open_in_root(root_fd, path, flags=os.O_PATH, mode=0, resolve=0):
    """Open an existing `path` as if root_fd were "/" (the kernel does the walk: absolute
    symlinks and ".." stay below root_fd, magic links such as /proc/self/fd/N are refused);
    `resolve` adds RESOLVE_* rules (RESOLVE_NO_SYMLINKS ...)."""
    return openat2(root_fd, path, flags | os.O_CLOEXEC, mode,
                   RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve)


class Node:
    """The result of walk(): fd of the object, fd of its directory and its name there.

    parent/name let a caller reach what was mounted on top of fd (a lookup crosses mounts,
    fd itself stays on the covered object). parent is None for the root itself.
    """

    __slots__ = ("fd", "parent", "name", "created")

    def __init__(self, fd, parent, name, created):
        self.fd, self.parent, self.name, self.created = fd, parent, name, created

    def close(self):
        for fd in (self.fd, self.parent):
            if fd is not None:
                os.close(fd)
        self.fd = self.parent = None

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def make_dir(mode=0o755):
    return lambda parent, name: os.mkdir(name, mode, dir_fd=parent)


def make_file(mode=0o644):
    def make(parent, name):
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         mode, dir_fd=parent))
    return make


def _parts(path):
    return [p for p in path.split("/") if p not in ("", ".")]


def _error(code, shown):
    return OSError(code, f"{'/' + '/'.join(shown)}: {os.strerror(code).lower()}")


def walk(root_fd, path, make=None, follow_last=True):
    """Node of `path` inside root_fd, creating what is missing (see the module's docstring)."""
    pending = _parts(path)
    pending.reverse()
    stack: list[int] = []  # fds of the directories below root_fd we are in; [] = at the root
    shown: list[str] = []  # the same as names, for messages only
    links = 0
    races = 0  # names that appeared between our lookup and our create
    created = False
    try:
        while pending:
            name = pending.pop()
            if name == "..":  # never above the root: ".." of "/" is "/"
                if stack:
                    os.close(stack.pop())
                    shown.pop()
                continue
            cur = stack[-1] if stack else root_fd
            last = not pending
            try:
                fd = openat2(cur, name, _O_NODE, 0, _STEP)
            except FileNotFoundError:
                if make is None:  # a lookup: create nothing
                    raise _error(errno.ENOENT, shown + [name]) from None
                try:
                    (make if last else make_dir())(cur, name)
                    created = last
                except FileExistsError:
                    races += 1  # someone made it meanwhile: look again, a bounded number of times
                    if races > _MAX_LINKS:
                        raise _error(errno.ELOOP, shown + [name]) from None
                except OSError as e:
                    raise _error(e.errno, shown + [name]) from None
                pending.append(name)
                continue
            except OSError as e:
                raise _error(e.errno, shown + [name]) from None
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode) and (follow_last or not last):
                try:
                    target = os.readlink("", dir_fd=fd)
                finally:
                    os.close(fd)
                links += 1
                if links > _MAX_LINKS:
                    raise _error(errno.ELOOP, shown + [name])
                if not target:
                    raise _error(errno.ENOENT, shown + [name])
                if target.startswith("/"):
                    while stack:
                        os.close(stack.pop())
                    shown.clear()
                parts = _parts(target)
                parts.reverse()
                pending.extend(parts)
                continue
            if not last:
                if not stat.S_ISDIR(mode):
                    os.close(fd)
                    raise _error(errno.ENOTDIR, shown + [name])
                stack.append(fd)
                shown.append(name)
                continue
            parent = os.dup(cur)
            return Node(fd, parent, name, created)
        return Node(os.dup(stack[-1] if stack else root_fd), None, None, False)  # "/" itself
    finally:
        for fd in stack:
            os.close(fd)


def mkdir_all(root_fd, path, mode=0o755):
    """`mkdir -p path` inside the root; the O_PATH fd of the directory (ENOTDIR if it is not one)."""
    node = walk(root_fd, path, make_dir(mode))
    fd, node.fd = node.fd, None
    node.close()
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.ENOTDIR, f"{path}: not a directory")
    return fd

