"""The public Python API; the CLI is a thin layer over it.

    rt = Runtime("/run/pyrunc")
    rt.create("web", "/srv/bundles/web", pid_file="/run/web.pid")
    rt.start("web")
    rt.kill("web", "TERM")
    rt.delete("web", force=True)

Every method raises a subclass of pyrunc.errors.PyruncError with a one-line message. A
failure inside the container before the user's process runs (create, run, exec) raises the
type the container's init raised (RootfsError, SecurityError, ProcessError, ...: all
ContainerInitError), with its errno when an OS error is behind it; branch on the type, not
the text.

The module functions are what the CLI needs besides a Runtime (cli/ imports nothing else of
pyrunc's but the leaf modules: docs/ARCHITECTURE.md, tests/unit/test_layering.py).
"""

import os

from .runtime import lifecycle
from .state.store import Store, check_id, make_private_root

__all__ = ["DEFAULT_ROOT", "Runtime", "ensure_sealed", "features", "make_private_root",
           "read_resources", "socket_activation_fds", "spec_template"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable, Sequence
    from typing import Any

    from .runtime.model import ContainerState

# runtime.create pulls in the shim, ctypes and cgroups: only create/run need them,
# and engines call state/kill/delete as often as create (delete --force after every container).

DEFAULT_ROOT = "/run/pyrunc"


class Runtime:
    def __init__(self, root: str = DEFAULT_ROOT, warn: "Callable[[str], None] | None" = None,
                 systemd_cgroup: bool = False, rootless: "bool | None" = None,
                 warm_cgroups: bool = False) -> None:
        """warn(message) receives non-fatal findings (e.g. a capability this kernel lacks);
        systemd_cgroup selects the systemd cgroup driver (runc's --systemd-cgroup); rootless:
        tolerate cgroup permission errors (runc's --rootless; None: runc's auto rule,
        pyrunc.rootless.rootless_cgroups). warm_cgroups: a create, run or exec follows, start
        warming the kernel's cgroup attach lock now (runtime/attachlock.py)."""
        self._warmer = None
        if warm_cgroups:
            from .runtime.attachlock import AttachLockWarmer
            self._warmer = AttachLockWarmer()
        self.store = Store(root)
        self.warn = warn
        self.systemd_cgroup = systemd_cgroup
        if rootless is None:
            from .rootless import rootless_cgroups
            rootless = rootless_cgroups("auto", systemd_cgroup)
        self.rootless = rootless

    @property
    def root(self) -> str:
        return self.store.root

    def take_warmer(self):
        """The attach-lock warmer warm_cgroups started (create or exec stops it), or None."""
        warmer, self._warmer = self._warmer, None
        return warmer

    def create(self, container_id: str, bundle: str, *, pid_file: "str | None" = None,
               console_socket: "str | None" = None, no_pivot: bool = False,
               preserve_fds: int = 0, listen_fds: int = 0,
               console_fd: "int | None" = None) -> "ContainerState":
        """Build the container and leave its init waiting for start(); returns its ContainerState.

        The process keeps fds 3..3+listen_fds+preserve_fds-1 of the caller: first listen_fds
        socket-activation fds (it gets LISTEN_FDS=listen_fds and LISTEN_PID=1, as runc passes
        its own: socket_activation_fds()), then preserve_fds more (runc's --preserve-fds).
        console_fd: an already connected console socket instead of console_socket's path (the
        foreground run() passes its pty proxy's end); the caller keeps and closes it."""
        _require_sealed()
        from .runtime.create import create
        return create(self.store, container_id, bundle, pid_file=pid_file,
                      console_socket=console_socket, no_pivot=no_pivot,
                      preserve_fds=preserve_fds, listen_fds=listen_fds, console_fd=console_fd,
                      warn=self.warn,
                      systemd_cgroup=self.systemd_cgroup, rootless=self.rootless,
                      warmer=self.take_warmer())

    def start(self, container_id: str, *, main_pid: "int | None" = None) -> None:
        """Let the init exec the user's process. With NOTIFY_SOCKET in our environment (sd_notify,
        as runc): wait until the container sends READY=, then send READY= and MAINPID=main_pid
        (default: the init's host pid) to that socket; returns early if the container exits."""
        check_id(container_id)
        lifecycle.start(self.store, container_id, warn=self.warn, main_pid=main_pid)

    def state(self, container_id: str) -> "ContainerState":
        check_id(container_id)
        return lifecycle.state(self.store, container_id)

    def list(self) -> "builtins.list[ContainerState]":
        return lifecycle.list_all(self.store)

    def kill(self, container_id: str, signal: "str | int" = "SIGTERM",
             all_processes: bool = False) -> None:
        check_id(container_id)
        lifecycle.kill(self.store, container_id, signal, all_processes)

    def delete(self, container_id: str, force: bool = False) -> None:
        """Remove a stopped (or created) container; force kills a running one first.

        With force, a container that does not exist is not an error."""
        from .errors import ContainerNotFound
        check_id(container_id)
        try:
            lifecycle.delete(self.store, container_id, force, warn=self.warn)
        except ContainerNotFound:
            lifecycle.remove_leftover(self.store, container_id)
            if not force:
                raise

    def update(self, container_id: str, resources: "dict[str, Any]") -> None:
        """Change linux.resources of a live container; zeros and absent fields change nothing."""
        from .runtime import cgroup_ops
        from .spec import schema
        check_id(container_id)
        # what `update -r FILE` checks (spec/load.py read_resources): a NUL byte or a wrong type
        # is a field-named ConfigError here too, never a ValueError or a silently cut value
        schema.validate(resources, "config#/$defs/linuxResources", "resources")
        cgroup_ops.update(self.store, container_id, resources)

    def pause(self, container_id: str) -> None:
        from .runtime import cgroup_ops
        check_id(container_id)
        cgroup_ops.pause(self.store, container_id)

    def resume(self, container_id: str) -> None:
        from .runtime import cgroup_ops
        check_id(container_id)
        cgroup_ops.resume(self.store, container_id)

    def ps(self, container_id: str) -> "builtins.list[int]":
        """Host pids of every process in the container."""
        from .runtime import cgroup_ops
        check_id(container_id)
        return cgroup_ops.pids(self.store, container_id)

    def events(self, container_id: str, *, stats_only: bool = False, interval: float = 5.0,
               emit: "Callable[[dict[str, Any]], object]" = print) -> None:
        """Call emit(event_dict) for stats (once with stats_only) and OOM events."""
        from .runtime import cgroup_ops
        check_id(container_id)
        cgroup_ops.events(self.store, container_id, stats_only=stats_only, interval=interval, emit=emit)

    def run(self, container_id: str, bundle: str, *, detach: bool = False,
            pid_file: "str | None" = None, console_socket: "str | None" = None,
            no_pivot: bool = False, preserve_fds: int = 0, listen_fds: int = 0,
            keep: bool = False) -> int:
        """create + start; unless detached, wait and return the exit status (128+N if killed by N).
        keep: leave the stopped container (state and cgroup) for a later delete(), as runc's
        run --keep; also when start fails. listen_fds, preserve_fds: as create()."""
        from .runtime.run import run
        return run(self, container_id, bundle, detach=detach, pid_file=pid_file,
                   console_socket=console_socket, no_pivot=no_pivot, preserve_fds=preserve_fds,
                   listen_fds=listen_fds, keep=keep)

    def exec(self, container_id: str, args: "Sequence[str]" = (), *,
             process: "str | dict[str, Any] | None" = None, cwd: "str | None" = None,
             env: "Sequence[str]" = (), user: "str | None" = None,
             additional_gids: "Sequence[str | int]" = (), caps: "Sequence[str]" = (),
             no_new_privs: "bool | None" = None, apparmor: "str | None" = None,
             process_label: "str | None" = None, tty: bool = False, detach: bool = False,
             pid_file: "str | None" = None, console_socket: "str | None" = None,
             preserve_fds: int = 0, ignore_paused: bool = False,
             cgroup: "Sequence[str]" = ()) -> int:
        """Run one more process in a created or running container: `process` (a process.json
        path or an OCI process dict) or the container's own process with `args` and the
        overrides (env is appended, caps are added, user is "uid[:gid]"). The caller's fds 0-2
        are its stdio. Detached: returns 0 once it runs (pid_file gets its host pid); else
        waits and returns its exit status (128+N if killed by signal N)."""
        _require_sealed()
        from .runtime.exec import exec_process
        check_id(container_id)
        return exec_process(self.store, container_id, args, process=process, cwd=cwd, env=env,
                            user=user, additional_gids=additional_gids, caps=caps,
                            no_new_privs=no_new_privs, apparmor=apparmor,
                            process_label=process_label, tty=tty, detach=detach,
                            pid_file=pid_file, console_socket=console_socket,
                            preserve_fds=preserve_fds, ignore_paused=ignore_paused,
                            cgroup=cgroup, warn=self.warn, warmer=self.take_warmer())

    def validate(self, bundle: str) -> "builtins.list[str]":
        """Every problem create would find in the bundle (one line each), creating nothing;
        [] for a good bundle (`pyrunc validate`, runtime/validate.py)."""
        from .runtime.validate import problems
        return problems(bundle, systemd_cgroup=self.systemd_cgroup)


def _require_sealed() -> None:
    """create/run/exec fork processes a container can see: their interpreter must be one no
    container can overwrite (security/exeseal.py). The CLI seals and re-execs before it gets
    here; an in-process caller that has not called ensure_sealed() gets ExecutableNotSealed."""
    ensure_sealed(reexec=False)


def ensure_sealed(reexec=True):
    """Make sure this process runs from an interpreter no container can overwrite; may re-exec
    the program through a sealed copy (reexec=False: raise ExecutableNotSealed instead).
    A program that uses the API in-process calls it when it starts (security/exeseal.py)."""
    from .security.exeseal import ensure_sealed as seal
    seal(reexec=reexec)


def socket_activation_fds(environ=None, pid=None):
    """go-systemd's activation.Files(false), as runc calls it: this process's LISTEN_FDS, when
    LISTEN_PID names it (else 0). What create()/run() take as listen_fds to hand the caller's
    own socket activation on to the container, as runc does for create and run."""
    from .goparse import is_atoi
    environ = os.environ if environ is None else environ
    listen_pid, listen_fds = environ.get("LISTEN_PID", ""), environ.get("LISTEN_FDS", "")
    # strconv.Atoi's syntax (int() would also take " 5", "1_0", other scripts' digits)
    if not (is_atoi(listen_pid) and is_atoi(listen_fds)):
        return 0
    if int(listen_pid) != (os.getpid() if pid is None else pid):
        return 0
    return max(0, int(listen_fds))


def spec_template(rootless=False):
    """The config.json `pyrunc spec` writes (runc's template, spec/default.py); rootless: made
    for this caller's euid/egid (runc's spec --rootless)."""
    from .spec.default import default_config, to_rootless
    config = default_config()
    if rootless:
        config = to_rootless(config, os.geteuid(), os.getegid())
    return config


def read_resources(path):
    """A linux.resources document from a file ("-": stdin), checked (`update -r`)."""
    from .spec.load import read_resources as read
    return read(path)


def features():
    """The runtime-spec features document (`pyrunc features`) as a dict."""
    from .runtime.features import features as document
    return document()
