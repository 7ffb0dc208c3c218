"""config.json `hooks`: run one list of hooks with the container's state on stdin.

Where each list runs (runtime-spec config.md "POSIX-platform Hooks", runtime.md "Lifecycle"):
prestart + createRuntime by `create` on the host when the init asks (its mounts are done, it has
not pivoted); createContainer by the init, before its pivot_root; startContainer by the init after
the start barrier, just before execve; poststart by `start` once the barrier is released;
poststop by `delete` once the container is gone. `run_list` is also handed to the init through
`shim.init.Plan` (the shim imports nothing from runtime/): subprocess is imported here, before
the fork, so nothing is imported after the init's pivot_root.
"""

import signal
import subprocess

from .. import jsonio
from ..shim.process import ProcessError

# The order of the lists that run while the container is being created.
CREATE_RUNTIME = ("prestart", "createRuntime")
IN_INIT = ("createContainer", "startContainer")
OCI_VERSION = "1.0.2"


class HookError(ProcessError):
    """A hook could not be run, failed, or timed out; the text is runc's. A ProcessError, so
    the init reports it to the host as it is."""


def hooks_of(config, *names):
    """[(name, hook)] of the named lists, in that order."""
    hooks = config.get("hooks") or {}
    return [(name, h) for name in names for h in hooks.get(name) or ()]


def state_json(container_id, status, pid, bundle, annotations):
    """The container's state (runtime.md "State"), as every hook reads it on stdin."""
    state = {"ociVersion": OCI_VERSION, "id": container_id, "status": status}
    if pid:
        state["pid"] = pid
    state["bundle"] = bundle
    if annotations:
        state["annotations"] = annotations
    return jsonio.dumps(state)


def run_list(hooks, state, cwd=None):
    """Run [(name, hook)] in order with `state` (JSON text) on stdin; the first failure raises
    HookError. The index is the hook's position in its own list, as runc counts."""
    seen = {}
    for name, hook in hooks:
        index = seen[name] = seen.get(name, -1) + 1
        run_one(hook, state, index, cwd)


def run_one(hook, state, index=0, cwd=None):
    path = hook["path"]
    argv = list(hook.get("args") or ()) or [path]
    env = {}
    for item in hook.get("env") or ():
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    timeout = hook.get("timeout")
    try:
        p = subprocess.Popen(argv, executable=path, env=env, cwd=cwd, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True)
    except OSError as e:
        raise HookError(f"error running hook #{index}: fork/exec {path}: "
                        f"{(e.strerror or str(e)).lower()}") from None
    try:
        out, err = p.communicate(state.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise HookError(f"error running hook #{index}: hook ran past specified timeout of "
                        f"{float(timeout):.1f}s") from None
    except BrokenPipeError:  # the hook did not read its stdin: that is its right
        out, err = p.communicate()
    if p.returncode != 0:
        status = (f"signal: {_signal_name(-p.returncode)}" if p.returncode < 0
                  else f"exit status {p.returncode}")
        raise HookError(f"error running hook #{index}: error running hook: {status}, "
                        f"stdout: {out.decode(errors='replace')}, "
                        f"stderr: {err.decode(errors='replace')}")


def _signal_name(signum):
    try:
        return signal.strsignal(signum).lower()
    except (ValueError, AttributeError):
        return str(signum)


def run_warning_only(hooks, state, warn, cwd=None):
    """poststart/poststop: a failure is a warning and the remaining hooks still run."""
    seen = {}
    for name, hook in hooks:
        index = seen[name] = seen.get(name, -1) + 1
        try:
            run_one(hook, state, index, cwd)
        except HookError as e:
            warn(f"{name} hook: {e}")


class InitHooks:
    """What the init needs for its hooks, handed over in shim.init.Plan (through memory)."""

    def __init__(self, config, container_id, bundle):
        self.container_id = container_id
        self.bundle = bundle
        self.annotations = config.get("annotations") or {}
        self.ask_host = bool(hooks_of(config, *CREATE_RUNTIME))
        self.create_container = hooks_of(config, "createContainer")
        self.start_container = hooks_of(config, "startContainer")

    def run(self, hooks, status, pid):
        if hooks:
            run_list(hooks, state_json(self.container_id, status, pid, self.bundle,
                                       self.annotations))


def for_init(config, container_id, bundle):
    """An InitHooks when the init has hooks to run or to ask the host for, else None."""
    if hooks_of(config, *CREATE_RUNTIME, *IN_INIT):
        return InitHooks(config, container_id, bundle)
    return None
