"""config.json `hooks`: run one list of hooks with the container's state on stdin.

Where each list runs (runtime-spec config.md "POSIX-platform Hooks", runtime.md "Lifecycle"):
prestart + createRuntime by `create` on the host when the init asks (its mounts are done, it has
not pivoted); createContainer by the init, before its pivot_root; startContainer by the init after
the start barrier, just before execve; poststart by `start` once the barrier is released;
poststop by `delete` once the container is gone. `run_list` is also handed to the init through
`shim.init.Plan` (the shim imports nothing from runtime/): everything it needs is imported here,
before the fork, so nothing is imported after the init's pivot_root. Hooks are forked and exec'd
by hand (`_spawn`), not with subprocess: importing subprocess costs ~16 ms, and docker sends a
prestart hook with every container.
"""

import os
import select
import time

from .. import jsonio, trace
from ..errors import HookError, PyruncError
from ..linux import sig
from ..version import HOOK_STATE_VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..spec.model import Config, Hook

# The order of the lists that run while the container is being created.
CREATE_RUNTIME = ("prestart", "createRuntime")
IN_INIT = ("createContainer", "startContainer")
# runc's wrapping of what fails while `create` talks to its init (hooks, the seccomp agent)
DURING_INIT = "error during container init: "


def state_json(container_id, status, pid, bundle, annotations):
    """The container's state (runtime.md "State"), as every hook reads it on stdin."""
    state = {"ociVersion": HOOK_STATE_VERSION, "id": container_id, "status": status}
    if pid:
        state["pid"] = pid
    state["bundle"] = bundle
    if annotations:
        state["annotations"] = annotations
    return jsonio.dumps(state)


def run_list(hooks, state, cwd=None, env=None):
    """Run [(name, hook)] in order with `state` (JSON text) on stdin; the first failure raises
    HookError, worded as runc's: "error running <name> hook #<index>: <reason>", the index
    counted in the hook's own list. `env` ({name: value}) is the environment of a hook that
    has none of its own: runc's exec.Cmd with a nil Env inherits the runtime's (the default,
    None: ours); the init passes the container process's."""
    for name, index, hook in _indexed(hooks):
        _run_named(name, index, hook, state, cwd, env)


def _indexed(hooks):
    seen: dict[str, int] = {}
    for name, hook in hooks:
        index = seen[name] = seen.get(name, -1) + 1
        yield name, index, hook


def _run_named(name, index, hook, state, cwd, env):
    trace.debug("running %s hook #%d: %s", name, index, hook.path)
    try:
        run_one(hook, state, cwd, env)
    except HookError as e:
        raise HookError(f"error running {name} hook #{index}: {e}") from None


def hook_env(hook: "Hook", default=None):
    """The hook's `env` as given (later duplicates win, as Go's exec does); without one,
    `default`, else the runtime's own environment."""
    items = hook.env
    if not items:
        return dict(os.environ) if default is None else default
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    return env


def run_one(hook: "Hook", state, cwd=None, env=None):
    """One hook; HookError(reason) as Go's exec.Cmd words it (the caller adds which hook)."""
    path = hook.path
    argv = list(hook.args) or [path]
    timeout = hook.timeout
    try:
        returncode, out, err = _spawn(path, argv, hook_env(hook, env), cwd, state.encode(),
                                      timeout)
    except OSError as e:
        raise HookError(f"fork/exec {path}: {(e.strerror or str(e)).lower()}") from None
    except _TimedOut:
        raise HookError(f"hook ran past specified timeout of {float(timeout or 0):.1f}s") from None
    if returncode != 0:
        status = (f"signal: {_signal_name(-returncode)}" if returncode < 0
                  else f"exit status {returncode}")
        raise HookError(f"{status}, stdout: {out.decode(errors='replace')}, "
                        f"stderr: {err.decode(errors='replace')}")


class _TimedOut(PyruncError):
    """The hook ran past its timeout and was killed (not TimeoutError: that is an OSError)."""


def _spawn(path, argv, env, cwd, data, timeout):
    """Run `path` with `data` on stdin; returns (exit code, negative for a signal, stdout,
    stderr). Raises OSError when it cannot be started (as subprocess does: the child reports
    exec's errno over a close-on-exec pipe) and _TimedOut once it has been killed for
    running past `timeout` seconds. Only fds 0-2 reach the hook (engines hand us stray ones)."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    exc_r, exc_w = os.pipe()  # close-on-exec, like every fd Python opens
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.dup2(in_r, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            os.closerange(3, exc_w)
            os.closerange(exc_w + 1, 1 << 20)
            for signum in (sig.SIGPIPE, sig.SIGXFSZ):  # Python ignores them; exec would keep that
                sig.signal(signum, sig.SIG_DFL)
            sig.pthread_sigmask(sig.SIG_SETMASK, ())
            if cwd:
                os.chdir(cwd)
            os.execve(path, argv, env)
        except OSError as e:
            os.write(exc_w, str(e.errno or 0).encode())
        finally:
            os._exit(255)
    for fd in (in_r, out_w, err_w, exc_w):
        os.close(fd)
    failure = b""
    while chunk := os.read(exc_r, 64):
        failure += chunk
    os.close(exc_r)
    if failure:
        for fd in (in_w, out_r, err_r):
            os.close(fd)
        os.waitpid(pid, 0)
        errno = int(failure)
        raise OSError(errno, os.strerror(errno))
    return _communicate(pid, in_w, out_r, err_r, data, timeout)


def _communicate(pid, in_w, out_r, err_r, data, timeout):
    deadline = None if timeout is None else time.monotonic() + timeout
    outputs: dict[int, list[bytes]] = {out_r: [], err_r: []}
    poller = select.poll()
    for fd in outputs:
        poller.register(fd, select.POLLIN)
    if data:
        os.set_blocking(in_w, False)
        poller.register(in_w, select.POLLOUT)
    else:
        os.close(in_w)
    open_fds = len(outputs) + bool(data)
    try:
        while open_fds:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            # poll(2) takes an int of ms: a timeout of years waits in ~24-day steps
            events = poller.poll(None if wait is None else min(wait * 1000, 2**31 - 1))
            if not events and deadline is not None and time.monotonic() >= deadline:
                os.kill(pid, sig.SIGKILL)
                os.waitpid(pid, 0)
                raise _TimedOut
            for fd, _ in events:
                if fd == in_w:
                    try:
                        data = data[os.write(in_w, data):]
                    except BrokenPipeError:  # the hook did not read its stdin: that is its right
                        data = b""
                    if not data:
                        poller.unregister(in_w)
                        os.close(in_w)
                        in_w = None
                        open_fds -= 1
                    continue
                chunk = os.read(fd, 65536)
                if chunk:
                    outputs[fd].append(chunk)
                else:
                    poller.unregister(fd)
                    open_fds -= 1
        if deadline is not None:  # the timeout also covers a hook that closed its stdio early
            pidfd = os.pidfd_open(pid)
            try:
                if not select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    os.kill(pid, sig.SIGKILL)
                    os.waitpid(pid, 0)
                    raise _TimedOut
            finally:
                os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), b"".join(outputs[out_r]), b"".join(outputs[err_r])
    finally:
        for fd in (in_w, out_r, err_r):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass


def _signal_name(signum):
    try:
        return sig.strsignal(signum).lower()
    except (ValueError, AttributeError):
        return str(signum)


def run_warning_only(hooks, state, warn, cwd=None):
    """poststop: a failure is a warning and the remaining hooks still run (runtime-spec:
    "the runtime MUST log a warning, but the remaining hooks and lifecycle continue")."""
    for name, index, hook in _indexed(hooks):
        try:
            _run_named(name, index, hook, state, cwd, None)
        except HookError as e:
            warn(str(e))


class InitHooks:
    """What the init needs for its hooks, handed over in shim.init.Plan (through memory)."""

    def __init__(self, spec: "Config", container_id, bundle):
        self.container_id = container_id
        self.bundle = bundle
        self.annotations = spec.annotations
        self.create_container = spec.hooks.named("createContainer")
        self.start_container = spec.hooks.named("startContainer")

    def run(self, hooks, status, pid, cwd=None, env=None, during_init=False):
        """createContainer: cwd the container's root (not pivoted yet), as runc; both lists
        with the container process's environment when a hook has none of its own.
        during_init: a failure reaches `create`, worded as runc's init errors are there."""
        if hooks:
            try:
                run_list(hooks, state_json(self.container_id, status, pid, self.bundle,
                                           self.annotations), cwd, env)
            except HookError as e:
                if during_init:
                    raise HookError(f"{DURING_INIT}{e}") from None
                raise


def for_init(spec: "Config", container_id, bundle):
    """An InitHooks when the init has hooks to run or to ask the host for, else None."""
    if spec.hooks.named(*CREATE_RUNTIME, *IN_INIT):
        return InitHooks(spec, container_id, bundle)
    return None
