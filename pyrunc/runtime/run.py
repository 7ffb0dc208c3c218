"""`run`: create + start, then wait for the init as its subreaper and pass signals on."""

import ctypes
import os
import signal

from ..linux.syscalls import PR_SET_CHILD_SUBREAPER, prctl

PR_GET_CHILD_SUBREAPER = 37  # not in linux.syscalls (owned elsewhere); <linux/prctl.h>

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
    # The flag is put back afterwards: the API may run inside a long-lived program.
    was_subreaper = _is_subreaper()
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    try:
        init_pid = runtime.create(container_id, bundle, **create_args).pid
    except BaseException:
        prctl(PR_SET_CHILD_SUBREAPER, was_subreaper)
        raise
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
        prctl(PR_SET_CHILD_SUBREAPER, was_subreaper)
        runtime.delete(container_id, force=True)


def _is_subreaper():
    flag = ctypes.c_int(0)
    prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(flag))
    return flag.value


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
