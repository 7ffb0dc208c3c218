"""`run`: create + start, then wait for the init as its subreaper and pass signals on; with
process.terminal and no --console-socket, proxy the pty as runc does (tty_proxy.py)."""

import os

from ..errors import InvalidStateError
from ..linux import sig
from ..linux.syscalls import PR_SET_CHILD_SUBREAPER, is_child_subreaper, prctl

# Signals `run` relays to the container instead of acting on them itself.
FORWARDED = (sig.SIGINT, sig.SIGTERM, sig.SIGHUP, sig.SIGQUIT, sig.SIGUSR1, sig.SIGUSR2, sig.SIGWINCH,
             sig.SIGCONT, sig.SIGALRM)


def run(runtime, container_id, bundle, *, detach, **create_args):
    if detach:
        runtime.create(container_id, bundle, **create_args)
        try:
            runtime.start(container_id)
        except BaseException:
            runtime.delete(container_id, force=True)
            raise
        return 0
    if create_args.get("console_socket"):  # runc's checkTerminal: the socket is for detaching
        raise InvalidStateError("cannot use console socket if pyrunc will not detach or allocate tty")
    # process.terminal in the foreground: as runc, pyrunc takes the pty master itself and
    # proxies it (runtime/tty_proxy.py). Looked for before anything exists: no terminal to
    # proxy is runc's error, with nothing to clean up.
    proxy = None
    if _wants_terminal(bundle):
        from .tty_proxy import TerminalProxy
        proxy = TerminalProxy()
    # The init is a grandchild; as subreaper we inherit it when stage1 exits and can wait for it.
    # The flag is put back afterwards: the API may run inside a long-lived program.
    was_subreaper = is_child_subreaper()
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    try:
        if proxy is None:
            init_pid = runtime.create(container_id, bundle, **create_args).pid
        else:
            from .create import create
            init_pid = create(runtime.store, container_id, bundle, warn=runtime.warn,
                              systemd_cgroup=runtime.systemd_cgroup,
                              console_fd=proxy.console_end(), **create_args).pid
    except BaseException:
        prctl(PR_SET_CHILD_SUBREAPER, was_subreaper)
        if proxy is not None:
            proxy.close()
        raise
    previous = {}

    def forward(signum, _frame):
        try:
            os.kill(init_pid, signum)
        except ProcessLookupError:
            pass

    try:
        for signum in FORWARDED:
            previous[signum] = sig.signal(signum, forward)
        if proxy is None:
            runtime.start(container_id, main_pid=os.getpid())  # NOTIFY_SOCKET: MAINPID is us
            return _wait_for(init_pid)
        proxy.attach()  # before start: the process starts with the host terminal's size and mode
        runtime.start(container_id, main_pid=os.getpid())
        return proxy.run(init_pid)  # SIGWINCH resizes the pty instead of being forwarded
    finally:
        if proxy is not None:
            proxy.close()  # the host terminal's mode back, SIGWINCH back to `forward`
        for signum, handler in previous.items():
            sig.signal(signum, handler)
        prctl(PR_SET_CHILD_SUBREAPER, was_subreaper)
        runtime.delete(container_id, force=True)


def _wants_terminal(bundle):
    """process.terminal in the bundle's config.json; any error is create's to report."""
    from .. import jsonio
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            process = jsonio.loads(f.read()).get("process")
        return isinstance(process, dict) and process.get("terminal") is True
    except (OSError, ValueError, AttributeError):
        return False


def _wait_for(init_pid):
    # Only the init: waitpid(-1) would also reap the caller's other children (an API user's
    # subprocesses), whose exit status would then be lost.
    try:
        _, status = os.waitpid(init_pid, 0)
    except ChildProcessError:
        return 255
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
