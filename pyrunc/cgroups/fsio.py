"""Reading and writing cgroupfs files; every failure becomes a CgroupError naming the field.

Files are opened per access, never kept: cgroupfs files are tiny and an open fd would
pin the cgroup and make rmdir fail with EBUSY.
"""

import os

from .errors import CgroupError

MAX_UINT64 = (1 << 64) - 1  # how runc reports "max" (no limit) in stats


def strerror(err):
    return os.strerror(err.errno).lower() if err.errno else str(err)


def controller_missing(field, name):
    controller = name.split(".", 1)[0]
    return CgroupError(f"{field}: the {controller} controller is not available on this host "
                       f"(no cgroup hierarchy provides {name})", field=field)


def write(directory, name, value, field):
    """Write `value` (str) to directory/name; `directory` None means the controller is absent."""
    if directory is None:
        raise controller_missing(field, name)
    path = directory + "/" + name
    try:
        # O_TRUNC is a no-op on cgroupfs and keeps plain-file test trees exact.
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise CgroupError(f"{field}: writing {value} to {path}: {strerror(err)}", err.errno,
                          field) from None


def read(directory, name, field=None):
    """The file's text; raises CgroupError (errno set) when it cannot be read."""
    if directory is None:
        raise controller_missing(field or name, name)
    path = directory + "/" + name
    try:
        with open(path, "rb", buffering=0) as f:
            return f.read().decode()
    except OSError as err:
        prefix = f"{field}: " if field else ""
        raise CgroupError(f"{prefix}reading {path}: {strerror(err)}", err.errno) from None


def read_optional(directory, name):
    """The file's text, or None when the file (or its directory) does not exist."""
    try:
        with open(directory + "/" + name, "rb", buffering=0) as f:
            return f.read().decode()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        raise CgroupError(f"reading {directory}/{name}: {strerror(err)}", err.errno) from None


def parse_uint(text):
    """A cgroup number; "max" is the largest uint64, as runc reports it."""
    text = text.strip()
    if text == "max":
        return MAX_UINT64
    value = int(text)
    return value if value >= 0 else 0  # a negative value here means "unset" (e.g. -1)


def read_uint(directory, name, field=None):
    text = read(directory, name, field)
    try:
        return parse_uint(text)
    except ValueError:
        prefix = f"{field}: " if field else ""
        raise CgroupError(f"{prefix}{directory}/{name}: not a number: {text.strip()!r}") from None


def key_values(text):
    """ "key value" lines (memory.stat, cpu.stat, memory.events ...) as a dict of ints."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value:
            try:
                out[key] = parse_uint(value)
            except ValueError:
                continue
    return out


def mkdir(path):
    """Create one cgroup directory (the kernel fills it with the controllers' files)."""
    os.mkdir(path, 0o755)


def rmdir(path):
    """Remove one cgroup directory; cgroupfs allows it while its files are still listed."""
    os.rmdir(path)
