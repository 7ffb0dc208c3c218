"""`create`: validate the bundle, fork the shim, drive the handshake, record the container."""

import os
import stat
import time

from .. import trace
from ..errors import ConfigError, InvalidStateError
from ..shim import init as shim
from ..shim.process import check_preserved_fds
from ..spec.load import load_bundle
from ..spec.model import build
from ..state import procfs
from ..state.hostfile import HostFileError, reason, write_pid_file
from ..state.store import EXEC_FIFO, check_id
from . import attachlock, child
from .status import describe

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..spec.model import Config, Process, Seccomp
    from ..state.store import Record


def create(store, container_id, bundle, *, pid_file=None, console_socket=None,
           no_pivot=False, preserve_fds=0, listen_fds=0, warn=None, systemd_cgroup=False,
           console_fd=None, rootless=False, warmer=None):
    """console_fd: a connected console socket instead of --console-socket (foreground `run`
    passes its pty proxy's end, runtime/tty_proxy.py); the caller keeps and closes it.
    rootless: cgroups we may not create or join are skipped (runc's rootless cgroups).
    listen_fds: fds 3..3+listen_fds-1 are socket-activation fds for the process (LISTEN_FDS,
    LISTEN_PID=1 in its environment); the preserve_fds ones follow them.
    warmer: a running attachlock.AttachLockWarmer (the caller's, started early), else one is
    started here; stopped before the fork (runtime/attachlock.py)."""
    begin = trace.clock()  # --debug: each step's time (None, and no clock read, without)
    try:
        check_id(container_id)  # before anything derives a path (a cgroup) from it
        listen_fds, preserve_fds = max(0, listen_fds), max(0, preserve_fds)
        if warmer is not None:
            warmer.clear_fds_below(3 + listen_fds + preserve_fds)
        # Before we open anything: fds 3..3+listen_fds+preserve_fds-1 must be the caller's, or
        # one of ours (the store's lock) could land there and be passed on
        check_preserved_fds(preserve_fds, base=3 + listen_fds)  # runc's check and wording
        check_preserved_fds(listen_fds)
        preserve_fds += listen_fds  # from here: every fd after stdio the process keeps
        # the grace period of the first cgroup.procs write passes while we read and check the
        # bundle (runtime/attachlock.py); its fd is above the caller's range
        if warmer is None:
            warmer = attachlock.AttachLockWarmer()
        return _create(store, container_id, bundle, pid_file, console_socket, no_pivot,
                       preserve_fds, listen_fds, warn, systemd_cgroup, console_fd, rootless, warmer,
                       begin)
    finally:
        if warmer is not None:
            warmer.stop()  # whatever failed: no thread outlives the call

def _create(store, container_id, bundle, pid_file, console_socket, no_pivot, preserve_fds,
            listen_fds, warn, systemd_cgroup, console_fd, rootless, warmer, begin):
    t = begin
    bundle = os.path.abspath(bundle)
    config, rootfs = load_bundle(bundle)
    from ..spec.semantic import absolute_destinations
    for w in absolute_destinations(config):
        (warn or _ignore)(w)
    trace.debug("create %s: bundle %s, rootfs %s", container_id, bundle, rootfs)
    t = trace.lap(t, "create %s: loaded and validated config.json", container_id)
    from ..security.rootless import check_config
    spec = build(config)  # the typed model: everything below reads fields from it
    check_config(spec)  # a non-root caller needs a user namespace (runc's rootlessEUID checks)
    capabilities, last_cap, seccomp = _security(spec, warn)
    t = trace.lap(t, "create %s: checked namespaces, LSM and capabilities, seccomp compiled",
                  container_id)
    linux = spec.linux
    from ..cgroups import manager_for
    cgroup = manager_for(linux.cgroups_path, container_id, systemd=systemd_cgroup,
                         annotations=spec.annotations, rootless=rootless)
    terminal = spec.process.terminal
    if terminal and not console_socket and console_fd is None:
        raise InvalidStateError("cannot allocate tty if pyrunc will detach without setting console socket")
    if (console_socket or console_fd is not None) and not terminal:
        raise InvalidStateError("cannot use console socket if pyrunc will not detach or allocate tty")
    if console_socket:
        console_fd = child.connect_console(console_socket)
    elif console_fd is not None:
        console_fd = os.dup(console_fd)  # closed after the fork like a connected socket
    held = store.claim(container_id)  # locked until the record is complete (or removed)
    init_pid = None
    cgroup_made = False
    notify = os.environ.get("NOTIFY_SOCKET")  # sd_notify passthrough: runtime/notify_socket.py
    if notify:
        from . import notify_socket
    try:
        # the provisional record: if this process is killed before state.json exists, `delete`
        # finds the cgroup (every process we fork joins it) and knows we are gone
        store.save_creating(container_id, {"id": container_id, "creator_pid": os.getpid(),
                                           "creator_start": procfs.start_time(os.getpid()),
                                           "cgroup": cgroup.to_state()})
        if notify:
            notify_socket.setup(config, spec, store.path(container_id))  # mount + env, before the fork
        # limits are in place before anything joins (cpusets, rt budgets need that)
        if hasattr(cgroup, "check_unused"):
            cgroup.check_unused()  # before cgroup_made: a refused cgroup is not ours to remove
        cgroup_made = True
        cgroup.create()
        cgroup.set(linux.resources, linux_devices=linux.devices)
        for w in cgroup.warnings:
            (warn or _ignore)(w)
        t = trace.lap(t, "create %s: cgroup made and its limits set", container_id)
        warned = len(cgroup.warnings)
        barrier = _make_barrier(store.path(container_id, EXEC_FIFO))
        try:
            init_hooks = None
            if spec.hooks.any():
                from . import hooks
                init_hooks = hooks.for_init(spec, container_id, bundle)
            plan = shim.Plan(spec, bundle, rootfs, barrier, preserve_fds, no_pivot,
                             capabilities, last_cap, seccomp, init_hooks, listen_fds)
            plan.console_fd = console_fd
            trace.debug("create %s: forking stage1", container_id)
            warmer.stop()  # no thread but ours at the fork
            init_pid = child.spawn(
                shim.stage1, plan, _Answers(spec, container_id, bundle, warn),
                join_cgroup=cgroup.apply, preserve_fds=preserve_fds,
                died="container init exited before it was ready")
            t = trace.lap(t, "create %s: forked stage1, handshake done, init %d ready",
                          container_id, init_pid)
            for w in cgroup.warnings[warned:]:  # the systemd driver writes files only at apply()
                (warn or _ignore)(w)
        finally:
            os.close(barrier)  # the init has its own copy: the only fd of <root> it holds
            if console_fd is not None:
                os.close(console_fd)
                console_fd = None
        record: Record = {
            "id": container_id, "pid": init_pid, "start_time": procfs.start_time(init_pid),
            "bundle": bundle, "rootfs": rootfs, "created": _now_rfc3339(),
            "owner": "", "annotations": spec.annotations,
            "config": config, "cgroup": cgroup.to_state(),
        }
        store.save(container_id, record)
        if pid_file:
            write_pid_file(pid_file, init_pid)
        store.created(container_id)
        trace.lap(t, "create %s: state recorded", container_id)
        trace.debug("create %s: init %d is waiting for start", container_id, init_pid)
        trace.lap(begin, "create %s: done", container_id)
    except BaseException:
        if init_pid:
            child.kill_quietly(init_pid)
        if cgroup_made:
            _destroy_cgroup(cgroup)
        store.remove(container_id)  # with the notify directory, if any
        raise
    finally:
        held.release()
    return describe(store, record)


def _security(spec: "Config", warn):
    """Resolve capability names and compile seccomp before forking: errors cost nothing yet."""
    check_namespace_paths(spec)
    check_mount_namespace(spec)
    process = spec.process
    check_lsm(process, spec.linux.mount_label)
    capabilities, last_cap = resolve_capabilities(process, warn)
    seccomp = compile_seccomp(spec.linux.seccomp)
    return capabilities, last_cap, seccomp


def resolve_capabilities(process: "Process", warn, source="config.json"):
    """({set: frozenset(numbers)} or None, last_cap) for process.capabilities (also `exec`)."""
    from ..linux import capabilities as caps
    if process.capabilities is None:
        return None, 0
    last_cap = caps.last_cap()
    try:
        capabilities, warnings = caps.resolve(process.capabilities, last_cap)
    except caps.CapabilityError as e:
        raise caps.CapabilityError(f"{source}: {e}") from None
    for w in warnings:
        (warn or _ignore)(w)
    return capabilities, last_cap


def compile_seccomp(linux_seccomp: "Seccomp | None"):
    """The compiled linux.seccomp program (cached in pyrunc's own cache, never under --root:
    state/cache.py), or None. The compiler reads the whole object (model.Seccomp.raw)."""
    if linux_seccomp is None:
        return None
    from ..security.seccomp import program_for
    from ..state import cache
    return program_for(linux_seccomp.raw, cache.for_kind("seccomp"))


def check_namespace_paths(spec: "Config"):
    from ..linux.syscalls import NAMESPACES, namespace_type
    for i, ns in enumerate(spec.linux.namespaces):
        path = ns.path
        if not path:
            continue
        field = f"config.json: linux.namespaces[{i}].path"
        try:
            kind = namespace_type(path)
        except OSError as e:
            raise ConfigError(f"{field}: {path}: {(e.strerror or str(e)).lower()}") from None
        if kind != NAMESPACES[ns.type][0]:
            raise ConfigError(f"{field}: {path} is not a {ns.type} namespace")


def check_mount_namespace(spec: "Config"):
    """Mounts and masks need the container's own mount namespace (made or joined). runc 1.1
    refuses masks without one ("unable to restrict sys entries ...") but makes the mounts in
    the host's namespace, where they outlive the container: pyrunc refuses both."""
    linux = spec.linux
    if spec.has_namespace("mount"):
        return
    if linux.masked_paths or linux.readonly_paths:
        raise ConfigError("unable to restrict sys entries without a private MNT namespace")
    if spec.mounts:
        raise ConfigError("config.json: mounts: needs a mount namespace (linux.namespaces has no "
                          "\"mount\"): they would be made in the host's")


def check_lsm(process: "Process", mount_label: "str | None" = None, source="config.json"):
    """runc fails late and cryptically ("write /proc/self/attr/exec: invalid argument")."""
    from ..linux.lsm import apparmor_enabled, selinux_enabled
    if process.apparmor_profile and not apparmor_enabled():
        raise ConfigError(f"{source}: process.apparmorProfile: AppArmor is not enabled on "
                          "this host, so the profile cannot be applied")
    for field, value in (("process.selinuxLabel", process.selinux_label),
                         ("linux.mountLabel", mount_label)):
        if value and not selinux_enabled():
            raise ConfigError(f"{source}: {field}: selinux label is specified in config, "
                              f"but selinux is disabled or not supported")


def _ignore(_message):
    pass


class _Answers(child.Answers):
    """The host's answers to what the shim asks for during create."""

    def __init__(self, spec: "Config", container_id, bundle, warn):
        self.warning = warn or _ignore  # type: ignore[method-assign]
        self.spec = spec
        self.container_id = container_id
        self.bundle = bundle

    def userns(self, stage1_pid):
        from ..security.idmap import write_maps
        trace.debug("create %s: writing the id maps of stage1 %d", self.container_id, stage1_pid)
        from ..security.rootless import is_rootless_euid, only_own_gid
        linux = self.spec.linux
        gids = linux.gid_mappings
        rootless = is_rootless_euid()
        write_maps(stage1_pid, linux.uid_mappings, gids,
                   deny_setgroups=rootless and only_own_gid(gids), rootless=rootless)

    def create_runtime(self, pid):
        """prestart + createRuntime, on the host, once the init has done its mounts."""
        from . import hooks
        state = hooks.state_json(self.container_id, "creating", pid, self.bundle,
                                 self.spec.annotations)
        try:
            hooks.run_list(self.spec.hooks.named(*hooks.CREATE_RUNTIME), state,
                           cwd=self.bundle)
        except hooks.HookError as e:  # child.spawn puts runc's "unable to start ..." first
            raise hooks.HookError(f"{hooks.DURING_INIT}{e}") from None

    def seccomp_listener(self, pid, fd):
        from ..security.notify import send_listener
        trace.debug("create %s: passing the seccomp listener to its agent", self.container_id)
        send_listener(self.spec, self.container_id, self.bundle, pid, fd)


def _make_barrier(path):
    """exec.fifo, the start barrier, opened read-write for the init before the fork.

    The init keeps this fd and nothing else of <root>: a fifo cannot be walked (`..` of it is
    ENOTDIR), and the init never holds the store's lock. Read-write, so the fifo always has a
    writer: `start` killed between its open and its write cannot leave a POLLHUP the init would
    spin on. Only root may write to it (`start` runs as root); the init needs no access by
    path, so a remapped root needs none either."""
    try:
        os.mkfifo(path, 0o600)
        os.chmod(path, 0o600)  # mkfifo applies the umask
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise HostFileError(f"cannot make the start barrier {path}: {reason(e)}") from None
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidStateError(f"{path}: not the fifo pyrunc made")
    return fd


def _destroy_cgroup(cgroup):
    """After a failed create: the init is being killed; its cgroup goes once it is empty."""
    from ..cgroups import CgroupError
    try:
        for pid in cgroup.pids():
            child.kill_quietly(pid)
        deadline = time.monotonic() + 5
        while cgroup.pids() and time.monotonic() < deadline:
            time.sleep(0.005)
        cgroup.destroy()
    except CgroupError:
        pass


def _now_rfc3339():
    ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return f"{stamp}.{frac:09d}".rstrip("0").rstrip(".") + "Z"
