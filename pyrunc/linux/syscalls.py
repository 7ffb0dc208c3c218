"""Thin ctypes wrappers for the syscalls Python's os module lacks.

Every wrapper raises OSError(errno, message) on failure, so callers handle
kernel errors the same way as os.* errors.
"""

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)

# x86_64 / aarch64 numbers of syscalls without a libc wrapper in glibc 2.36.
_SYS = {
    "x86_64": {"pivot_root": 155, "close_range": 436, "setns": 308, "ioprio_set": 251,
               "sched_setattr": 314, "openat2": 437},
    "aarch64": {"pivot_root": 41, "close_range": 436, "setns": 268, "ioprio_set": 30,
                "sched_setattr": 274, "openat2": 437},
}[os.uname().machine]

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# runtime-spec namespace type -> (clone flag, name under /proc/PID/ns)
NAMESPACES = {
    "pid": (CLONE_NEWPID, "pid"),
    "network": (CLONE_NEWNET, "net"),
    "mount": (CLONE_NEWNS, "mnt"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "uts": (CLONE_NEWUTS, "uts"),
    "user": (CLONE_NEWUSER, "user"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "time": (CLONE_NEWTIME, "time"),
}

MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


def check(ret, what):
    """ret, or OSError(errno, "what: reason") for a failed libc call (-1 and errno)."""
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err).lower()}")  # Go's (runc's) errno texts
    return ret


def _b(path):
    return os.fsencode(path) if path is not None else None


def mount(source, target, fstype, flags=0, data=None):
    check(libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)),
           f"mount {source} on {target}")


def umount2(target, flags=0):
    check(libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root, put_old):
    check(libc.syscall(_SYS["pivot_root"], _b(new_root), _b(put_old)), "pivot_root")


def unshare(flags):
    check(libc.unshare(flags), "unshare")


def setns(fd, nstype=0):
    check(libc.setns(fd, nstype), "setns")


def namespace_type(path):
    """The CLONE_NEW* flag of the namespace file at path (ioctl NS_GET_NSTYPE)."""
    import fcntl
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return fcntl.ioctl(fd, 0xB703)
    finally:
        os.close(fd)


def setdomainname(name):
    raw = name.encode()
    check(libc.setdomainname(raw, len(raw)), "setdomainname")


def sethostname(name):
    raw = name.encode()
    check(libc.sethostname(raw, len(raw)), "sethostname")


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return check(libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                              ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)), "prctl")


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective, permitted, inheritable):
    """capset(2) of the calling thread: the three sets as bit masks (version 3, 64 bits)."""
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    for i, mask in enumerate((effective, permitted, inheritable)):
        data[i] = mask & 0xFFFFFFFF        # __user_cap_data_struct[0]: caps 0-31
        data[3 + i] = mask >> 32 & 0xFFFFFFFF  # [1]: caps 32-63
    if libc.capset(header, data) < 0:
        err = ctypes.get_errno()  # bare: the caller words it as runc ("unable to apply caps: ...")
        raise OSError(err, os.strerror(err).lower())


def is_child_subreaper():
    flag = ctypes.c_int(0)
    prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(flag))
    return flag.value


def set_process_name(name):
    """PR_SET_NAME (what ps and /proc/PID/comm show); needs no write access to /proc."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    check(libc.prctl(PR_SET_NAME, buf, 0, 0, 0), "prctl(PR_SET_NAME)")


def malloc_trim():
    """Give the C heap's free pages back to the kernel (glibc's malloc_trim(0)); a no-op
    where the C library has none (musl)."""
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)


def close_range(first, last=0xFFFFFFFF, flags=0):
    """Close every fd in [first, last]; falls back to os.closerange on old kernels."""
    if libc.syscall(_SYS["close_range"], first, ctypes.c_uint(last), flags) < 0:
        os.closerange(first, min(last, os.sysconf("SC_OPEN_MAX")))


IOPRIO_WHO_PROCESS = 1
IOPRIO_CLASS_SHIFT = 13


def ioprio_set(io_class, priority):
    """ioprio_set(2) for the calling process."""
    check(libc.syscall(_SYS["ioprio_set"], IOPRIO_WHO_PROCESS, 0,
                         (io_class << IOPRIO_CLASS_SHIFT) | priority), "ioprio_set")


def personality(persona):
    check(libc.personality(ctypes.c_ulong(persona)), "personality")


class _SchedAttr(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("sched_policy", ctypes.c_uint32),
                ("sched_flags", ctypes.c_uint64), ("sched_nice", ctypes.c_int32),
                ("sched_priority", ctypes.c_uint32), ("sched_runtime", ctypes.c_uint64),
                ("sched_deadline", ctypes.c_uint64), ("sched_period", ctypes.c_uint64)]


def sched_setattr(policy, flags=0, nice=0, priority=0, runtime=0, deadline=0, period=0):
    attr = _SchedAttr(ctypes.sizeof(_SchedAttr), policy, flags, nice, priority, runtime,
                      deadline, period)
    check(libc.syscall(_SYS["sched_setattr"], 0, ctypes.byref(attr), 0), "sched_setattr")


# openat2(2) resolve flags (linux/openat2.h)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dirfd, path, flags, mode=0, resolve=0):
    """openat2(2): open `path` relative to `dirfd` under the `resolve` rules (RESOLVE_IN_ROOT:
    absolute symlinks and ".." stay below dirfd). Returns the fd; OSError(errno, "path: reason")."""
    how = _OpenHow(flags, mode, resolve)
    while True:
        fd = libc.syscall(_SYS["openat2"], dirfd, _b(path), ctypes.byref(how),
                           ctypes.sizeof(how))
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err != 4 and err != 11:  # EINTR; EAGAIN: a rename raced the lookup, try again
            raise OSError(err, f"{path}: {os.strerror(err).lower()}")


# ---------------------------------------------------------------------------------------------
# The new mount API (Linux >= 5.2; mount_setattr >= 5.12) and fstatfs: mounts made onto, and
# from, verified file descriptors instead of path names (shim/masks.py, shim/procfs.py,
# shim/console.py). Names and argument order are the kernel's. Syscall numbers are the same on
# x86_64 and aarch64 (the unified table).

_SYS_MOUNT_API = {"open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
                  "fsmount": 432, "mount_setattr": 442}

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
AT_SYMLINK_NOFOLLOW = 0x100
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_EMPTY_PATH = 0x40
FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOUNT_ATTR_RDONLY = 0x01
MOUNT_ATTR_NOSUID = 0x02
MOUNT_ATTR_NODEV = 0x04
MOUNT_ATTR_NOEXEC = 0x08

PROC_SUPER_MAGIC = 0x9FA0


def _mount_api(name, *args):
    return check(libc.syscall(_SYS_MOUNT_API[name], *args), name)


def open_tree(dirfd, path, flags):
    """open_tree(2): with OPEN_TREE_CLONE a detached copy of the mount at dirfd/path."""
    return _mount_api("open_tree", dirfd, _b(path), ctypes.c_uint(flags))


def move_mount(from_dirfd, from_path, to_dirfd, to_path, flags):
    _mount_api("move_mount", from_dirfd, _b(from_path), to_dirfd, _b(to_path), ctypes.c_uint(flags))


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(dirfd, path, flags, attr_set, attr_clr=0, propagation=0, userns_fd=0):
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    _mount_api("mount_setattr", dirfd, _b(path), ctypes.c_uint(flags), ctypes.byref(attr),
               ctypes.c_size_t(ctypes.sizeof(attr)))


def fsopen(fsname, flags=FSOPEN_CLOEXEC):
    return _mount_api("fsopen", _b(fsname), ctypes.c_uint(flags))


def fsconfig(fd, cmd, key=None, value=None, aux=0):
    _mount_api("fsconfig", fd, ctypes.c_uint(cmd), _b(key), _b(value), aux)


def fsmount(fd, flags=FSMOUNT_CLOEXEC, attr_flags=0):
    return _mount_api("fsmount", fd, ctypes.c_uint(flags), ctypes.c_uint(attr_flags))


def fstatfs_type(fd):
    """f_type of fstatfs(2): the filesystem's magic number (PROC_SUPER_MAGIC, ...)."""
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes; f_type comes first
    check(libc.fstatfs(fd, buf), "fstatfs")
    return ctypes.c_long.from_buffer(buf).value


def mount_id(fd):
    """The id of the mount fd is on (mnt_id in /proc/self/fdinfo/FD)."""
    info = os.open(f"/proc/self/fdinfo/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        text = os.read(info, 4096)  # raw: a text-mode open() costs ~4x more, twice per mount
    finally:
        os.close(info)
    start = text.index(b"mnt_id:") + 7
    return int(text[start:text.index(b"\n", start)])


# The privileged calls of the rootfs steps that os has, here too so that shim/rootfs.py and
# shim/devices.py take every call the unit tests must fake from this one module (the seam:
# tests/unit/fakesys.py).
chroot = os.chroot
mknod = os.mknod
