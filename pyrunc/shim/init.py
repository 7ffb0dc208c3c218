"""The two forked stages between `pyrunc create` and the user's execve.

stage1 (child of the host process): joins namespaces given by path, unshares the
new ones, forks the init and exits; the init is then PID 1 of a new pid namespace.
stage2 (the container init): builds the rootfs, prepares the process, reports
"ready", blocks on the exec fifo until `pyrunc start`, and execs.
Every failure goes back to the host as an "error" message; neither stage ever
returns into the host's code (os._exit).
"""

import os

from ..errors import describe
from ..linux import sig
from ..linux import syscalls as sc
from . import process as proc
from . import rootfs as rfs
from . import scheduling, security, sync


WATCHDOG_INTERVAL = 1.0


class Plan:
    """What the host decided, handed to the forked stages through memory."""

    def __init__(self, config, rootfs, fifo_path, preserve_fds, no_pivot, capabilities=None,
                 last_cap=0, seccomp=None, state_dir_fd=None, hooks=None):
        self.hooks = hooks  # runtime.hooks.InitHooks or None: config.json hooks
        self.state_dir_fd = state_dir_fd  # O_PATH fd of <root>/<id>, opened by the host
        self.console_fd = None  # connected --console-socket, when process.terminal
        self.config = config
        self.rootfs = rootfs
        self.fifo_path = fifo_path
        self.preserve_fds = preserve_fds
        self.no_pivot = no_pivot
        self.capabilities = capabilities  # {set: frozenset(numbers)} or None: leave caps alone
        self.last_cap = last_cap
        self.seccomp = seccomp            # security.seccomp.Program or None


def stage1(plan, sock):
    """Runs in the host's child. Never returns."""
    code = 1
    try:
        sock.expect("proceed")  # the host has placed us in our cgroups
        # as runc: before the user namespace, where /proc/self/oom_score_adj is not ours to write
        proc.apply_oom_score_adj((plan.config.get("process") or {}).get("oomScoreAdj"))
        linux = plan.config.get("linux") or {}
        namespaces = linux.get("namespaces") or []
        cgroup_paths = rfs.host_cgroup_paths()
        # The user namespace first: every namespace made or joined after it belongs to it.
        user = [ns for ns in namespaces if ns["type"] == "user"]
        _join(user)
        if user and not user[0].get("path"):
            sc.unshare(sc.CLONE_NEWUSER)
            sock.send("userns")  # the host writes our uid_map/gid_map ...
            sock.expect("proceed")  # ... and lets us go on
        if user:
            _become_root()
        _join([ns for ns in namespaces if ns["type"] != "user"])
        flags = 0
        for ns in namespaces:
            if not ns.get("path") and ns["type"] != "user":
                flags |= sc.NAMESPACES[ns["type"]][0]
        if flags:
            sc.unshare(flags)
        if flags & sc.CLONE_NEWTIME:
            _time_offsets(linux.get("timeOffsets") or {})
        pid = os.fork()
        if pid == 0:
            _run_stage2(plan, sock, cgroup_paths)
        sock.send("pid", pid=pid)
        code = 0
    except BaseException as e:  # noqa: BLE001 - everything must reach the host
        _report(sock, e)
    os._exit(code)


def _become_root():
    """Act as uid/gid 0 of the user namespace we created or joined, when 0 is mapped there;
    otherwise our host ids are unmapped (the overflow id) and mounts would fail."""
    for setter in (os.setresgid, os.setresuid):
        try:
            setter(0, 0, 0)
        except OSError:
            pass  # 0 is not mapped: stay as we are


def _time_offsets(offsets):
    """Must be written before any process enters the new time namespace (our fork does)."""
    lines = "".join(f"{clock} {o.get('secs', 0)} {o.get('nanosecs', 0)}\n"
                    for clock, o in offsets.items())
    if lines:
        try:
            with open("/proc/self/timens_offsets", "w") as f:
                f.write(lines)
        except OSError as e:
            raise proc.ProcessError(f"failed to set linux.timeOffsets: {e.strerror.lower()}") from None


def _join(namespaces):
    for ns in namespaces:
        path = ns.get("path")
        if not path:
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise proc.ProcessError(f"failed to open {path} for the {ns['type']} namespace: "
                                    f"{e.strerror.lower()}") from None
        try:
            sc.setns(fd, sc.NAMESPACES[ns["type"]][0])
        except OSError as e:
            raise proc.ProcessError(f"failed to join the {ns['type']} namespace {path}: "
                                    f"{e.strerror.lower()}") from None
        finally:
            os.close(fd)


def _run_stage2(plan, sock, cgroup_paths):
    code = 1
    try:
        _stage2(plan, sock, cgroup_paths)
    except BaseException as e:  # noqa: BLE001
        _report(sock, e)
    os._exit(code)


def _stage2(plan, sock, cgroup_paths):
    config = plan.config
    # A pid-namespace init only gets the signals it handles; die on the usual ones until exec.
    for signum in (sig.SIGTERM, sig.SIGINT, sig.SIGHUP, sig.SIGQUIT, sig.SIGUSR1, sig.SIGUSR2):
        sig.signal(signum, _die)
    os.setsid()
    sc.prctl(sc.PR_SET_DUMPABLE, 0)  # no ptrace or /proc/PID/mem from inside before exec
    sc.set_process_name("pyrunc:init")  # what ps shows for a created container

    # The fifo is opened for writing after the pivot, relative to the state directory that the
    # host opened for us: no /proc needed, and a remapped root need not be able to walk the
    # path to --root. Closed before exec.
    state_dir = plan.state_dir_fd

    namespaces = {ns["type"] for ns in (config.get("linux") or {}).get("namespaces") or []}
    host_pid = None  # our pid as the host sees it: the hooks' state needs it
    if "mount" in namespaces:
        rfs.prepare(config, plan.rootfs, cgroup_paths)
    if plan.hooks:
        # mounts done, not pivoted: the host runs prestart + createRuntime, then we run
        # createContainer in our namespaces with the host's paths still visible
        sock.send("create-runtime")
        host_pid = sock.expect("proceed")["pid"]
        plan.hooks.run(plan.hooks.create_container, "creating", host_pid)
    if "mount" in namespaces:
        rfs.pivot(plan.rootfs, plan.no_pivot)
    else:
        os.chroot(plan.rootfs)
        os.chdir("/")
    if config.get("hostname") is not None:
        sc.sethostname(config["hostname"])
    if config.get("domainname") is not None:
        sc.setdomainname(config["domainname"])
    _sysctls((config.get("linux") or {}).get("sysctl") or {})
    if "mount" in namespaces:
        rfs.finish(config)
    if plan.console_fd is not None:
        from . import console  # already in sys.modules: the host imported it before the fork
        console.setup(plan.console_fd, config["process"].get("consoleSize"))

    process = config["process"]
    security_steps = security.steps(process, (config.get("linux") or {}).get("personality"),
                                    plan.capabilities, plan.last_cap, plan.seccomp, sock)
    prepared = proc.prepare(process, plan.preserve_fds, security_steps)
    sock.send("ready")
    sock.close()

    # The barrier: blocks until `pyrunc start` opens the fifo for reading. Meanwhile a watchdog
    # ends this init if its state is deleted under it (nobody could ever start or kill it).
    fifo_name = os.path.basename(plan.fifo_path)

    def watchdog(_signum, _frame):
        try:
            os.stat(fifo_name, dir_fd=state_dir)
        except FileNotFoundError:
            os.write(2, b"pyrunc: the container's state was deleted before it started; init exits\n")
            os._exit(1)

    sig.signal(sig.SIGALRM, watchdog)
    sig.setitimer(sig.ITIMER_REAL, WATCHDOG_INTERVAL, WATCHDOG_INTERVAL)
    barrier = os.open(fifo_name, os.O_WRONLY | os.O_CLOEXEC, dir_fd=state_dir)
    sig.setitimer(sig.ITIMER_REAL, 0)  # before the write: start unlinks the fifo after it
    os.write(barrier, b"0")
    os.close(barrier)
    os.close(state_dir)
    if plan.hooks:
        plan.hooks.run(plan.hooks.start_container, "created", host_pid)
    proc.execute_or_exit(prepared)


def _sysctls(sysctl):
    for key, value in sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as e:
            raise proc.ProcessError(f"failed to set sysctl {key}={value}: {e.strerror.lower()}") from None


def _die(signum, _frame):
    os._exit(128 + signum)


def _report(sock, exc):
    if isinstance(exc, sync.SyncError):
        return  # the host is gone or already knows
    if isinstance(exc, (proc.ProcessError, rfs.RootfsError, security.SecurityError,
                        scheduling.SchedulingError)):
        msg = str(exc)
    elif isinstance(exc, OSError):
        # pyrunc.linux.syscalls puts the context in strerror; str() would prefix "[Errno N] "
        msg = (exc.strerror or str(exc)) if exc.filename is None else f"{exc.filename}: {exc.strerror.lower()}"
    else:
        # no traceback module here: it may not be importable after pivot_root
        msg = f"internal error: {describe(exc)}"
    try:
        sock.send("error", msg=msg)
    except OSError:
        # after "ready" the host has gone: the container's stderr is the only witness
        try:
            os.write(2, f"pyrunc: container init failed: {msg}\n".encode())
        except OSError:
            pass
