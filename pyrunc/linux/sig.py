"""Signals for the create/start/kill/delete path: the C half of Python's `signal` module.

`import signal` builds IntEnums at import (`enum` and what it pulls in: ~5 ms of every call);
`_signal`, which it wraps, takes and returns plain ints. Use as `sig.signal(sig.SIGTERM, f)`.
The foreground verbs (run, exec) may use `signal` itself.
"""

from _signal import (  # type: ignore[import-not-found]  # no stubs for the C module
    ITIMER_REAL,
    SIG_DFL,
    SIG_SETMASK,
    SIGALRM,
    SIGCONT,
    SIGHUP,
    SIGINT,
    SIGKILL,
    SIGPIPE,
    SIGQUIT,
    SIGSTOP,
    SIGTERM,
    SIGUSR1,
    SIGUSR2,
    SIGWINCH,
    SIGXFSZ,
    pidfd_send_signal,
    pthread_sigmask,
    setitimer,
    signal,
    strsignal,
    valid_signals,
)

__all__ = ["ITIMER_REAL", "SIG_DFL", "SIG_SETMASK", "SIGALRM", "SIGHUP", "SIGINT", "SIGKILL", "SIGPIPE",
           "SIGQUIT", "SIGSTOP", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGXFSZ", "SIGWINCH", "SIGCONT", "pidfd_send_signal",
           "pthread_sigmask", "setitimer", "signal", "strsignal", "valid_signals"]
