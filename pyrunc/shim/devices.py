"""Device nodes in the container's /dev: runc's default set plus linux.devices."""

import errno
import os
import stat

from ..linux import mountflags as mf
from ..linux.syscalls import mount
from .paths import resolve_in_root

# path, major, minor: every container gets these, as with runc.
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
)
DEFAULT_LINKS = (
    ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
)
_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def create_defaults(rootfs, config):
    configured = {d["path"] for d in (config.get("linux") or {}).get("devices") or []}
    for path, major, minor in DEFAULT_DEVICES:
        if path not in configured:
            make_node(rootfs, path, stat.S_IFCHR, major, minor, 0o666, 0, 0)
    links = list(DEFAULT_LINKS)
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    links.append(("pts/ptmx", "/dev/ptmx"))  # the container's own devpts instance
    for target, name in links:
        host = resolve_in_root(rootfs, name)
        if os.path.lexists(host):
            if name != "/dev/ptmx":
                continue
            os.unlink(host)
        os.symlink(target, host)


def create_configured(rootfs, devices):
    for d in devices:
        kind = _TYPES[d["type"]]
        make_node(rootfs, d["path"], kind, d.get("major", 0), d.get("minor", 0),
                  d.get("fileMode", 0o666), d.get("uid", 0), d.get("gid", 0))


def make_node(rootfs, path, kind, major, minor, mode, uid, gid):
    host = resolve_in_root(rootfs, path)
    os.makedirs(os.path.dirname(host), mode=0o755, exist_ok=True)
    if os.path.lexists(host):
        os.unlink(host)
    try:
        os.mknod(host, kind | (mode & 0o7777), os.makedev(major, minor))
    except PermissionError:
        # In a user namespace mknod is refused: bind the host's node instead.
        _bind_host_node(host, path, kind, major, minor)
        return
    os.chmod(host, mode & 0o7777)
    os.chown(host, uid, gid)


def _bind_host_node(host, path, kind, major, minor):
    source = path
    try:
        st = os.stat(source)
        same = stat.S_IFMT(st.st_mode) == kind and st.st_rdev == os.makedev(major, minor)
    except FileNotFoundError:
        same = False
    if not same:
        raise OSError(errno.EPERM, f"cannot create device {path} in a user namespace")
    os.close(os.open(host, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    mount(source, host, None, mf.MS_BIND)
