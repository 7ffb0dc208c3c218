"""Debug messages (runc's --debug): the steps of create/start/exec/kill/delete.

Off by default, and then (nearly) free: `debug(fmt, *args)` is one call that tests a flag;
the timed steps (`clock()`, then `lap(start, fmt, ...)`: "create: ... in 0.4 ms") read no clock;
the message is only formatted (`fmt % args`) once a sink is set. The CLI sets the sink to
its logger (cli/log.py) for --debug; an API user may set any callable taking one string.
The forked stages inherit the flag with the rest of their memory and send their messages to
the host over the sync channel (shim/sync.py `debug`), which passes them to the sink here.
"""

on = False
_sink = None


def enable(sink):
    """sink(message): called for every debug message from now on; None turns them off."""
    global on, _sink
    _sink = sink
    on = sink is not None


def debug(fmt, *args):
    if on:
        try:
            _sink(fmt % args if args else fmt)  # type: ignore[misc]  # `on`: a sink is set
        except Exception:  # noqa: BLE001 - a debug line must never make an operation fail
            pass


def clock():
    """The start of a timed step for `lap`: the time now with --debug, else None (no clock is
    read). `time` is a built-in module: importing it here costs nothing measurable."""
    if on:
        from time import perf_counter_ns
        return perf_counter_ns()
    return None


def lap(start, fmt, *args):
    """With --debug, "<fmt % args> in N.N ms" since `start` (from clock() or the previous lap)
    and the time now, for the next lap; without it None, nothing read or formatted."""
    if not on:
        return None
    from time import perf_counter_ns
    now = perf_counter_ns()
    if start is not None:
        debug(fmt + " in %.1f ms", *args, (now - start) / 1e6)
    return now
