"""A recording fake of pyrunc.linux.syscalls for the rootfs steps (the unit seam).

shim/rootfs.py, shim/devices.py, shim/masks.py and shim/procfs.py call the syscalls that need
privileges through their module attribute `sc` (pyrunc.linux.syscalls); `install(monkeypatch,
fake)` replaces it in all four with one `FakeSyscalls`. The fake does not mount anything: it
records each call (`fake.calls`, in order) with its paths and fds turned into names a test can
read, and answers as a kernel that let it happen would:

* mount, umount2, pivot_root, chroot, mount_setattr, fsconfig: recorded, nothing done;
* open_tree returns a real O_PATH fd of what it names (fstat works on it), fsopen/fsmount a
  real fd that stands for the new filesystem (for "proc": the host's /proc); move_mount
  records where it went;
* mount_id says a new mount is on a mount point once something was mounted (or moved) onto
  it, so rootfs._mounted's check passes as with a real mount, and fails like the real one
  when nothing was;
* mknod fails with EPERM (as where a device cgroup refuses it: devices.py then binds the
  host's node, which is recorded as a mount);
* everything else (openat2, fstatfs_type, the constants) is the real module's: the walks
  inside the temp rootfs are real.

Names: a path inside `rootfs` is shown as the container's path ("/dev/null"), any other as
"host:<path>"; a tree from open_tree as "tree:<name>", from fsmount as "fs:<type>".
`fail(kind, target, errno)` makes the next matching call fail; a target in `inert` is mounted
"somewhere else" (a swapped mount point: rootfs._mounted must refuse it).
"""

import errno
import os

from pyrunc.linux import mountflags as mf
from pyrunc.linux import syscalls as real

# a remount or a propagation change: no new mount on the target
_NOT_NEW = mf.MS_REMOUNT | mf.MS_SHARED | mf.MS_SLAVE | mf.MS_PRIVATE | mf.MS_UNBINDABLE


class Call:
    __slots__ = ("kind", "target", "source", "fstype", "flags", "data")

    def __init__(self, kind, target, source=None, fstype=None, flags=0, data=None):
        self.kind, self.target, self.source = kind, target, source
        self.fstype, self.flags, self.data = fstype, flags, data

    def __repr__(self):
        extra = "".join(f" {k}={getattr(self, k)!r}" for k in ("source", "fstype", "data")
                        if getattr(self, k) is not None)
        return f"<{self.kind} {self.target}{extra} flags={self.flags:#x}>"


class FakeSyscalls:
    def __init__(self, rootfs=None):
        self.rootfs = os.path.realpath(rootfs) if rootfs else None
        self.calls = []
        self.trees = {}      # fd -> (label, (st_dev, st_ino)) of fds we made
        self.mounts = {}     # (st_dev, st_ino) of a mount point -> mounts stacked on it
        self.covered = {}    # fd used as a mount target -> (key, mounts on it before)
        self.failures = []   # (kind, target, errno, flags)
        self.inert = set()   # targets whose mounts "happen" elsewhere: mount_id does not change

    def __getattr__(self, name):  # constants, openat2, fstatfs_type: the real ones
        return getattr(real, name)

    # ----- names
    def name(self, path):
        path = os.path.normpath(path)
        if self.rootfs and (path == self.rootfs or path.startswith(self.rootfs + "/")):
            rel = os.path.relpath(path, self.rootfs)
            return "/" if rel == "." else "/" + rel
        return "host:" + path

    def fd_name(self, fd):
        if fd in self.trees and self._key(fd) == self.trees[fd][1]:
            return self.trees[fd][0]
        return self.name(os.readlink(f"/proc/self/fd/{fd}"))

    def path_name(self, path, dirfd=real.AT_FDCWD):
        if path is None:
            return None
        if path.startswith("/proc/self/fd/"):
            fd, _, rest = path[len("/proc/self/fd/"):].partition("/")
            name = self.fd_name(int(fd))
            return name + "/" + rest if rest else name
        if dirfd != real.AT_FDCWD and not path.startswith("/"):
            base = self.fd_name(dirfd)
            return base if not path else base.rstrip("/") + "/" + path
        return self.name(os.path.abspath(path))

    # ----- recording
    def _record(self, call):
        for i, (kind, target, code, flags) in enumerate(self.failures):
            if kind == call.kind and target == call.target and call.flags & flags == flags:
                del self.failures[i]
                self.calls.append(Call("failed-" + call.kind, call.target, call.source, call.fstype,
                                       call.flags, call.data))
                raise OSError(code, f"{call.kind}: {os.strerror(code).lower()}")
        self.calls.append(call)

    def fail(self, kind, target, code, flags=0):
        """The next `kind` call on `target` (with these flags among its own) fails with code."""
        self.failures.append((kind, target, code, flags))

    @staticmethod
    def _key(fd):
        st = os.fstat(fd)
        return st.st_dev, st.st_ino

    def _mounted_on(self, fd):
        key = self._key(fd)
        self.covered[fd] = (key, self.mounts.get(key, 0))
        self.mounts[key] = self.mounts.get(key, 0) + 1

    def _target_fd(self, path):
        if path and path.startswith("/proc/self/fd/") and path[14:].isdigit():
            return int(path[14:])
        return None

    def _new_fd(self, label, path="/"):
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        self.trees[fd] = (label, self._key(fd))
        return fd

    # ----- the faked calls
    def mount(self, source, target, fstype, flags=0, data=None):
        shown = self.path_name(source) if source and source.startswith("/") else source
        self._record(Call("mount", self.path_name(target), shown, fstype, flags, data))
        fd = self._target_fd(target)
        if fd is not None and not flags & _NOT_NEW \
                and self.calls[-1].target not in self.inert:
            self._mounted_on(fd)

    def umount2(self, target, flags=0):
        self._record(Call("umount2", self.path_name(target), flags=flags))

    def pivot_root(self, new_root, put_old):
        self._record(Call("pivot_root", self.path_name(new_root), self.path_name(put_old)))

    def chroot(self, path):
        self._record(Call("chroot", self.path_name(path)))

    def mknod(self, name, mode, device=0, *, dir_fd=None):
        self._record(Call("mknod", self.path_name(name, dir_fd), flags=mode, data=device))
        raise OSError(errno.EPERM, "mknod: operation not permitted")

    def open_tree(self, dirfd, path, flags):
        where = self.path_name(path, dirfd) if path else self.fd_name(dirfd)
        self._record(Call("open_tree", where, flags=flags))
        if path:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC,
                         dir_fd=None if dirfd == real.AT_FDCWD else dirfd)
        else:
            fd = os.dup(dirfd)
        self.trees[fd] = ("tree:" + where, self._key(fd))
        return fd

    def move_mount(self, from_dirfd, from_path, to_dirfd, to_path, flags):
        self._record(Call("move_mount", self.fd_name(to_dirfd), self.fd_name(from_dirfd),
                          flags=flags))
        self._mounted_on(to_dirfd)

    def mount_setattr(self, dirfd, path, flags, attr_set, attr_clr=0, propagation=0, userns_fd=0):
        self._record(Call("mount_setattr", self.fd_name(dirfd), flags=flags,
                          data=(attr_set, attr_clr, propagation)))

    def fsopen(self, fsname, flags=0):
        self._record(Call("fsopen", fsname))
        return self._new_fd("fsctx:" + fsname)

    def fsconfig(self, fd, cmd, key=None, value=None, aux=0):
        self._record(Call("fsconfig", self.fd_name(fd), flags=cmd, data=(key, value)))

    def fsmount(self, fd, flags=0, attr_flags=0):
        fstype = self.fd_name(fd)[len("fsctx:"):]
        self._record(Call("fsmount", "fs:" + fstype, flags=attr_flags))
        # a procfs instance is the host's /proc (procfs.py checks it is one); others a stand-in
        return self._new_fd("fs:" + fstype, "/proc" if fstype == "proc" else "/")

    def mount_id(self, fd):
        key = self._key(fd)
        before = self.covered.get(fd)
        count = before[1] if before and before[0] == key else self.mounts.get(key, 0)
        return hash((key, count))


MODULES = ("rootfs", "devices", "masks", "procfs")


def install(monkeypatch, fake):
    """Make the rootfs steps call `fake` instead of the kernel."""
    import importlib
    for name in MODULES:
        monkeypatch.setattr(importlib.import_module(f"pyrunc.shim.{name}"), "sc", fake)
    return fake
