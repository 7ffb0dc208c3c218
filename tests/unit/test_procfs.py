"""pyrunc.shim.procfs: sysctl key → path, and the verified procfs on this host's kernel."""

import errno
import os

import pytest

from pyrunc.linux import sysctlnames
from pyrunc.shim import procfs


@pytest.mark.parametrize("key, path", [
    ("net.ipv4.ip_forward", "sys/net/ipv4/ip_forward"),
    ("kernel.shm_rmid_forced", "sys/kernel/shm_rmid_forced"),
    # sysctl(8): with dots, a "/" is a dot inside a name; with slashes, dots are literal
    ("net.ipv4.conf.eth0/100.rp_filter", "sys/net/ipv4/conf/eth0.100/rp_filter"),
    ("net/ipv4/conf/eth0.100/rp_filter", "sys/net/ipv4/conf/eth0.100/rp_filter"),
])
def test_sysctl_paths(key, path):
    assert sysctlnames.relpath(key) == path


@pytest.mark.parametrize("key", ["", "kernel..x", ".kernel", "kernel.", "kernel/", "/kernel/x",
                                 "kernel/../../sysrq-trigger", "kernel.//.//.sysrq-trigger",
                                 "kernel./.x", "kernel.domain\x00name", "a/./b"])
def test_bad_sysctl_keys(key):
    assert sysctlnames.relpath(key) is None


def test_verified_procfs_reads_and_refuses_symlinks():
    with procfs.Procfs() as p:
        fd = p.open("sys/kernel/ostype", os.O_RDONLY)
        try:
            assert os.read(fd, 100) == b"Linux\n"
        finally:
            os.close(fd)
        with pytest.raises(OSError) as e:
            p.open("self/status", os.O_RDONLY)  # "self" is a symlink
        assert e.value.errno == errno.ELOOP
        fd = p.open(p.self_path("status"), os.O_RDONLY)
        try:
            assert f"Pid:\t{os.getpid()}\n".encode() in os.read(fd, 4096)
        finally:
            os.close(fd)
