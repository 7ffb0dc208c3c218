"""The container side of `exec`: two forked stages, like the init's (shim/init.py).

stage1 (child of `pyrunc exec`, already in the container's cgroups): rlimits and
oom_score_adj (before the user namespace, where raising a hard limit is refused), not
dumpable, setns into every namespace of the container's init that we do not share (user
first: it owns the others), chroot to the init's root when the mount namespace is shared,
then forks and exits. Joining a pid (or time) namespace only applies to children, hence
the fork: stage2 is in the container's pid namespace.
stage2: setsid, then the init's steps 3-8 (shim/process.prepare: env, cwd, identity,
capabilities, seccomp, executable lookup), "ready", execve.
Every failure goes back to the host as an "error" message; neither stage ever returns
into the host's code (os._exit).
"""

import os

from .. import trace
from ..linux import syscalls as sc
from . import process as proc
from . import security, sync
from .init import Step, become_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..spec.model import Process


class Plan:
    """What the host decided and opened, handed to the forked stages through memory."""

    def __init__(self, process: "Process", namespaces, root_fd, capabilities, last_cap, seccomp,
                 personality, preserve_fds):
        self.process = process            # spec.model.Process: the process to run
        self.namespaces = namespaces      # [(proc ns name, CLONE_NEW* flag, fd)], in join order
        self.root_fd = root_fd            # O_PATH fd of the init's root when its mount ns is ours
        self.capabilities = capabilities  # {set: frozenset(numbers)} or None
        self.last_cap = last_cap
        self.seccomp = seccomp            # security.seccomp.Program (the container's) or None
        self.personality = personality    # spec.model.Personality (the container's) or None
        self.preserve_fds = preserve_fds
        self.console_fd = None            # connected --console-socket, when process.terminal

    def fds(self):
        """The host's fds the stages keep (runtime/child.py closes every other one): none is a
        host directory; root_fd is the container's root, closed before stage2."""
        fds = [fd for _, _, fd in self.namespaces]
        return fds + [fd for fd in (self.root_fd, self.console_fd) if fd is not None]

    def renumber(self, moved):
        self.namespaces = [(name, flag, moved.get(fd, fd)) for name, flag, fd in self.namespaces]
        if self.root_fd is not None:
            self.root_fd = moved.get(self.root_fd, self.root_fd)
        if self.console_fd is not None:
            self.console_fd = moved.get(self.console_fd, self.console_fd)


def stage1(plan: Plan, sock: sync.End):
    """Runs in the host's child, which kept only the fds in plan.fds() (runtime/child.py).
    Never returns."""
    code = 1
    sock.side = "exec stage1"
    step = Step("joining the container's cgroups")
    try:
        sock.expect(sync.PROCEED)  # the host has placed us in the container's cgroups
        t = trace.clock()  # --debug: the steps' times (no clock read without it)
        step.now = "setting up the process"
        sc.prctl(sc.PR_SET_DUMPABLE, 0)  # no ptrace from the container while we hold host fds
        proc.apply_rlimits(plan.process.rlimits)
        proc.apply_oom_score_adj(plan.process.oom_score_adj)
        step.now = "joining the container's namespaces"
        for name, flag, fd in plan.namespaces:
            try:
                sc.setns(fd, flag)
            except OSError as e:
                assert e.errno is not None
                raise proc.ProcessError(f"failed to join the container's {name} namespace: "
                                        f"{os.strerror(e.errno).lower()}") from None
            if name == "user":
                become_root()
            os.close(fd)
        # setns(mnt) made the namespace's root our root and cwd (the container's, after its
        # pivot_root); a container sharing our mount namespace is only chrooted.
        if plan.root_fd is not None:
            os.fchdir(plan.root_fd)
            os.chroot(".")
            os.close(plan.root_fd)
        step.now = "forking the process"
        pid = os.fork()
        if pid == 0:
            _run_stage2(plan, sock)
        trace.lap(t, "exec stage1: joined %d namespaces, forked the process (pid %d)",
                  len(plan.namespaces), pid)
        sock.send(sync.PID, pid=pid)
        code = 0
    except BaseException as e:  # noqa: BLE001 - everything must reach the host
        sync.report(sock, e, step.now)
    os._exit(code)


def _run_stage2(plan: Plan, sock: sync.End):
    sock.side = "exec"
    step = Step("starting the process")
    try:
        _stage2(plan, sock, step)
    except BaseException as e:  # noqa: BLE001
        sync.report(sock, e, step.now)
    os._exit(1)


def _stage2(plan: Plan, sock: sync.End, step):
    t = trace.clock()
    os.setsid()  # as runc's exec'd processes: a session of its own
    sc.set_process_name("pyrunc:exec")
    if plan.console_fd is not None:  # the pty then becomes its controlling terminal
        step.now = "setting up the console"
        from . import console  # imported by the host before the fork (child.connect_console)
        console.setup(plan.console_fd, plan.process.console_size, bind_console=False)
    step.now = "preparing the process"
    process = plan.process  # this process's copy (forked): the host's is not changed
    process.rlimits = []  # applied in stage1
    security_steps = security.steps(process, plan.personality, plan.capabilities, plan.last_cap,
                                    plan.seccomp, sock)
    prepared = proc.prepare(process, plan.preserve_fds, security_steps)
    trace.lap(t, "exec: process %s prepared; executing it", prepared.path)
    sock.send(sync.READY)
    sock.close()
    proc.execute_or_exit(prepared)
