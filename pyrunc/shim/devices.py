"""Device nodes in the container's /dev: runc's default set plus linux.devices.

Everything is created through the fd of the node's directory, walked inside the rootfs
(shim/paths.py): a /dev that the image or a volume makes a symlink, or symlinks under it,
resolve with the rootfs as "/", never to the host's /dev.
"""

import errno
import os
import stat

from ..linux import mountflags as mf
from ..linux import syscalls as sc  # the unit seam: tests/unit/fakesys.py replaces it
from . import paths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..spec.model import Device

# path, major, minor: every container gets these, as with runc.
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
)
DEFAULT_LINKS = (
    ("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr"),
)
_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def create_defaults(root_fd, linux_devices: "list[Device]"):
    # A default device listed again in linux.devices is made once, from the config.
    configured = {os.path.normpath(d.path) for d in linux_devices}
    links = list(DEFAULT_LINKS)
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "core"))
    dev = paths.mkdir_all(root_fd, "/dev")
    try:
        for path, major, minor in DEFAULT_DEVICES:
            if path not in configured:
                make_node(dev, path, stat.S_IFCHR, major, minor, 0o666, 0, 0, name=path[5:])
        for target, name in links:
            try:
                os.stat(name, dir_fd=dev, follow_symlinks=False)
                continue  # the image's own stays
            except FileNotFoundError:
                pass
            os.symlink(target, name, dir_fd=dev)
    finally:
        os.close(dev)


def link_ptmx(root_fd):
    """/dev/ptmx -> pts/ptmx, the container's own devpts instance, replacing whatever has the
    name: after linux.devices, so a /dev/ptmx listed there becomes the link too (runc's
    setupPtmx runs after createDevices)."""
    dev = paths.mkdir_all(root_fd, "/dev")
    try:
        try:
            os.unlink("ptmx", dir_fd=dev)
        except FileNotFoundError:
            pass
        os.symlink("pts/ptmx", "ptmx", dir_fd=dev)
    finally:
        os.close(dev)


def create_configured(root_fd, devices: "list[Device]"):
    for d in devices:
        kind = _TYPES[d.type]
        make_node(root_fd, d.path, kind, d.major, d.minor, d.file_mode, d.uid, d.gid)


def make_node(dir_fd, path, kind, major, minor, mode, uid, gid, name=None):
    """mknod `path` (after removing what had the name), owner and mode set. dir_fd is the
    rootfs, where path is walked; or, with `name`, the fd of the node's directory."""
    try:
        if name is None:
            directory, name = os.path.split(os.path.normpath("/" + path))
            if not name:
                raise OSError(errno.EINVAL, "not a device path")
            parent = paths.mkdir_all(dir_fd, directory)
        else:
            parent = os.dup(dir_fd)
        _make_node(parent, name, path, kind, os.makedev(major, minor), mode, uid, gid)
    except OSError as e:
        assert e.errno is not None
        # the container's path, not a host path or a bare name relative to a directory fd
        raise OSError(e.errno, f"error creating device {path}: "
                               f"{(e.strerror or os.strerror(e.errno)).lower()}") from None


def _make_node(parent, name, path, kind, rdev, mode, uid, gid):
    """In the directory fd `parent` (closed here)."""
    try:
        try:
            os.unlink(name, dir_fd=parent)  # the name itself, never what a symlink points to
        except FileNotFoundError:
            pass
        if in_user_namespace():
            # as runc (createDevices: useBindMount when running in a user namespace): the
            # kernel refuses device nodes made there, so the host's node is bound instead
            _bind_host_node(parent, name, path, kind, rdev)
            return
        try:
            sc.mknod(name, kind | (mode & 0o7777), rdev, dir_fd=parent)
        except PermissionError:
            # refused outside a user namespace too (a device cgroup, a seccomp filter of the
            # caller's): the host's node instead
            _bind_host_node(parent, name, path, kind, rdev)
            return
        node = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            st = os.fstat(node)
            if stat.S_IFMT(st.st_mode) != kind or (kind != stat.S_IFIFO and st.st_rdev != rdev):
                raise OSError(errno.EEXIST, "replaced while being created")
            os.chmod(paths.fd_path(node), mode & 0o7777)
            os.chown(paths.fd_path(node), uid, gid)
        finally:
            os.close(node)
    finally:
        os.close(parent)


def in_user_namespace():
    """runc's rule: this process (the init, once it created or joined the container's user
    namespace; or a pyrunc already run inside one, rootless podman) is not in the initial
    user namespace: its uid_map is not the identity map of every id. Read before the pivot
    (the host's procfs is still there)."""
    try:
        with open("/proc/self/uid_map", "rb") as f:
            return f.read().split() != [b"0", b"0", b"4294967295"]
    except OSError:
        return False


def _bind_host_node(parent, name, path, kind, rdev):
    try:
        source = os.open(path, os.O_PATH | os.O_CLOEXEC)  # the host's node of that name
    except FileNotFoundError:
        source = None
    try:
        st = os.fstat(source) if source is not None else None
        if st is None or stat.S_IFMT(st.st_mode) != kind or st.st_rdev != rdev:
            raise OSError(errno.EPERM, "mknod is refused in a user namespace and the host has no "
                                       "such node to bind")
        target = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o644, dir_fd=parent)
        try:
            sc.mount(paths.fd_path(source), paths.fd_path(target), None, mf.MS_BIND)
        finally:
            os.close(target)
    finally:
        if source is not None:
            os.close(source)
