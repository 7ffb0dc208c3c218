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


def _open(path):
    """runc opens the log O_CREATE|O_WRONLY|O_APPEND with mode 0644. A symlink planted at the
    name (in a directory others can write) would make root append to, or create, whatever it
    points to: it is not followed (ELOOP). /dev/ paths (/dev/stderr) are the caller's own."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
    if not path.startswith("/dev/"):
        flags |= os.O_NOFOLLOW
    return os.open(path, flags, 0o644)


class Logger:
    def __init__(self, path=None, fmt="text", debug=False):
        self.path = path
        self.fmt = fmt
        self.debug_enabled = debug
        if path:
            # runc creates the log file even when nothing goes wrong; engines expect it.
            os.close(_open(path))

    def format(self, level, msg):
        if self.fmt == "json":
            # logrus' JSONFormatter: compact, keys sorted, Go's HTML escaping
            line = jsonio.dumps({"level": level, "msg": msg, "time": _timestamp()}, sort_keys=True)
            return line.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
        return f"time={_quote(_timestamp())} level={level} msg={_quote(msg)}"

    def emit(self, level, msg):
        line = self.format(level, msg) + "\n"
        if self.path:
            try:
                fd = _open(self.path)
                try:
                    os.write(fd, line.encode())
                finally:
                    os.close(fd)
            except OSError as e:  # the file was replaced (by a symlink) or its disk is full
                sys.stderr.write(f"cannot write log file {self.path}: {(e.strerror or str(e)).lower()}\n"
                                 + line)
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
