"""What /proc says about a host process: enough to tell it is still *our* process."""


def stat_fields(pid):
    """Return /proc/PID/stat as a list whose index 0 is field 3 (state), or None if gone.

    The command name (field 2) may contain spaces and parentheses, so split after
    the last ')'.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rindex(b")") + 2:].split()


def start_time(pid):
    """Clock ticks since boot when PID started (field 22), or None if it is gone."""
    fields = stat_fields(pid)
    return int(fields[19]) if fields else None


def is_alive(pid, expected_start):
    """True if PID runs, is not a zombie, and is the process that started at expected_start."""
    fields = stat_fields(pid)
    if not fields or fields[0] in (b"Z", b"X", b"x"):
        return False
    return int(fields[19]) == expected_start
