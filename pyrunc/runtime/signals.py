"""Signal names and numbers as `kill` accepts them (9, KILL, SIGKILL)."""

import signal

from ..errors import SignalError


def parse(raw):
    raw = str(raw)
    if raw.lstrip("-").isdigit():
        return int(raw)  # runc passes numbers through; the kernel judges them
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    sig = getattr(signal.Signals, "__members__", {}).get(name)
    if sig is None or name in ("SIG_DFL", "SIG_IGN"):
        raise SignalError(f"unknown signal {raw!r}")
    return int(sig)
