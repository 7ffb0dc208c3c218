"""The host's side of a forked shim, shared by `create`, `run` and `exec`.

One fork (`spawn`), one handshake loop (`Conversation`, runc's parseSync), one signal
forwarder, one waiter, and the fd rule: the forked stage keeps nothing of the host but what it
needs (see `keep_only`). The container side is shim/init.py (create) and shim/exec_init.py
(exec); the messages are shim/sync.py's.
"""

import fcntl
import gc
import os

from .. import trace
from ..errors import ContainerInitError, InvalidStateError, ShimError, SyncError, from_wire
from ..linux import sig
from ..linux import syscalls as sc
from ..shim import sync

# Signals `run` and `exec` relay to the container's process instead of acting on them.
FORWARDED = (sig.SIGINT, sig.SIGTERM, sig.SIGHUP, sig.SIGQUIT, sig.SIGUSR1, sig.SIGUSR2,
             sig.SIGWINCH, sig.SIGCONT, sig.SIGALRM)


# runc's words before whatever failed while create/exec talked to the process
INIT_FAILED = "unable to start container process"


# ---------------------------------------------------------------- fork and handshake

class Answers:
    """What the host answers the shim with (create's and exec's subclass it). A message the
    verb does not expect is a protocol error."""

    def warning(self, text):
        pass

    def userns(self, stage1_pid):
        raise SyncError("unexpected message 'userns' from the shim")

    def seccomp_listener(self, pid, fd):
        raise SyncError("unexpected message 'seccomp-listener' from the shim")

    def create_runtime(self, pid):
        raise SyncError("unexpected message 'create-runtime' from the shim")


class Conversation:
    """The host's loop: receive, dispatch on the message type, answer, until both stage1's PID
    and the process's READY have come (from two processes, in either order). A message whose
    answer needs the process's pid (sync.Message.needs_pid) waits for PID."""

    def __init__(self, end, answers, stage1_pid):
        self.end = end
        self.answers = answers
        self.stage1_pid = stage1_pid
        self.pid = None  # the process stage1 forked, once PID has come

    def run(self):
        ready = False
        deferred: list[tuple] = []
        while not (ready and self.pid):
            msg = self.end.recv()
            if not isinstance(msg, dict):  # a JSON line, but not one of our objects
                raise sync.SyncError(f"unexpected message {msg!r} from the shim")
            kind = sync.BY_NAME.get(msg.get("type", ""))
            if kind is sync.ERROR:
                raise from_wire(msg)  # the type the stage raised, with its text and errno
            if kind is sync.PID:
                self.pid = msg.get("pid")
                if type(self.pid) is not int or self.pid <= 0:
                    raise sync.SyncError(f"unexpected message {msg!r} from the shim: no pid")
                for waiting in deferred:
                    self._answer(*waiting)
                deferred = []
            elif kind is sync.READY:
                ready = True
            elif kind is sync.WARNING:
                self.answers.warning(msg.get("msg", ""))
            elif kind is sync.DEBUG:
                trace.debug("%s", msg.get("msg", ""))
            elif kind is not None and kind.answered:
                if kind.needs_pid and self.pid is None:
                    deferred.append((kind, msg))
                else:
                    self._answer(kind, msg)
            else:
                raise SyncError(f"unexpected message {msg.get('type')!r} from the shim")
        return self.pid

    def _answer(self, kind, msg):
        if kind is sync.USERNS:
            self.answers.userns(self.stage1_pid)
            self.end.send(sync.PROCEED)
        elif kind is sync.SECCOMP_LISTENER:
            self.answers.seccomp_listener(self.pid, msg["fd"])
            self.end.send(sync.PROCEED)
        elif kind is sync.CREATE_RUNTIME:
            self.answers.create_runtime(self.pid)
            self.end.send(sync.PROCEED, pid=self.pid)
        else:
            raise SyncError(f"unexpected message {kind.name!r} from the shim")


def spawn(stage1, plan, answers, *, join_cgroup, preserve_fds, died, reap=False):
    """Fork stage1(plan, shim_end) (it never returns), place it in its cgroups
    (join_cgroup(pid)), then converse until the process stage1 forks is ready; returns that
    process's host pid. `died` is the reason given when the shim ends without a word. On any
    failure both stages are SIGKILLed and stage1 reaped (the process too with reap: we are its
    subreaper).

    plan.fds() are the fds the stage needs (plan.renumber(moved) is told where they went);
    with the sync channel, stdio and fds 3..3+preserve_fds-1 they are all it keeps."""
    host_end, shim_end = sync.channel()
    try:
        child = os.fork()
    except BaseException:
        host_end.close()
        shim_end.close()
        raise
    if child == 0:
        _enter_stage(stage1, plan, host_end, shim_end, preserve_fds)  # never returns
    shim_end.close()
    talk = Conversation(host_end, answers, child)
    try:
        # stage1 joins its cgroups before it unshares anything (the cgroup namespace's root
        # is then the container's cgroup) and before any of the user's code runs
        join_cgroup(child)
        host_end.send(sync.PROCEED)
        try:
            pid = talk.run()
        except ShimError as e:  # the stage's error (or a hook's, on our side): same type
            raise e.in_context(INIT_FAILED) from None
        except sync.PeerClosed:
            raise ContainerInitError(f"{INIT_FAILED}: {died}") from None
        except SyncError as e:
            raise ContainerInitError(f"{INIT_FAILED}: {e}") from None
    except BaseException:
        # stage1 may be blocked waiting for our answer: it must die too, or waitpid hangs
        for p in (talk.pid, child):
            if p:
                kill_quietly(p)
        _reap(child)
        if reap and talk.pid:
            _reap(talk.pid)
        raise
    finally:
        host_end.close()
    _reap(child)
    return pid


def _reap(pid):
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _enter_stage(stage1, plan, host_end, shim_end, preserve_fds):
    """In the forked child: from here on nothing of the host is reachable but what we keep."""
    try:
        # The parent's objects stay in memory; a collection here could close "their" fds,
        # which keep_only has closed or renumbered: never collect them in this process.
        gc.freeze()
        for signum in FORWARDED:  # not the host's forwarder (nor KeyboardInterrupt)
            sig.signal(signum, sig.SIG_DFL)
        host_end.close()
        moved = keep_only(shim_end.fds() + plan.fds(), first=3 + max(0, preserve_fds))
        shim_end.renumber(moved)
        plan.renumber(moved)
        if trace.on:
            # --debug: the stage's lines (its hooks') go to the host over the channel, never to
            # the log file by its path (after pivot_root that path is the container's)
            trace.enable(lambda message: sync.debug(shim_end, "%s", message))
    except BaseException:  # noqa: BLE001 - the host sees EOF
        os._exit(1)
    stage1(plan, shim_end)
    os._exit(1)


def keep_only(keep, first):
    """Close every fd from `first` up except those in `keep`, which move to first, first+1, ...
    (close-on-exec); returns {old: new}. Below `first` are stdio and the --preserve-fds /
    LISTEN_FDS fds, the caller's to give; a keep fd found there (the caller started us without
    stdio) is closed at its old number.

    This is what keeps the host out of the container: the store's locked directory fd, the
    caller's cwd or any fd it leaked without close-on-exec would otherwise reach the init,
    where /proc/self/fd/N or /proc/1/fd/N/.. walks back to the host (runc CVE-2024-21626)."""
    keep = list(dict.fromkeys(fd for fd in keep if fd is not None))
    high = max([first + len(keep)] + [fd + 1 for fd in keep])
    parked = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, high) for fd in keep]
    moved = {}
    for i, (old, tmp) in enumerate(zip(keep, parked, strict=True)):
        os.dup2(tmp, first + i, inheritable=False)
        moved[old] = first + i
    sc.close_range(first + len(keep))
    for old in keep:
        if old < first:
            os.close(old)
    return moved


# ---------------------------------------------------------------- helpers of the verbs

def connect_console(path):
    """Connect to --console-socket now: after pivot_root the init cannot reach a host path."""
    import socket

    from ..shim import console  # noqa: F401 - the shim uses it after pivot_root, where imports fail
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise InvalidStateError(f"cannot connect to --console-socket {path}: "
                                f"{(e.strerror or str(e)).lower()}") from None
    return sock.detach()  # a plain fd (close-on-exec) the shim keeps through the fork


def kill_quietly(pid):
    try:
        os.kill(pid, sig.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for(pid):
    """The exit status of our child (or adopted) `pid`: 128+N if killed by N, 255 if it is not
    ours. Only that pid: waitpid(-1) would also reap the caller's other children (an API user's
    subprocesses), whose exit status would then be lost."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return 255
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class Subreaper:
    """PR_SET_CHILD_SUBREAPER until restore(): stage1 exits once it has forked the process,
    which is then re-parented to us and can be waited for. restore() puts the previous setting
    back (the API may run inside a long-lived program)."""

    def __init__(self):
        self.previous = sc.is_child_subreaper()
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)

    def restore(self):
        if self.previous is not None:
            sc.prctl(sc.PR_SET_CHILD_SUBREAPER, self.previous)
            self.previous = None


class Forwarder:
    """Relays FORWARDED signals to the container's process; those that come before its pid
    is known are delivered once it is (target())."""

    def __init__(self, signals=FORWARDED):
        self.pid = None
        self.pending = []
        self.previous = {}
        for signum in signals:
            self.previous[signum] = sig.signal(signum, self._handle)

    def _handle(self, signum, _frame):
        if self.pid is None:
            self.pending.append(signum)
            return
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def target(self, pid):
        self.pid = pid
        for signum in self.pending:
            self._handle(signum, None)
        self.pending = []

    def restore(self):
        for signum, handler in self.previous.items():
            sig.signal(signum, handler)
        self.previous = {}
