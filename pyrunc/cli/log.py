"""Error and warning lines in runc's formats: text (logrus) or one JSON object per line.

With --log FILE the line goes to FILE and the bare message to stderr, as runc does;
without it, the formatted line goes to stderr. Nothing is written on success.
"""

import os
import sys
import time

from .. import jsonio


def _timestamp():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _quote(msg):
    return '"' + printable(msg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
                           .replace("\t", "\\t")) + '"'


def printable(msg):
    """Go's %q escapes for what a terminal would act on (a config's value can carry escape
    sequences, C1 controls, line separators or a lone surrogate into a message)."""
    if msg.isprintable():
        return msg
    return "".join(c if c.isprintable() else "\\r" if c == "\r" else f"\\x{ord(c):02x}" if ord(c) < 0x80
                   else f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}" for c in msg)


class Logger:
    def __init__(self, path=None, fmt="text", debug=False):
        self.path = path
        self.fmt = fmt
        self.debug_enabled = debug
        if path:
            # runc creates the log file even when nothing goes wrong; engines expect it.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644))

    def format(self, level, msg):
        if self.fmt == "json":
            # logrus' JSONFormatter: compact, keys sorted, Go's HTML escaping
            line = jsonio.dumps({"level": level, "msg": msg, "time": _timestamp()}, sort_keys=True)
            return line.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
        return f"time={_quote(_timestamp())} level={level} msg={_quote(msg)}"

    def emit(self, level, msg):
        line = self.format(level, msg) + "\n"
        if self.path:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
            if level == "error":
                # one line, even for runc's "...\n" texts; nothing a terminal would act on
                sys.stderr.write(printable(msg.rstrip("\n").replace("\n", "\\n")) + "\n")
        else:
            sys.stderr.write(line)
        sys.stderr.flush()

    def error(self, msg):
        self.emit("error", msg)

    def warning(self, msg):
        self.emit("warning", msg)

    def debug(self, msg):
        if self.debug_enabled:
            self.emit("debug", msg)
