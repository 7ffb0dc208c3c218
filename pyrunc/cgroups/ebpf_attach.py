"""Putting a device filter program on a cgroup v2 directory (runc's loadAttachCgroupDeviceFilter).

The new program is attached (BPF_F_ALLOW_MULTI) before the ones already on the directory
are detached, so the cgroup is never without a filter: for a moment both run and an access
needs both to allow it. Every program attached to the container's own directory is taken
as a previous version of ours (the directory belongs to the container, as in runc);
programs on ancestors are not touched (the kernel runs those too, and they can only
restrict further).
"""

import errno
import os

from ..linux import bpf
from .ebpf_devices import LICENSE, NAME
from .errors import CgroupError
from .fsio import strerror

FIELD = "linux.resources.devices"


def install(directory, program, *, allow_all=False):
    """Load `program` and make it the directory's only device filter.

    allow_all: the rules restrict nothing, so a kernel or context that refuses bpf(2) (no
    CAP_SYS_ADMIN, a user namespace) loses nothing; runc skips the error in that case too."""
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise CgroupError(f"{FIELD}: opening {directory}: {strerror(err)}", err.errno) from None
    try:
        old = bpf.prog_query(dfd, bpf.BPF_CGROUP_DEVICE)
        fd = bpf.prog_load(bpf.BPF_PROG_TYPE_CGROUP_DEVICE, program, LICENSE, NAME)
        try:
            bpf.prog_attach(dfd, fd, bpf.BPF_CGROUP_DEVICE, bpf.BPF_F_ALLOW_MULTI)
        finally:
            os.close(fd)  # the attachment holds its own reference
        for prog_id in old:
            _detach(dfd, prog_id)
    except OSError as err:
        if allow_all and err.errno in (errno.EPERM, errno.EACCES, errno.EINVAL, errno.ENOSYS):
            return
        raise CgroupError(f"{FIELD}: installing the eBPF device filter on {directory}: "
                          f"{err.strerror}", err.errno) from None
    finally:
        os.close(dfd)


def _detach(dfd, prog_id):
    try:
        fd = bpf.prog_get_fd_by_id(prog_id)
    except OSError as err:
        if err.errno == errno.ENOENT:  # gone meanwhile
            return
        raise
    try:
        bpf.prog_detach(dfd, fd, bpf.BPF_CGROUP_DEVICE)
    except OSError as err:
        if err.errno != errno.ENOENT:  # detached meanwhile (a concurrent update)
            raise
    finally:
        os.close(fd)


def attached(directory):
    """[(id, name)] of the device programs on the directory itself (tests, diagnostics)."""
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        out = []
        for prog_id in bpf.prog_query(dfd, bpf.BPF_CGROUP_DEVICE):
            fd = bpf.prog_get_fd_by_id(prog_id)
            try:
                out.append((prog_id, bpf.prog_info(fd)[2]))
            finally:
                os.close(fd)
        return out
    finally:
        os.close(dfd)
