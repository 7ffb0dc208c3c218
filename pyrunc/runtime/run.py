"""`run`: create + start, then wait for the init as its subreaper and pass signals on; with
process.terminal and no --console-socket, proxy the pty as runc does (tty_proxy.py)."""

import os

from .. import trace
from ..errors import InvalidStateError
from .child import Forwarder, Subreaper, kill_quietly, wait_for


def run(runtime, container_id, bundle, *, detach, keep=False, **create_args):
    """runtime: the caller's pyrunc.api.Runtime; run is its create, start and delete in order
    (nothing here goes around them).
    keep: as runc's --keep, the container is never deleted here (not even when start
    fails: its processes are then killed, its state stays for `delete`)."""
    if detach:
        runtime.create(container_id, bundle, **create_args)
        try:
            runtime.start(container_id)
        except BaseException:
            _remove(runtime, container_id, keep)
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
    subreaper = Subreaper()
    try:
        console_fd = None if proxy is None else proxy.console_end()
        init_pid = runtime.create(container_id, bundle, console_fd=console_fd, **create_args).pid
    except BaseException:
        subreaper.restore()
        if proxy is not None:
            proxy.close()
        raise
    forwarder = None
    try:
        forwarder = Forwarder()
        forwarder.target(init_pid)
        if proxy is not None:
            proxy.attach()  # before start: the process starts with the host terminal's size and mode
        try:
            runtime.start(container_id, main_pid=os.getpid())  # NOTIFY_SOCKET: MAINPID is us
        except BaseException:
            kill_quietly(init_pid)  # it is our child: reap it, whatever start left running
            wait_for(init_pid)
            raise
        if proxy is None:
            status = wait_for(init_pid)
        else:
            status = proxy.run(init_pid)  # SIGWINCH resizes the pty instead of being forwarded
        trace.debug("run: the process of %s exited with status %d", container_id, status)
        return status
    finally:
        if proxy is not None:
            proxy.close()  # the host terminal's mode back, SIGWINCH back to the forwarder
        if forwarder is not None:
            forwarder.restore()
        subreaper.restore()
        _remove(runtime, container_id, keep)


def _remove(runtime, container_id, keep):
    if keep:
        trace.debug("run: keeping %s (--keep)", container_id)
        return
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
