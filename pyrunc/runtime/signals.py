"""Signal names and numbers as `kill` accepts them (9, KILL, SIGKILL)."""

import re
import signal

from ..errors import SignalError

# Go's strconv.Atoi: an optional sign and ASCII digits ("+9" is 9; str.isdigit() would also
# take "²" and then int() would raise).
_NUMBER = re.compile(r"[+-]?[0-9]+", re.ASCII)


def parse(raw):
    raw = str(raw)
    if _NUMBER.fullmatch(raw):
        return int(raw)  # runc passes numbers through; the kernel judges them
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
