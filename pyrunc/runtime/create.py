"""`create`: validate the bundle, fork the shim, drive the handshake, record the container."""

import os
import signal
import time

from ..errors import ContainerInitError, InvalidStateError
from ..shim import init as shim
from ..shim import sync
from ..spec.load import load_bundle
from ..state import procfs
from ..state.store import EXEC_FIFO
from .status import describe


def create(store, container_id, bundle, *, pid_file=None, console_socket=None,
           no_pivot=False, preserve_fds=0):
    bundle = os.path.abspath(bundle)
    config, rootfs = load_bundle(bundle)
    if (config["process"].get("terminal")) and not console_socket:
        raise InvalidStateError("cannot allocate tty if pyrunc will detach without setting console socket")
    if console_socket:
        raise InvalidStateError("--console-socket is not supported yet")
    store.claim(container_id)
    init_pid = None
    try:
        fifo = store.path(container_id, EXEC_FIFO)
        os.mkfifo(fifo, 0o622)
        plan = shim.Plan(config, rootfs, fifo, preserve_fds, no_pivot)
        init_pid = _spawn(plan, bundle)
        record = {
            "id": container_id, "pid": init_pid, "start_time": procfs.start_time(init_pid),
            "bundle": bundle, "rootfs": rootfs, "created": _now_rfc3339(),
            "owner": "", "annotations": config.get("annotations") or {},
            "config": config,
        }
        store.save(container_id, record)
        if pid_file:
            _write_pid_file(pid_file, init_pid)
    except BaseException:
        if init_pid:
            _kill_quietly(init_pid)
        store.remove(container_id)
        raise
    return describe(store, record)


def _spawn(plan, bundle):
    """Fork stage1, let it run, and return the init's host pid once it is ready."""
    host_end, shim_end = sync.channel()
    previous_cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    os.chdir(bundle)  # relative bind-mount sources are relative to the bundle
    try:
        child = os.fork()
        if child == 0:
            host_end.close()
            shim.stage1(plan, shim_end)  # never returns
        shim_end.close()
    finally:
        os.fchdir(previous_cwd)
        os.close(previous_cwd)
    init_pid = None
    try:
        # cgroups would be joined here, before the shim unshares anything
        host_end.send("proceed")
        try:
            init_pid = host_end.expect("pid")["pid"]
            host_end.expect("ready")
        except sync.SyncError as e:
            reason = str(e)
            if reason == "peer closed the sync channel":
                reason = "container init exited before it was ready"
            raise ContainerInitError(f"unable to start container process: {reason}") from None
        return init_pid
    except BaseException:
        if init_pid:
            _kill_quietly(init_pid)
        raise
    finally:
        os.waitpid(child, 0)
        host_end.close()


def _kill_quietly(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _write_pid_file(path, pid):
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def _now_rfc3339():
    ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return f"{stamp}.{frac:09d}".rstrip("0").rstrip(".") + "Z"
