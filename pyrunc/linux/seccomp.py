"""Loading a compiled seccomp program, and fetching another process's fd (for NOTIFY)."""

import ctypes
import errno
import os

from .syscalls import check, libc

SECCOMP_SET_MODE_FILTER = 1
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}
FLAG_NEW_LISTENER = 8
_NR = {"x86_64": {"seccomp": 317, "pidfd_getfd": 438},
       "aarch64": {"seccomp": 277, "pidfd_getfd": 438}}[os.uname().machine]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load_filter(bpf, flags):
    """Install `bpf` (raw struct sock_filter array) on the calling thread.

    Returns the listener fd when flags ask for one (SECCOMP_FILTER_FLAG_NEW_LISTENER), else None.
    """
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    fd = check(libc.syscall(_NR["seccomp"], SECCOMP_SET_MODE_FILTER, ctypes.c_uint(flags),
                              ctypes.byref(prog)), "seccomp")
    return fd if flags & FLAG_NEW_LISTENER else None


def flag_supported(flag):
    """Does the kernel know this SECCOMP_FILTER_FLAG_*? (libseccomp's probe: with a NULL program
    a known flag fails with EFAULT, an unknown one with EINVAL; nothing is installed.)"""
    ret = libc.syscall(_NR["seccomp"], SECCOMP_SET_MODE_FILTER, ctypes.c_uint(flag), None)
    return ret == -1 and ctypes.get_errno() == errno.EFAULT


def pidfd_getfd(pidfd, target_fd):
    return check(libc.syscall(_NR["pidfd_getfd"], pidfd, target_fd, 0), "pidfd_getfd")


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


def libseccomp_version():
    """The version of the libseccomp pyseccomp will load, as "major.minor.micro" (by soname: no
    find_library, no ldconfig), or None without one."""
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        return None
    lib.seccomp_version.restype = ctypes.POINTER(_Version)
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"
