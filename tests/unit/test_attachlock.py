"""runtime/attachlock.py: the thread that keeps the cgroup attach lock warm during create."""

import _thread
import os
import time

from pyrunc.runtime import attachlock


def _ended(threads):
    """stop() returns once the loop has finished; the thread itself is gone a moment later."""
    deadline = time.monotonic() + 5
    while _thread._count() > threads and time.monotonic() < deadline:
        time.sleep(0.001)
    return _thread._count() == threads


def test_own_cgroup_file_below_the_mount_root():
    assert attachlock._join("/sys/fs/cgroup/pids", "/", "/") == "/sys/fs/cgroup/pids/cgroup.procs"
    assert attachlock._join("/sys/fs/cgroup/pids", "/", "/a/b") == "/sys/fs/cgroup/pids/a/b/cgroup.procs"
    # a mount of a subtree (a container's view): our path is relative to its root
    assert attachlock._join("/sys/fs/cgroup", "/ctr", "/ctr/x") == "/sys/fs/cgroup/x/cgroup.procs"
    assert attachlock._join("/sys/fs/cgroup", "/ctr", "/ctr") == "/sys/fs/cgroup/cgroup.procs"
    # our cgroup is not below that mount (nor a sibling sharing a prefix): nothing to write
    assert attachlock._join("/sys/fs/cgroup", "/ctr", "/other") is None
    assert attachlock._join("/sys/fs/cgroup", "/ctr", "/ctr2/x") is None


def test_writes_our_pid_until_stopped_and_the_thread_ends(tmp_path, monkeypatch):
    target = tmp_path / "cgroup.procs"
    target.write_bytes(b"")
    monkeypatch.setattr(attachlock, "_own_procs", lambda: str(target))
    threads = _thread._count()
    warmer = attachlock.AttachLockWarmer()
    time.sleep(0.02)
    warmer.stop()
    assert _ended(threads)  # no thread left for a fork to lose
    pid = str(os.getpid()).encode()
    written = target.read_bytes()
    assert written.count(pid) >= 2 and written.replace(pid, b"") == b""  # repeated, nothing else
    size = len(written)
    time.sleep(0.01)
    assert len(target.read_bytes()) == size  # stopped means stopped
    warmer.stop()  # idempotent


def test_nothing_to_warm_is_no_thread(monkeypatch, tmp_path):
    threads = _thread._count()
    monkeypatch.setattr(attachlock, "_own_procs", lambda: None)
    attachlock.AttachLockWarmer().stop()
    monkeypatch.setattr(attachlock, "_own_procs", lambda: str(tmp_path / "missing" / "cgroup.procs"))
    attachlock.AttachLockWarmer().stop()  # not writable (rootless): best effort, no error
    assert _thread._count() == threads  # none was started


def test_the_runtime_hands_its_warmer_to_create_once(tmp_path, monkeypatch):
    from pyrunc.api import Runtime
    target = tmp_path / "cgroup.procs"
    target.write_bytes(b"")
    monkeypatch.setattr(attachlock, "_own_procs", lambda: str(target))
    assert Runtime(str(tmp_path / "root"), rootless=False).take_warmer() is None
    rt = Runtime(str(tmp_path / "root"), rootless=False, warm_cgroups=True)
    warmer = rt.take_warmer()
    assert isinstance(warmer, attachlock.AttachLockWarmer)
    assert rt.take_warmer() is None  # create stops the one it took; nobody else gets it
    warmer.stop()


def test_a_warmer_nobody_stops_ends_by_itself(tmp_path, monkeypatch):
    target = tmp_path / "cgroup.procs"
    target.write_bytes(b"")
    monkeypatch.setattr(attachlock, "_own_procs", lambda: str(target))
    monkeypatch.setattr(attachlock, "_MAX_WRITES", 3)
    threads = _thread._count()
    warmer = attachlock.AttachLockWarmer()
    three = str(os.getpid()).encode() * 3
    deadline = time.monotonic() + 5
    while (target.read_bytes() != three or _thread._count() > threads) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert target.read_bytes() == three  # three writes, then it stopped writing
    assert _thread._count() == threads  # and ended
    warmer.stop()  # after the thread ended: returns at once


def test_its_fd_sits_above_the_fds_a_caller_passes_on(tmp_path, monkeypatch):
    """--preserve-fds/LISTEN_FDS start at 3: the check that they are the caller's must never
    see ours (tests/integration/test_preserve_fds.py runs it through the CLI)."""
    target = tmp_path / "cgroup.procs"
    target.write_bytes(b"")
    monkeypatch.setattr(attachlock, "_own_procs", lambda: str(target))
    lowest = os.open("/dev/null", os.O_RDONLY)
    os.close(lowest)
    warmer = attachlock.AttachLockWarmer()
    fd = warmer.fd
    assert fd is not None and fd >= 64 and fd > lowest
    probe = os.open("/dev/null", os.O_RDONLY)  # the lowest free fd is free again
    os.close(probe)
    assert probe == lowest
    warmer.stop()
    assert warmer.fd is None
    try:
        os.fstat(fd)
    except OSError:
        pass
    else:
        raise AssertionError(f"fd {fd} still open after stop()")


def test_clear_fds_below_stops_only_a_warmer_in_the_callers_range(tmp_path, monkeypatch):
    target = tmp_path / "cgroup.procs"
    target.write_bytes(b"")
    monkeypatch.setattr(attachlock, "_own_procs", lambda: str(target))
    warmer = attachlock.AttachLockWarmer()
    fd = warmer.fd
    assert fd is not None
    warmer.clear_fds_below(fd)  # the caller's range ends below our fd: keeps running
    assert warmer.fd == fd
    warmer.clear_fds_below(fd + 1)  # the range reaches it: stopped, fd closed
    assert warmer.fd is None
    warmer.stop()


def test_create_stops_the_warmer_whatever_fails(tmp_path, monkeypatch):
    """A bad id fails before anything is made: the warmer the CLI started must not outlive it."""
    import pytest

    from pyrunc.errors import InvalidIDError
    from pyrunc.runtime import create
    from pyrunc.state.store import Store

    target = tmp_path / "cgroup.procs"
    target.write_bytes(b"")
    monkeypatch.setattr(attachlock, "_own_procs", lambda: str(target))
    warmer = attachlock.AttachLockWarmer()
    assert warmer.fd is not None
    with pytest.raises(InvalidIDError):
        create.create(Store(str(tmp_path / "root")), "../bad", str(tmp_path), warmer=warmer)
    assert warmer.fd is None
