"""`start`, `kill`, `delete`, `state` and `list`: operations on a recorded container."""

import errno
import os
import select
import signal
import time

from ..errors import InvalidStateError, PyruncError
from ..state import procfs
from ..state.store import EXEC_FIFO
from .signals import parse as parse_signal
from .status import CREATED, PAUSED, RUNNING, STOPPED, describe, status_of

START_TIMEOUT = 10.0


def state(store, container_id):
    return describe(store, store.load(container_id))


def list_all(store):
    out = []
    for cid in store.ids():
        try:
            out.append(describe(store, store.load(cid)))
        except PyruncError:
            continue  # deleted while we listed
    return out


def start(store, container_id):
    with store.lock(container_id):
        record = store.load(container_id)
        status = status_of(store, record)
        if status == STOPPED:
            raise InvalidStateError("cannot start a container that has stopped")
        if status == RUNNING:
            raise InvalidStateError("cannot start an already running container")
        if status != CREATED:
            raise InvalidStateError(f"cannot start a container in the {status} state")
        _release_barrier(store, record)


def _release_barrier(store, record):
    """Open the exec fifo for reading: the init's blocked open returns and it execs."""
    path = store.path(record["id"], EXEC_FIFO)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            if poller.poll(50):
                data = os.read(fd, 1)
                if data == b"0":
                    break
            if not procfs.is_alive(record["pid"], record["start_time"]):
                raise InvalidStateError("cannot start a container that has stopped")
            if time.monotonic() > deadline:
                raise PyruncError("timed out waiting for the container init to start")
    finally:
        os.close(fd)
    os.unlink(path)


def kill(store, container_id, sig="SIGTERM", all_processes=False):
    with store.lock(container_id):
        record = store.load(container_id)
        signum = parse_signal(sig)  # after the lookup, as runc: a missing container wins
        status = status_of(store, record)
        if status == STOPPED:
            raise InvalidStateError("container not running")
        if all_processes:
            _signal_all(record, signum)
        else:
            _signal_init(record, signum)


def _signal_init(record, signum):
    """Signal through a pidfd after re-checking the start time, so a reused pid is never hit."""
    try:
        pidfd = os.pidfd_open(record["pid"])
    except ProcessLookupError:
        raise InvalidStateError("container not running") from None
    try:
        if not procfs.is_alive(record["pid"], record["start_time"]):
            raise InvalidStateError("container not running")
        try:
            signal.pidfd_send_signal(pidfd, signum)
        except ProcessLookupError:
            raise InvalidStateError("container not running") from None
        except OSError as e:
            raise PyruncError(f"unable to signal init: {e.strerror.lower()}") from None
    finally:
        os.close(pidfd)


def _signal_all(record, signum):
    """Every process in the init's pid namespace (the init's cgroup once cgroups are managed)."""
    _signal_init(record, signum)
    for pid in container_pids(record):
        if pid != record["pid"]:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass


def container_pids(record):
    """Host pids sharing the init's pid namespace (only meaningful with a new pid namespace)."""
    try:
        target = os.readlink(f"/proc/{record['pid']}/ns/pid")
    except OSError:
        return []
    own = os.readlink("/proc/self/ns/pid")
    if target == own:
        return [record["pid"]]
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/ns/pid") == target:
                    pids.append(int(name))
            except OSError:
                continue
    return sorted(pids)


def delete(store, container_id, force=False):
    with store.lock(container_id):
        record = store.load(container_id)
        status = status_of(store, record)
        if status in (RUNNING, PAUSED) and not force:
            raise InvalidStateError(
                f"cannot delete container {container_id} that is not stopped: {status}")
        if status != STOPPED or force:
            _kill_and_wait(record)
        _destroy(store, record)


def _kill_and_wait(record, timeout=10.0):
    pids = container_pids(record) if procfs.is_alive(record["pid"], record["start_time"]) else []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while procfs.is_alive(record["pid"], record["start_time"]):
        if time.monotonic() > deadline:
            raise PyruncError(f"container init (pid {record['pid']}) did not die after SIGKILL")
        time.sleep(0.002)


def _destroy(store, record):
    store.remove(record["id"])


def remove_leftover(store, container_id):
    """A directory without state.json (an interrupted create): runc removes it too."""
    try:
        with store.lock(container_id):  # a create in progress holds it until state.json exists
            if not os.path.exists(store.path(container_id, "state.json")):
                store.remove(container_id)
                return True
    except PyruncError:  # ContainerNotFound: nothing there
        pass
    return False


def wait_exit(pid, timeout=None):
    """Block until a non-child process exits (a pidfd turns readable)."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as e:
        if e.errno == errno.ESRCH:
            return
        raise
    try:
        select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
