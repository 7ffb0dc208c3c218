"""Bring a network interface up with two ioctls (SIOCGIFFLAGS/SIOCSIFFLAGS): no netlink
library on the hot path, and no `socket` module import (17 ms) in the shim."""

import ctypes
import fcntl
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)

AF_INET = 2
SOCK_DGRAM = 2
SOCK_CLOEXEC = 0o2000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ = "16sh22x"  # struct ifreq: the name, then ifr_flags in a 24-byte union


def link_up(name="lo"):
    """Set IFF_UP on `name` in our network namespace (needs CAP_NET_ADMIN over it)."""
    fd = _libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    try:
        req = struct.pack(_IFREQ, name.encode(), 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(fd, SIOCGIFFLAGS, req))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(fd, SIOCSIFFLAGS, struct.pack(_IFREQ, name.encode(), flags | IFF_UP))
    finally:
        os.close(fd)
