"""Signal names and numbers as `kill` accepts them (9, KILL, SIGKILL), and sending them.

`import signal` costs ~5 ms (it builds enums): engines pass numbers (`kill ID 15`), so the
module is imported only to look up a name.
"""

from ..errors import SignalError

_DIGITS = frozenset("0123456789")


def parse(raw):
    raw = str(raw)
    # Go's strconv.Atoi: an optional sign and ASCII digits ("+9" is 9; str.isdigit() would also
    # take "²" and then int() would raise).
    digits = raw[1:] if raw[:1] in ("+", "-") else raw
    if digits and _DIGITS.issuperset(digits):
        return int(raw)  # runc passes numbers through; the kernel judges them
    import signal
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    sig = signal.Signals.__members__.get(name)
    # runc's table (x/sys/unix) has the 31 standard names only: no aliases (SIGIOT, SIGCLD,
    # SIGPOLL, which Python's enum maps onto other names) and no SIGRTMIN/SIGRTMAX.
    if sig is None or sig.name != name or sig >= 32:
        # runc's wording, with Go's %q quoting (engines match this text)
        raise SignalError(f'unknown signal "{raw}"')
    return int(sig)


