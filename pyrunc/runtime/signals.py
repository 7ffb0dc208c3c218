"""Signal names and numbers as `kill` accepts them (9, KILL, SIGKILL), and sending them.

`import signal` costs ~5 ms (it builds enums): names are looked up in `_signal`, the C half
it wraps, whose SIG* attributes are plain ints.
"""

from ..errors import SignalError
from ..goparse import is_atoi

try:
    import _signal as sig  # type: ignore[import-not-found]  # no stubs for the C module
except ImportError:  # pragma: no cover - not CPython
    import signal as sig


def parse(raw):
    raw = str(raw)
    # runc passes numbers through and the kernel judges them; a number beyond Go's int fails
    # strconv.Atoi and is then looked up as a name (an unknown signal)
    if is_atoi(raw) and -(1 << 63) <= int(raw) < (1 << 63):
        number = int(raw) & 0xFFFFFFFF  # the kernel's signal argument is a C int: the low 32 bits
        return number - (1 << 32) if number >= (1 << 31) else number
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    # runc's table (x/sys/unix) has the 31 standard names only: no aliases (SIGIOT, SIGCLD,
    # SIGPOLL) and no SIGRTMIN/SIGRTMAX
    found = None if name.startswith("SIG_") or name in _NOT_RUNCS else getattr(sig, name, None)
    if not isinstance(found, int) or not 0 < found < 32:
        # runc's wording, with Go's %q quoting (engines match this text)
        raise SignalError(f'unknown signal "{raw}"')
    return found


_NOT_RUNCS = ("SIGIOT", "SIGCLD", "SIGPOLL", "SIGRTMIN", "SIGRTMAX")


