"""Keep the kernel's cgroup attach lock warm while `create` prepares the container.

Every write to a cgroup.procs file takes the global cgroup_threadgroup_rwsem for writing. On a
kernel whose cgroups were not mounted with `favordynmods` (the default), the first writer after
a quiet spell waits for an RCU grace period (rcu_sync_enter -> synchronize_rcu): 5-20 ms on
the reference machine, the largest single wait of a `create` (runc pays it too). The lock
stays cheap for about one more grace period after its last writer.

So `create` (from the CLI: once the verb is known, `Runtime(warm_cgroups=True)`) starts a
thread that writes this process's own pid into its own cgroup (a migration to where it already
is: nothing changes) and repeats that every 3 ms: the grace period passes while the host loads
and checks the bundle and makes the cgroups, and when the host writes the container's init into
its cgroups the lock is still warm. It must start early: a write waiting for the grace period
holds cgroup_mutex, so the host's own mkdirs and limit writes wait behind it. The thread is
stopped (and has ended) before the host forks. Best effort: a caller that may not write its
own cgroup (rootless) just pays the wait later, as before.

Only `_thread` and `os` here: this starts before the bulk of create's imports.
"""

import os

_INTERVAL = 0.003  # seconds between writes: under one grace period (>= 4 ms on HZ=250)
_MAX_WRITES = 2000  # ~6 s: a warmer nobody stops (an API caller that never creates) ends itself


class AttachLockWarmer:
    """`fd`: the one fd the thread holds (None once stopped, or when there is nothing to warm).
    It sits at the top of the fd table, away from the fds 3.. a caller passes on
    (--preserve-fds, LISTEN_FDS); create stops the warmer before checking those when the
    range reaches it."""

    __slots__ = ("_stop", "_done", "fd")

    def __init__(self):
        self._stop = self._done = self.fd = None
        path = _own_procs()
        if path is None:
            return
        try:
            low = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            import fcntl
            fd = fcntl.fcntl(low, fcntl.F_DUPFD_CLOEXEC, max(64, os.sysconf("SC_OPEN_MAX") - 32))
        except (OSError, ValueError):
            fd = None
        finally:
            os.close(low)  # before anyone looks at fds 3..: never one of ours there
        if fd is None:
            return
        import _thread
        stop, done = _thread.allocate_lock(), _thread.allocate_lock()
        stop.acquire()
        done.acquire()
        try:
            _thread.start_new_thread(_loop, (fd, str(os.getpid()).encode(), stop, done))
        except RuntimeError:
            os.close(fd)
            return
        self._stop, self._done, self.fd = stop, done, fd

    def clear_fds_below(self, limit):
        """Stop now if the thread's fd is below `limit`: fds 3..limit-1 are the caller's to pass
        on (--preserve-fds, LISTEN_FDS) and are checked next; ours must not be taken for one."""
        if self.fd is not None and self.fd < limit:
            self.stop()

    def stop(self):
        """Stop the thread and wait for it to end (before any fork). Idempotent."""
        if self._stop is not None and self._done is not None:
            self._stop.release()
            self._done.acquire()  # the thread has closed fd
            self._stop = self._done = self.fd = None


def _loop(fd, pid, stop, done):
    """The thread: our pid into our cgroup.procs every _INTERVAL until `stop` is released."""
    try:
        for _ in range(_MAX_WRITES):
            os.write(fd, pid)
            if stop.acquire(timeout=_INTERVAL):
                break
    except OSError:
        pass
    finally:
        os.close(fd)
        done.release()


def _own_procs():
    """cgroup.procs of this process's own cgroup in one hierarchy, or None."""
    from ..cgroups.errors import CgroupError
    from ..cgroups.layout import probe
    try:
        layout = probe()
        own = layout.own
    except (CgroupError, OSError):
        return None
    for key, (mountpoint, root) in layout.v1.items():
        path = own.get(key)
        if path is not None:
            return _join(mountpoint, root, path)
    if layout.unified is not None and "" in own:
        mountpoint, root = layout.unified
        return _join(mountpoint, root, own[""])
    return None


def _join(mountpoint, root, path):
    if root != "/" and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    elif root != "/":
        return None  # our cgroup is outside this mount (another cgroup namespace's view)
    return mountpoint + path.rstrip("/") + "/cgroup.procs"
