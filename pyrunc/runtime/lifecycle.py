"""`start`, `kill`, `delete`, `state` and `list`: operations on a recorded container."""

import errno
import os
import stat
import time

from .. import trace
from ..errors import ContainerNotFound, InvalidStateError, NotRunning, PyruncError
from ..state import procfs
from ..state.store import EXEC_FIFO
from .status import CREATED, PAUSED, RUNNING, STOPPED, describe, status_of

START_TIMEOUT = 10.0


def cgroup_manager(record):
    """cgroup_ops.manager, loaded by the verbs that touch a cgroup (not state, list, start)."""
    from .cgroup_ops import manager
    return manager(record)


def container_pids(record):
    from .cgroup_ops import container_pids as pids
    return pids(record)


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


def start(store, container_id, warn=None, main_pid=None):
    """With NOTIFY_SOCKET set, returns once the container sent READY= (forwarded with
    MAINPID=main_pid, default the init's pid) or exited: runtime/notify_socket.py."""
    notify = None
    with store.lock(container_id):
        record = store.load(container_id)
        status = status_of(store, record)
        if status == STOPPED:
            raise InvalidStateError("cannot start a container that has stopped")
        if status == RUNNING:
            raise InvalidStateError("cannot start an already running container")
        if status != CREATED:
            raise InvalidStateError(f"cannot start a container in the {status} state")
        if os.environ.get("NOTIFY_SOCKET"):
            from .notify_socket import Proxy, host_address
            notify = Proxy(store.path(container_id), host_address())  # before the init runs
        try:
            _release_barrier(store, record)
        except BaseException:
            if notify is not None:
                notify.close(unlink=True)
            raise
        trace.debug("start: released the start barrier of %s (init %d)", container_id,
                    record["pid"])
        if _has_hooks(record, "poststart"):
            _wait_exec(record)  # poststart runs after the user's process is executed
            _poststart(record)
    if notify is not None:  # outside the lock: kill/delete must not wait for READY
        notify.forward_ready(record["pid"], record["start_time"], main_pid)


def _wait_exec(record, timeout=START_TIMEOUT):
    """Until the init has execve'd (its comm is no longer ours: startContainer hooks run
    between the barrier and the exec) or has died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{record['pid']}/comm") as f:
                if f.read().strip() != "pyrunc:init":
                    return
        except OSError:
            return
        if not procfs.is_alive(record["pid"], record["start_time"]):
            return
        time.sleep(0.002)


def _poststart(record):
    """The poststart hooks, on the host. The first failure is an error that stops the
    container (runtime-spec: "the runtime MUST ... stop the container"; runc >= 1.2): its
    processes are killed and `start` fails with the hook's error; the record stays, stopped,
    for `delete` (run deletes it unless --keep)."""
    from ..spec.model import build
    from . import hooks
    try:
        hooks.run_list(build(record["config"]).hooks.named("poststart"),
                       _hook_state(record, "running"), cwd=_bundle_dir(record))
    except hooks.HookError:
        trace.debug("start: a poststart hook failed: killing %s", record["id"])
        _kill_and_wait(record)
        raise


def _hook_state(record, status, pid=None):
    from . import hooks
    return hooks.state_json(record["id"], status, record["pid"] if pid is None else pid,
                            record["bundle"], record.get("annotations") or {})


def _bundle_dir(record):
    return record["bundle"] if os.path.isdir(record["bundle"]) else None


def _has_hooks(record, name):
    """A peek at the recorded config.json (the dict): start and delete import the model
    (spec/model.py) only when there is a hook to run."""
    return bool(((record.get("config") or {}).get("hooks") or {}).get(name))


def _run_after_hooks(record, name, status, pid, warn):
    """poststop: on the host; a failure is a warning and the other hooks still run."""
    if not _has_hooks(record, name):
        return
    from ..spec.model import build
    from . import hooks
    hooks.run_warning_only(build(record["config"]).hooks.named(name), _hook_state(record, status, pid),
                           warn or (lambda _m: None), cwd=_bundle_dir(record))


def _release_barrier(store, record):
    """Write one byte into exec.fifo: the init, polling the read-write end the host opened for
    it at create, execs. Then unlink the fifo (the container now reads as running).

    Non-blocking: an fifo nobody has open for reading means the init is gone (ENXIO), as
    runc says. The init holds a writer itself, so dying here (after the open, before the
    write) leaves it waiting, not spinning."""
    path = store.path(record["id"], EXEC_FIFO)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise InvalidStateError("container process is already dead") from None
        if e.errno == errno.ENOENT:  # started meanwhile (we hold the lock: not by `start`)
            raise InvalidStateError("cannot start an already running container") from None
        raise PyruncError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            raise PyruncError(f"{path}: not the fifo pyrunc made")
        os.write(fd, b"0")
    except BlockingIOError:
        raise PyruncError(f"{path}: the fifo is full: the init is not reading it") from None
    finally:
        os.close(fd)
    os.unlink(path)


def kill(store, container_id, sig="SIGTERM", all_processes=False):
    with store.lock(container_id):
        record = store.load(container_id)
        from .signals import parse as parse_signal  # goparse and the name table: kill only
        signum = parse_signal(sig)  # after the lookup, as runc: a missing container wins
        status = status_of(store, record)
        trace.debug("kill %s: signal %d to %s (init %d, %s)", container_id, signum,
                    "every process" if all_processes else "the init", record["pid"], status)
        if status == STOPPED:
            if all_processes and record.get("cgroup"):
                # as runc: --all still signals what is left in the cgroup once the init has
                # exited (a container without a pid namespace leaves its background processes)
                _signal_others(record, signum)
                return
            raise NotRunning()
        if all_processes:
            _signal_all(record, signum)
        else:
            _signal_init(record, signum)


def _signal_init(record, signum):
    """Signal through a pidfd after re-checking the start time, so a reused pid is never hit."""
    from ..linux import sig
    try:
        pidfd = os.pidfd_open(record["pid"])
    except ProcessLookupError:
        raise NotRunning() from None
    try:
        if not procfs.is_alive(record["pid"], record["start_time"]):
            raise NotRunning()
        try:
            sig.pidfd_send_signal(pidfd, signum)
        except ProcessLookupError:
            raise NotRunning() from None
        except OSError as e:
            raise PyruncError(f"unable to signal init: {(e.strerror or str(e)).lower()}") from None
    finally:
        os.close(pidfd)


def _signal_all(record, signum):
    """Every process of the container: its cgroup, or without one its pid namespace."""
    _signal_init(record, signum)
    _signal_others(record, signum)


def _signal_others(record, signum):
    for pid in container_pids(record):
        if pid != record["pid"]:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass


def delete(store, container_id, force=False, warn=None):
    with store.lock(container_id, while_waiting=lambda: _end_orphans(store, container_id)):
        try:
            record = store.load(container_id)
        except ContainerNotFound:
            # A directory without state.json: a create that was killed (or is being undone).
            # As runc, delete removes it with or without --force and says the container does
            # not exist unless forced; here its cgroup and processes go too.
            _remove_unfinished(store, container_id)
            raise
        status = status_of(store, record)
        if status in (RUNNING, PAUSED) and not force:
            raise InvalidStateError(
                f"cannot delete container {container_id} that is not stopped: {status}")
        # Even a stopped container may leave processes in its cgroup (no pid namespace of its
        # own): they are the container's, and the cgroup cannot go while they live.
        trace.debug("delete %s: killing its processes (%s)", container_id, status)
        _kill_and_wait(record)
        _destroy(store, record)
        trace.debug("delete %s: cgroup and state removed", container_id)
        _run_after_hooks(record, "poststop", "stopped", 0, warn)


def _end_orphans(store, container_id):
    """While delete waits for the lock: if the create that holds it was killed, the holder is
    a process it forked (stage1 or the init inherited the lock's fd), which nobody will ever
    end: kill the processes of the recorded cgroup so the lock is released."""
    from ..linux import sig
    creating = store.load_creating(container_id)
    if not creating or procfs.is_alive(creating.get("creator_pid") or 0,
                                       creating.get("creator_start")):
        return
    if creating.get("cgroup"):
        cgroup = cgroup_manager(creating)
        for pid in cgroup.pids():
            try:
                os.kill(pid, sig.SIGKILL)
            except ProcessLookupError:
                pass


def _remove_unfinished(store, container_id):
    """Under the lock: the leftover of a create that did not finish. Its provisional record
    (creating.json, if it got that far) names the cgroup, which holds every process it made."""
    from ..linux import sig
    creating = store.load_creating(container_id)
    if creating and creating.get("cgroup"):
        cgroup = cgroup_manager(creating)
        deadline = time.monotonic() + 10
        while True:
            pids = cgroup.pids()
            if not pids:
                break
            if time.monotonic() > deadline:
                raise PyruncError(f"container {container_id}: processes did not die after SIGKILL")
            for pid in pids:
                try:
                    os.kill(pid, sig.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.002)
        cgroup.destroy()
    store.remove(container_id)


def _kill_and_wait(record, timeout=10.0):
    """SIGKILL the container's processes and wait until the init is gone and the cgroup empty.

    Without a cgroup, a container sharing the host's pid namespace only loses its init."""
    from ..linux import sig
    cgroup = cgroup_manager(record)
    init_alive = procfs.is_alive(record["pid"], record["start_time"])
    pids = container_pids(record) if (init_alive or cgroup) else []
    if init_alive and record["pid"] not in pids:
        pids.append(record["pid"])
    for pid in pids:
        try:
            os.kill(pid, sig.SIGKILL)
        except ProcessLookupError:
            pass
    if cgroup is not None:
        try:
            cgroup.thaw()  # frozen tasks only die once thawed
        except PyruncError:  # CgroupError: the cgroup is already gone, nothing to thaw
            pass
    deadline = time.monotonic() + timeout
    while procfs.is_alive(record["pid"], record["start_time"]) or (cgroup and cgroup.pids()):
        if time.monotonic() > deadline:
            raise PyruncError(f"container {record['id']}: processes did not die after SIGKILL")
        time.sleep(0.002)


def _destroy(store, record):
    if record.get("cgroup"):
        cgroup_manager(record).destroy()
    store.remove(record["id"])


def remove_leftover(store, container_id):
    """A directory without state.json (an interrupted create): `delete` removes it itself now;
    kept for callers that only know the id."""
    try:
        with store.lock(container_id, while_waiting=lambda: _end_orphans(store, container_id)):
            try:
                store.load(container_id)
            except ContainerNotFound:
                _remove_unfinished(store, container_id)
                return True
    except PyruncError:  # ContainerNotFound: nothing there
        pass
    return False
