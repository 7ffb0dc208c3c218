"""Signal names and numbers as `kill` accepts them (9, KILL, SIGKILL), and sending them.

`import signal` costs ~5 ms (it builds enums): engines pass numbers (`kill ID 15`), so the
module is imported only to look up a name.
"""

from ..errors import SignalError
from ..goparse import is_atoi


def parse(raw):
    raw = str(raw)
    # runc passes numbers through and the kernel judges them; a number beyond Go's int fails
    # strconv.Atoi and is then looked up as a name (an unknown signal)
    if is_atoi(raw) and -(1 << 63) <= int(raw) < (1 << 63):
        number = int(raw) & 0xFFFFFFFF  # the kernel's signal argument is a C int: the low 32 bits
        return number - (1 << 32) if number >= (1 << 31) else number
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


