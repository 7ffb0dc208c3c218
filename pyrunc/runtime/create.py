"""`create`: validate the bundle, fork the shim, drive the handshake, record the container."""

import os
import time

from ..errors import ConfigError, ContainerInitError, InvalidStateError
from ..linux import sig
from ..shim import init as shim
from ..shim import sync
from ..spec.load import load_bundle
from ..state import procfs
from ..state.hostfile import write_pid_file
from ..state.store import EXEC_FIFO, check_id
from .status import describe

# Under --root but never a container: "@" cannot appear in a container id.
CACHE_DIR = "@cache"


def create(store, container_id, bundle, *, pid_file=None, console_socket=None,
           no_pivot=False, preserve_fds=0, warn=None, systemd_cgroup=False, console_fd=None):
    """console_fd: a connected console socket instead of --console-socket (foreground `run`
    passes its pty proxy's end, runtime/tty_proxy.py); the caller keeps and closes it."""
    check_id(container_id)  # before anything derives a path (a cgroup) from it
    bundle = os.path.abspath(bundle)
    config, rootfs = load_bundle(bundle)
    capabilities, last_cap, seccomp = _security(store, config, warn)
    linux = config.get("linux") or {}
    from ..cgroups import manager_for
    cgroup = manager_for(linux.get("cgroupsPath"), container_id, systemd=systemd_cgroup)
    terminal = bool(config["process"].get("terminal"))
    if terminal and not console_socket and console_fd is None:
        raise InvalidStateError("cannot allocate tty if pyrunc will detach without setting console socket")
    if (console_socket or console_fd is not None) and not terminal:
        raise InvalidStateError("cannot use console socket if pyrunc will not detach or allocate tty")
    if console_socket:
        console_fd = _connect_console(console_socket)
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
            notify_socket.setup(config, store.path(container_id))  # mount + env, before the fork
        # limits are in place before anything joins (cpusets, rt budgets need that)
        cgroup_made = True
        cgroup.create()
        cgroup.set(linux.get("resources") or {}, linux_devices=linux.get("devices"))
        for w in cgroup.warnings:
            (warn or _ignore)(w)
        fifo = store.path(container_id, EXEC_FIFO)
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)  # mkfifo applies the umask; a remapped root writes it as "other"
        state_dir = os.open(store.path(container_id), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            init_hooks = None
            if config.get("hooks"):
                from . import hooks
                init_hooks = hooks.for_init(config, container_id, bundle)
            plan = shim.Plan(config, rootfs, fifo, preserve_fds, no_pivot, capabilities, last_cap,
                             seccomp, state_dir, init_hooks)
            plan.console_fd = console_fd
            init_pid = _spawn(plan, bundle, _Handshake(config, container_id, bundle, warn, cgroup))
        finally:
            os.close(state_dir)
            if console_fd is not None:
                os.close(console_fd)
                console_fd = None
        record = {
            "id": container_id, "pid": init_pid, "start_time": procfs.start_time(init_pid),
            "bundle": bundle, "rootfs": rootfs, "created": _now_rfc3339(),
            "owner": "", "annotations": config.get("annotations") or {},
            "config": config, "cgroup": cgroup.to_state(),
        }
        store.save(container_id, record)
        if pid_file:
            write_pid_file(pid_file, init_pid)
        store.created(container_id)
    except BaseException:
        if init_pid:
            _kill_quietly(init_pid)
        if cgroup_made:
            _destroy_cgroup(cgroup)
        store.remove(container_id)  # with the notify directory, if any
        raise
    finally:
        held.release()
    return describe(store, record)


def _security(store, config, warn):
    """Resolve capability names and compile seccomp before forking: errors cost nothing yet."""
    _check_namespace_paths(config)
    process = config["process"]
    check_lsm(process, (config.get("linux") or {}).get("mountLabel"))
    capabilities, last_cap = resolve_capabilities(process, warn)
    seccomp = compile_seccomp(store, (config.get("linux") or {}).get("seccomp"))
    return capabilities, last_cap, seccomp


def resolve_capabilities(process, warn, source="config.json"):
    """({set: frozenset(numbers)} or None, last_cap) for process.capabilities (also `exec`)."""
    from ..linux import capabilities as caps
    if process.get("capabilities") is None:
        return None, 0
    last_cap = caps.last_cap()
    try:
        capabilities, warnings = caps.resolve(process["capabilities"], last_cap)
    except caps.CapabilityError as e:
        raise ConfigError(f"{source}: {e}") from None
    for w in warnings:
        (warn or _ignore)(w)
    return capabilities, last_cap


def compile_seccomp(store, linux_seccomp):
    """The compiled linux.seccomp program (cached under <root>/@cache/seccomp), or None."""
    if linux_seccomp is None:
        return None
    from ..security.seccomp import program_for
    from ..state.cache import TrustedCache
    return program_for(linux_seccomp, TrustedCache(store.root, CACHE_DIR, "seccomp"))


def _check_namespace_paths(config):
    from ..linux.syscalls import NAMESPACES, namespace_type
    for i, ns in enumerate((config.get("linux") or {}).get("namespaces") or ()):
        path = ns.get("path")
        if not path:
            continue
        field = f"config.json: linux.namespaces[{i}].path"
        try:
            kind = namespace_type(path)
        except OSError as e:
            raise ConfigError(f"{field}: {path}: {e.strerror.lower()}") from None
        if kind != NAMESPACES[ns["type"]][0]:
            raise ConfigError(f"{field}: {path} is not a {ns['type']} namespace")


def check_lsm(process, mount_label=None, source="config.json"):
    """runc fails late and cryptically ("write /proc/self/attr/exec: invalid argument")."""
    from ..linux.lsm import apparmor_enabled, selinux_enabled
    if process.get("apparmorProfile") and not apparmor_enabled():
        raise ConfigError(f"{source}: process.apparmorProfile: AppArmor is not enabled on "
                          "this host, so the profile cannot be applied")
    for field, value in (("process.selinuxLabel", process.get("selinuxLabel")),
                         ("linux.mountLabel", mount_label)):
        if value and not selinux_enabled():
            raise ConfigError(f"{source}: {field}: selinux label is specified in config, "
                              f"but selinux is disabled or not supported")


def _ignore(_message):
    pass


class _Handshake:
    """The host's answers to what the shim asks for during create."""

    def __init__(self, config, container_id, bundle, warn, cgroup):
        self.cgroup = cgroup
        self.warn = warn or _ignore
        self.config = config
        self.container_id = container_id
        self.bundle = bundle
        self.init_pid = None

    def userns(self, stage1_pid):
        from ..security.idmap import write_maps
        linux = self.config["linux"]
        write_maps(stage1_pid, linux.get("uidMappings") or [], linux.get("gidMappings") or [])

    def create_runtime(self):
        """prestart + createRuntime, on the host, once the init has done its mounts."""
        from . import hooks
        state = hooks.state_json(self.container_id, "creating", self.init_pid, self.bundle,
                                 self.config.get("annotations") or {})
        try:
            hooks.run_list(hooks.hooks_of(self.config, *hooks.CREATE_RUNTIME), state,
                           cwd=self.bundle)
        except hooks.HookError as e:
            raise sync.SyncError(str(e)) from None

    def seccomp_listener(self, fd):
        from ..security.notify import send_listener
        send_listener(self.config, self.container_id, self.bundle, self.init_pid, fd)


def _spawn(plan, bundle, handshake):
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
        # stage1 joins its cgroups before it unshares anything (the cgroup namespace's root
        # is then the container's cgroup) and before any of the user's code runs
        handshake.cgroup.apply(child)
        host_end.send("proceed")
        try:
            ready = False
            create_runtime = False  # the init asked before stage1's "pid" arrived
            # stage1's "pid" and the init's "ready" come from two processes: under load the
            # init can finish first, so wait for both.
            while not (ready and init_pid):
                msg = host_end.recv()
                kind = msg["type"]
                if kind == "ready":
                    ready = True
                    continue
                if kind == "error":
                    raise sync.SyncError(msg["msg"])
                if kind == "pid":
                    init_pid = handshake.init_pid = msg["pid"]
                    if create_runtime:
                        handshake.create_runtime()
                        host_end.send("proceed", pid=init_pid)
                    continue
                if kind == "create-runtime":
                    # the init's hooks need its host pid: answer once stage1 has sent it
                    create_runtime = not init_pid
                    if init_pid:
                        handshake.create_runtime()
                        host_end.send("proceed", pid=init_pid)
                    continue
                if kind == "warning":
                    handshake.warn(msg["msg"])
                    continue
                if kind == "userns":
                    handshake.userns(child)
                elif kind == "seccomp-listener":
                    handshake.seccomp_listener(msg["fd"])
                else:
                    raise sync.SyncError(f"unexpected message {kind!r} from the shim")
                host_end.send("proceed")
        except sync.SyncError as e:
            reason = str(e)
            if reason == "peer closed the sync channel":
                reason = "container init exited before it was ready"
            raise ContainerInitError(f"unable to start container process: {reason}") from None
        return init_pid
    except BaseException:
        # stage1 may be blocked waiting for our answer: it must die too, or waitpid hangs
        for pid in (init_pid, child):
            if pid:
                _kill_quietly(pid)
        raise
    finally:
        os.waitpid(child, 0)
        host_end.close()


def _destroy_cgroup(cgroup):
    """After a failed create: the init is being killed; its cgroup goes once it is empty."""
    from ..cgroups import CgroupError
    try:
        for pid in cgroup.pids():
            _kill_quietly(pid)
        deadline = time.monotonic() + 5
        while cgroup.pids() and time.monotonic() < deadline:
            time.sleep(0.005)
        cgroup.destroy()
    except CgroupError:
        pass


def _connect_console(path):
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
    return sock.detach()  # a plain fd (close-on-exec) the shim inherits through the fork


def _kill_quietly(pid):
    try:
        os.kill(pid, sig.SIGKILL)
    except ProcessLookupError:
        pass


_write_pid_file = write_pid_file  # exec.py's name for it


def _now_rfc3339():
    ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return f"{stamp}.{frac:09d}".rstrip("0").rstrip(".") + "Z"
