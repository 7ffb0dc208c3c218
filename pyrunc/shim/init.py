"""The two forked stages between `pyrunc create` and the user's execve.

stage1 (child of the host process): joins namespaces given by path, unshares the
new ones, forks the init and exits; the init is then PID 1 of a new pid namespace.
stage2 (the container init): builds the rootfs, prepares the process, reports
"ready", blocks on the exec fifo until `pyrunc start`, and execs.
Every failure goes back to the host as an "error" message; neither stage ever
returns into the host's code (os._exit).
"""

import os
import select

from .. import trace
from ..linux import sig, sysctlnames
from ..linux import syscalls as sc
from . import masks, procfs, security, sync
from . import process as proc
from . import rootfs as rfs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..spec.model import Config, Namespace, Process, TimeOffset

WATCHDOG_INTERVAL_MS = 1000


class Plan:
    """What the host decided, handed to the forked stages through memory."""

    def __init__(self, spec: "Config", bundle, rootfs, barrier_fd, preserve_fds, no_pivot,
                 capabilities=None, last_cap=0, seccomp=None, hooks=None, listen_fds=0):
        self.hooks = hooks  # runtime.hooks.InitHooks or None: config.json hooks
        self.spec = spec  # spec.model.Config: the validated config.json
        self.bundle = bundle  # stage1's cwd: relative bind-mount sources are relative to it
        self.rootfs = rootfs
        self.barrier_fd = barrier_fd  # exec.fifo, opened read-write by the host (the barrier)
        self.console_fd = None  # connected --console-socket, when process.terminal
        self.preserve_fds = preserve_fds  # fds after stdio the process keeps: listen_fds first
        self.listen_fds = listen_fds  # the runtime's socket activation (shim/process.environment)
        self.no_pivot = no_pivot
        self.capabilities = capabilities  # {set: frozenset(numbers)} or None: leave caps alone
        self.last_cap = last_cap
        self.seccomp = seccomp            # security.seccomp.Program or None
        # mounts index -> detached clone of a bind source, opened by stage1 on the host
        # (rootfs.open_bind_sources; None: no open_tree, the init opens them). Made after
        # runtime/child.py keep_only, so not in fds(); the init closes them in rootfs.prepare.
        self.bind_sources = None

    def fds(self):
        """The host's fds the stages keep (runtime/child.py closes every other one)."""
        return [fd for fd in (self.barrier_fd, self.console_fd) if fd is not None]

    def renumber(self, moved):
        self.barrier_fd = moved.get(self.barrier_fd, self.barrier_fd)
        if self.console_fd is not None:
            self.console_fd = moved.get(self.console_fd, self.console_fd)


class Step:
    """What a stage is doing, for the error message of a failure nobody worded (sync.report)."""

    def __init__(self, now):
        self.now = now


def stage1(plan: Plan, sock: sync.End):
    """Runs in the host's child, which kept only the fds in plan.fds() (runtime/child.py).
    Never returns."""
    code = 1
    step = Step("joining the container's cgroups")
    try:
        if plan.spec.new_namespace("network"):
            # while the host writes us into our cgroups: the module that brings `lo` up
            from ..linux import netif  # noqa: F401
        sock.expect(sync.PROCEED)  # the host has placed us in our cgroups
        t = trace.clock()  # --debug: the steps' times (no clock read without it)
        # By path, in this process only: the host keeps its own cwd and no fd of the bundle
        # reaches the container. pivot_root (or the chroot) makes the new root our cwd.
        step.now = "chdir to the bundle"
        os.chdir(plan.bundle)
        step.now = "setting up namespaces"
        # as runc: before the user namespace, where /proc/self/oom_score_adj is not ours to write
        proc.apply_oom_score_adj(plan.spec.process.oom_score_adj)
        linux = plan.spec.linux
        namespaces = linux.namespaces
        # Not for a non-root caller (runc: no mount sources when rootless): cloning a mount of
        # the host's namespace needs CAP_SYS_ADMIN there; its container root is the caller, so
        # the init, in the caller's user namespace, reaches the same sources by path.
        if os.geteuid() == 0 and plan.spec.new_namespace("mount"):
            # as runc >= 1.2: by the host's root, in the host's namespaces, before any of ours.
            # Not for a mount namespace joined by path: its sources are its own paths, which
            # the init opens there (rootfs.prepare without clones), as before.
            step.now = "opening the bind mount sources"
            plan.bind_sources = rfs.open_bind_sources(plan.spec)
            step.now = "setting up namespaces"
        cgroup_paths = rfs.host_cgroup_paths()
        # The user namespace first: every namespace made or joined after it belongs to it.
        user = [ns for ns in namespaces if ns.type == "user"]
        _join(user)
        if user and not user[0].path:
            sc.unshare(sc.CLONE_NEWUSER)
            sock.send(sync.USERNS)  # the host writes our uid_map/gid_map ...
            sock.expect(sync.PROCEED)  # ... and lets us go on
        if user:
            become_root()
        _join([ns for ns in namespaces if ns.type != "user"])
        flags = 0
        for ns in namespaces:
            if not ns.path and ns.type != "user":
                flags |= sc.NAMESPACES[ns.type][0]
        if flags:
            sc.unshare(flags)
        # (the phrases runc's debug.bats looks for are kept: "nsexec container setup", ...)
        sync.debug(sock, "stage1: nsexec container setup: namespaces joined and made "
                         "(unshare flags 0x%x)", flags)
        if flags & sc.CLONE_NEWNET:
            _loopback_up()
        if flags & sc.CLONE_NEWTIME:
            _time_offsets(linux.time_offsets)
        t = trace.lap(t, "stage1: namespaces set up")
        step.now = "forking the container init"
        pid = os.fork()
        if pid == 0:
            _run_stage2(plan, sock, cgroup_paths)
        trace.lap(t, "stage1: forked the init (pid %d)", pid)
        sock.send(sync.PID, pid=pid)
        code = 0
    except BaseException as e:  # noqa: BLE001 - everything must reach the host
        sync.report(sock, e, step.now)
    os._exit(code)


def become_root():
    """Act as uid/gid 0 of the user namespace we created or joined, when 0 is mapped there;
    otherwise our host ids are unmapped (the overflow id) and mounts would fail."""
    for setter in (os.setresgid, os.setresuid):
        try:
            setter(0, 0, 0)
        except OSError:
            pass  # 0 is not mapped: stay as we are


def _loopback_up():
    """A new network namespace's `lo` starts down; runc brings it up (its "loopback"
    network, set for every network namespace it creates, not for one joined by path)."""
    from ..linux import netif
    try:
        netif.link_up("lo")
    except OSError as e:
        assert e.errno is not None
        raise proc.ProcessError(f"unable to bring up the loopback interface of the new network "
                                f"namespace: {os.strerror(e.errno).lower()}") from None


def _time_offsets(offsets: "dict[str, TimeOffset]"):
    """Must be written before any process enters the new time namespace (our fork does)."""
    lines = "".join(f"{clock} {o.secs} {o.nanosecs}\n"
                    for clock, o in offsets.items())
    if lines:
        try:
            with procfs.Procfs() as p:
                procfs.write_file(p.self_path("timens_offsets"), lines, p)
        except OSError as e:
            raise proc.ProcessError(f"failed to set linux.timeOffsets: {(e.strerror or str(e)).lower()}") from None


def _join(namespaces: "list[Namespace]"):
    for ns in namespaces:
        path = ns.path
        if not path:
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise proc.ProcessError(f"failed to open {path} for the {ns.type} namespace: "
                                    f"{(e.strerror or str(e)).lower()}") from None
        try:
            sc.setns(fd, sc.NAMESPACES[ns.type][0])
        except OSError as e:
            raise proc.ProcessError(f"failed to join the {ns.type} namespace {path}: "
                                    f"{(e.strerror or str(e)).lower()}") from None
        finally:
            os.close(fd)


def _run_stage2(plan: Plan, sock: sync.End, cgroup_paths):
    sock.side = "init"
    step = Step("starting the container init")
    try:
        _stage2(plan, sock, cgroup_paths, step)
    except BaseException as e:  # noqa: BLE001
        sync.report(sock, e, step.now)
    os._exit(1)


def _stage2(plan: Plan, sock: sync.End, cgroup_paths, step):
    spec = plan.spec
    # A pid-namespace init only gets the signals it handles; die on the usual ones until exec.
    for signum in (sig.SIGTERM, sig.SIGINT, sig.SIGHUP, sig.SIGQUIT, sig.SIGUSR1, sig.SIGUSR2):
        sig.signal(signum, _die)
    os.setsid()
    sc.prctl(sc.PR_SET_DUMPABLE, 0)  # no ptrace or /proc/PID/mem from inside before exec
    sc.set_process_name("pyrunc:init")  # what ps shows for a created container
    sync.debug(sock, "init: child process in init(): the container's pid 1")
    t = trace.clock()

    namespaces = {ns.type for ns in spec.linux.namespaces}
    host_pid = None  # our pid as the host sees it: the hooks' state needs it
    if "mount" in namespaces:
        step.now = "preparing the rootfs"
        late_ro = rfs.prepare(spec, plan.rootfs, cgroup_paths, plan.bind_sources)
        t = trace.lap(t, "init: rootfs prepared (mounts done)")
    if plan.hooks:
        # mounts done, not pivoted: the host runs prestart + createRuntime, then we run
        # createContainer in our namespaces with the host's paths still visible
        step.now = "running the createContainer hooks"
        sock.send(sync.CREATE_RUNTIME)
        host_pid = sock.expect(sync.PROCEED)["pid"]
        _exit_if_host_gone(sock)
        # as runc: in the container's root (not pivoted yet), with the process's environment
        plan.hooks.run(plan.hooks.create_container, "creating", host_pid, cwd=plan.rootfs,
                       env=_raw_env(spec.process), during_init=True)
        sig.setitimer(sig.ITIMER_REAL, 0)
        t = trace.lap(t, "init: prestart, createRuntime and createContainer hooks run")
    step.now = "entering the rootfs"
    null_fd = None
    if "mount" in namespaces:
        if spec.linux.masked_paths:
            null_fd = masks.host_null()  # the host's /dev/null: gone after the pivot
        rfs.pivot(plan.rootfs, plan.no_pivot)
    else:
        os.chroot(plan.rootfs)
        os.chdir("/")
    t = trace.lap(t, "init: entered the rootfs")
    if plan.console_fd is not None:
        # as runc: after every mount and the pivot, before the root and the tmpfs mounts
        # asked "ro" are made read-only (/dev/console may have to be created on them)
        step.now = "setting up the console"
        from . import console  # already in sys.modules: the host imported it before the fork
        console.setup(plan.console_fd, spec.process.console_size)
    step.now = "setting the hostname"
    if spec.hostname is not None:
        sc.sethostname(spec.hostname)
    if spec.domainname is not None:
        sc.setdomainname(spec.domainname)
    step.now = "writing linux.sysctl"
    _sysctls(spec.linux.sysctl)
    if "mount" in namespaces:
        step.now = "masking paths"
        rfs.finish(spec, null_fd, late_ro=late_ro)
    if "mount" in namespaces:
        step.now = "applying linux.rootfsPropagation"
        rfs.root_propagation(spec.linux.rootfs_propagation)
    t = trace.lap(t, "init: rootfs ready (console, hostname, sysctl, masks, propagation)")

    step.now = "preparing the process"
    process = spec.process
    security_steps = security.steps(process, spec.linux.personality,
                                    plan.capabilities, plan.last_cap, plan.seccomp, sock)
    prepared = proc.prepare(process, plan.preserve_fds, security_steps, plan.listen_fds)
    trace.lap(t, "init: process %s prepared; waiting for start", prepared.path)
    sync.debug(sock, "init: closing the pipe to signal completion")
    sock.send(sync.READY)
    sock.close()
    # What waits from here until `start` is the memory the waiting container costs (its PSS):
    # the C heap's free pages go back (~0.2-0.8 MB), after "ready", off create's path
    sc.malloc_trim()

    # seccomp is loaded by now: a profile that refuses what the wait needs fails here, after
    # "ready", so this text on the process's stderr is the only report: it names the field
    step.now = "waiting for start" + (", with linux.seccomp loaded" if plan.seccomp else "")
    _wait_for_start(plan.barrier_fd)
    os.close(plan.barrier_fd)
    if plan.hooks:
        step.now = "running the startContainer hooks"
        # in the process's cwd, with its final environment (runc's SetDefaultEnv)
        plan.hooks.run(plan.hooks.start_container, "created", host_pid, env=prepared.env)
    proc.execute_or_exit(prepared)


def _raw_env(process: "Process"):
    """process.env as configured (runc 1.1 runs createContainer hooks with it: no HOME added)."""
    env = {}
    for item in process.env:
        key, sep, value = item.partition("=")
        if sep and key:
            env[key] = value
    return env


def _exit_if_host_gone(sock):
    """While our createContainer hooks run we read nothing from the host, so a `create` killed
    meanwhile would leave us (and a hook that never ends) behind, with no state for `delete`
    to find. Once a second, until the timer is cleared: the channel hung up -> exit (as PID 1
    of a new pid namespace, the hooks die with us). Only around the hooks: their waits retry
    after the signal (PEP 475), a ctypes mount(2) would fail with EINTR."""
    poller = select.poll()
    poller.register(sock.rfd, select.POLLIN)

    def check(_signum, _frame):
        for _, events in poller.poll(0):
            if events & (select.POLLHUP | select.POLLERR):
                os._exit(1)

    sig.signal(sig.SIGALRM, check)
    sig.setitimer(sig.ITIMER_REAL, WATCHDOG_INTERVAL_MS / 1000, WATCHDOG_INTERVAL_MS / 1000)


def _wait_for_start(barrier):
    """The start barrier: `pyrunc start` writes one byte into exec.fifo, whose read-write fd
    the host opened for us; we poll it. Every WATCHDOG_INTERVAL we check that the fifo still
    has a name: `start` writes before it unlinks, so an unlinked fifo with nothing in it means
    the state was deleted under us (nobody could ever start or kill us): exit."""
    poller = select.poll()
    poller.register(barrier, select.POLLIN)
    while True:
        if poller.poll(WATCHDOG_INTERVAL_MS):
            try:
                if os.read(barrier, 1):
                    return
            except BlockingIOError:
                pass
            continue
        if os.fstat(barrier).st_nlink == 0 and not poller.poll(0):
            os.write(2, b"pyrunc: the container's state was deleted before it started; init exits\n")
            os._exit(1)


def _sysctls(sysctl):
    """linux.sysctl, written through a verified procfs (shim/procfs.py): a mount or symlink the
    config or the image put under the container's /proc cannot redirect the writes."""
    if not sysctl:
        return
    paths = {}
    for key in sysctl:  # every key checked before anything is written
        paths[key] = sysctlnames.relpath(key)
        if paths[key] is None:
            raise proc.ProcessError(f"linux.sysctl: {_quote(key)} is not a valid sysctl name")
    try:
        p = procfs.Procfs()
    except OSError as e:
        raise proc.ProcessError(f"linux.sysctl: {(e.strerror or str(e)).lower()}") from None
    with p:
        for key, value in sysctl.items():
            try:
                procfs.write_file(paths[key], value, p)
            except OSError as e:
                raise proc.ProcessError(f"failed to set sysctl {key}={value}: "
                                        f"{(e.strerror or str(e)).lower()}") from None


def _quote(text):
    """Go's %q, roughly: printable ASCII as is, the rest escaped (by hand: after the pivot no
    codec module can be imported)."""
    out = []
    for ch in str(text):
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    return '"' + "".join(out) + '"'


def _die(signum, _frame):
    os._exit(128 + signum)
