"""`run`: create + start, then wait for the init as its subreaper and pass signals on."""

import os
import signal

from ..linux.syscalls import PR_SET_CHILD_SUBREAPER, prctl

# Signals `run` relays to the container instead of acting on them itself.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT, signal.SIGALRM)


def run(runtime, container_id, bundle, *, detach, **create_args):
    if detach:
        runtime.create(container_id, bundle, **create_args)
        try:
            runtime.start(container_id)
        except BaseException:
            runtime.delete(container_id, force=True)
            raise
        return 0
    # The init is a grandchild; as subreaper we inherit it when stage1 exits and can wait for it.
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    init_pid = runtime.create(container_id, bundle, **create_args).pid
    previous = {}

    def forward(signum, _frame):
        try:
            os.kill(init_pid, signum)
        except ProcessLookupError:
            pass

    try:
        for sig in FORWARDED:
            previous[sig] = signal.signal(sig, forward)
        runtime.start(container_id)
        return _wait_for(init_pid)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        runtime.delete(container_id, force=True)


def _wait_for(init_pid):
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if pid == init_pid:
            if os.WIFSIGNALED(status):
                return 128 + os.WTERMSIG(status)
            return os.WEXITSTATUS(status)
